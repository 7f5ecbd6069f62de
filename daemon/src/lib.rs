//! The toolbox daemon.
//!
//! Runs as PID 1 of a sandbox, serves Daytona's toolbox API on port 2280, and runs the image's
//! command (its own arguments) as the entrypoint. [`main_entry`] is the whole start-up and
//! shutdown sequence; [`server::router`] assembles every API area.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

pub mod auth;
pub mod cgroup;
pub mod client;
pub mod computeruse;
pub mod config;
pub mod conn;
pub mod entrypoint;
pub mod env;
pub mod error;
pub mod exhaust;
pub mod extract;
pub mod files;
pub mod fspath;
pub mod git;
pub mod id;
pub mod logfile;
pub mod logging;
pub mod lsp;
pub mod mcp;
pub mod oom;
pub mod openapi;
pub mod port;
pub mod process;
pub mod proxy;
pub mod pty;
pub mod reaper;
pub mod recordings;
pub mod secret;
pub mod server;
pub mod shell;
pub mod signal;
pub mod ssh;
pub mod state;
pub mod static_file;
pub mod system;
pub mod telemetry;
pub mod terminal;
#[cfg(test)]
pub mod testing;
pub mod text;
pub mod walk;
pub mod which;
pub mod ws;
pub use toolbox_envelope::timefmt;

/// Start-up failures exit with this code, as the reference does.
const EXIT_CONFIG: u8 = 2;

/// The readiness line the runner waits for, printed on stdout right before binding.
pub fn readiness_line(port: u16) -> String {
    format!("Starting toolbox server on port {port}")
}

/// Runs the daemon with the process's arguments and environment; returns its exit code.
pub fn main_entry() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();

    let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()).map(PathBuf::from) else {
        eprintln!("invalid configuration: HOME: the home directory is not set");
        return ExitCode::from(EXIT_CONFIG);
    };
    let config_dir = home.join(".daytona");
    if let Err(e) = create_dir_0755(&config_dir) {
        eprintln!("cannot create the config directory {}: {e}", config_dir.display());
        return ExitCode::from(EXIT_CONFIG);
    }
    if args.len() == 2 && args[0] == "entrypoint" && args[1] == "logs" {
        return entrypoint::follow_logs(&entrypoint::log_path(&config_dir));
    }

    let shutdown = match install_shutdown_signals() {
        Ok(rx) => rx,
        Err(e) => {
            eprintln!("cannot install the SIGTERM/SIGINT handlers: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };

    let vars = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    let config = match config::from_env(&vars) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if config.auth_token.is_some() || config.signing_key.is_some() {
        // The secrets are in this process's environment: without this, any process of the
        // sandbox's user could read them from /proc/<pid>/environ (or its memory). Children
        // become dumpable again at exec; the daemon's own /proc files stay readable to it.
        // SAFETY: prctl with integer arguments only.
        unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0 as libc::c_ulong, 0, 0, 0) };
    }
    if config.user_home_as_workdir
        && let Err(e) = std::env::set_current_dir(&home)
    {
        eprintln!("cannot change to the home directory {}: {e}", home.display());
    }
    // Before the subscriber: its log layer feeds the telemetry that /init starts later.
    let telemetry = std::sync::Arc::new(telemetry::Telemetry::new(&config, state::VERSION));
    logging::init(&config, telemetry.log_layer());

    // Before the first child, which must not inherit the daemon's protection.
    exhaust::protect_daemon();
    // The reaper must own SIGCHLD before the first child exists.
    let _ = reaper::Reaper::global();
    // libgit2's one-time set-up sets process environment variables (the CA paths) when they are
    // unset; set them now, before the runtime's threads exist, so that the set-up itself can
    // wait for the first git request: it parses the whole CA bundle, most of the start-up time.
    git::creds::export_ca_env();
    let work_dir = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let mut state = state::AppState::new(config, env::ChildEnv::from_process(), work_dir);
    state.telemetry = telemetry;

    let runtime = match exhaust::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    runtime.block_on(async move {
        if !args.is_empty() {
            let argv: Vec<String> = args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
            if let Err(e) = state.sessions.start_entrypoint(&argv, &state.work_dir).await {
                tracing::error!(error = %e, "cannot start the entrypoint command");
                return ExitCode::from(EXIT_CONFIG);
            }
        }
        // From the start, so the first /system/metrics call already has a CPU figure.
        state.metrics.start();
        // Recordings a previous run left unfinished get their orphaned ffmpeg finished and are
        // marked interrupted.
        tokio::spawn(state.recordings.clone().recover());
        run_servers(state.clone(), shutdown_requested(shutdown)).await;
        // The image's command first: it gets its SIGTERM and the whole grace period while its
        // output is still read (what `docker stop` promises). Recordings are finished meanwhile,
        // so their files are playable even if the container is killed at the end of the grace
        // period. Then everything else, each waiting (bounded) for its own children.
        // The other sessions get their SIGTERM at the same time, so that the whole stop fits
        // the 10 s `docker stop` gives by default.
        tokio::join!(
            async {
                if !args.is_empty() {
                    stop_entrypoint(&state).await;
                }
            },
            state.recordings.shutdown(),
            state.sessions.shutdown()
        );
        tokio::join!(state.computer_use.shutdown(), state.interpreters.shutdown(), state.lsp.shutdown());
        tracing::info!("Shutdown complete");
        // Last, so the records of the shutdown itself go out too.
        state.telemetry.shutdown().await;
        ExitCode::SUCCESS
    })
}

/// Terminates the entrypoint session's process tree (SIGTERM to its group, SIGKILL after the
/// grace period) and waits, bounded, until it is gone and its last output is in the log.
async fn stop_entrypoint(state: &state::AppState) {
    let limit = state.config.termination_grace_period + std::time::Duration::from_secs(2);
    let stopped = tokio::time::timeout(limit, async {
        match state.sessions.terminate_entrypoint().await {
            Ok(done) => {
                let _ = done.await;
            }
            Err(e) => tracing::debug!(error = %e, "no entrypoint session to stop"),
        }
    })
    .await;
    if stopped.is_err() {
        tracing::warn!("the entrypoint did not stop within the grace period");
    }
}

/// Serves until SIGTERM, SIGINT or a listener failure.
async fn run_servers(state: state::AppState, shutdown: impl Future<Output = ()>) {
    let port = state.config.toolbox_port;
    let terminal = state.clone();
    let ssh = state.clone();
    let dashboard = state.clone();
    let state_for_warmup = state.clone();
    let (app, _doc) = server::router(state);
    println!("{}", readiness_line(port));
    // After the readiness line: the interpreter's warm-up starts a Python process, which would
    // otherwise compete for the CPU with the daemon's own start-up.
    state_for_warmup.interpreters.warm_default();
    // After the readiness line, which the runner expects first on stdout.
    tokio::spawn(terminal::run(terminal));
    tokio::spawn(recordings::api::dashboard::run(dashboard));
    // Aborted when the toolbox server stops: no new logins during shutdown, and dropping the
    // connections kills the programs of sessions still open.
    let ssh = AbortOnDrop(tokio::spawn(ssh::server::run(ssh)));
    let listener = match server::bind(port).await {
        Ok(l) => l,
        Err(e) => {
            // As the reference does: a listener failure is logged and the daemon shuts down.
            tracing::error!(error = %e, port, "cannot listen on the toolbox port");
            return;
        }
    };
    server::serve(listener, app, shutdown).await;
    drop(ssh);
}

/// Aborts a background server's task when dropped, on every way out of [`run_servers`].
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// SIGTERM and SIGINT, caught from the moment they are registered. They are registered before
/// anything else starts, so a stop request that arrives right after the readiness line (or even
/// before it) is never lost and never takes the default action of killing the daemon.
fn install_shutdown_signals() -> std::io::Result<tokio::sync::watch::Receiver<Option<i32>>> {
    let mut signals =
        signal_hook::iterator::Signals::new([signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT])?;
    let (tx, rx) = tokio::sync::watch::channel(None);
    std::thread::Builder::new().name("signals".into()).spawn(move || {
        for sig in signals.forever() {
            let _ = tx.send(Some(sig));
        }
    })?;
    Ok(rx)
}

async fn shutdown_requested(mut rx: tokio::sync::watch::Receiver<Option<i32>>) {
    match rx.wait_for(Option::is_some).await.map(|s| *s) {
        Ok(Some(sig)) if sig == signal_hook::consts::SIGINT => {
            tracing::info!("SIGINT received, shutting down")
        }
        Ok(_) => tracing::info!("SIGTERM received, shutting down"),
        Err(_) => std::future::pending().await,
    }
}

fn create_dir_0755(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o755).create(dir)
}
