//! State shared by every handler.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::computeruse::ComputerUse;
use crate::config::Config;
use crate::env::ChildEnv;
use crate::lsp::Lsp;
use crate::lsp::languages::Languages;
use crate::port::Ports;
use crate::process::interpreter::Interpreters;
use crate::process::pty::PtyRegistry;
use crate::process::session::SessionService;
use crate::reaper::Reaper;
use crate::system::metrics::Metrics;
use crate::telemetry::Telemetry;

/// The daemon version: the `VERSION` variable at build time, as the reference takes it.
pub const VERSION: &str = match option_env!("VERSION") {
    Some(v) => v,
    None => "v0.0.0-dev",
};

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub env: Arc<ChildEnv>,
    /// The daemon's cwd at start: the default cwd of every process and relative path.
    pub work_dir: Arc<PathBuf>,
    pub reaper: &'static Reaper,
    /// Token from `POST /init`; only ever used for telemetry export headers.
    pub init_token: Arc<Mutex<Option<String>>>,
    /// Sessions, stored under `<config dir>/sessions` (`$HOME/.daytona/sessions`).
    pub sessions: Arc<SessionService>,
    /// PTY sessions by id.
    pub ptys: Arc<PtyRegistry>,
    /// The computer-use agent behind `/computeruse/*`.
    pub computer_use: Arc<ComputerUse>,
    /// Interpreter contexts (stateful Python/JavaScript workers).
    pub interpreters: Arc<Interpreters>,
    /// Language servers behind `/lsp`.
    pub lsp: Arc<Lsp>,
    /// `/system/metrics`: the cgroup readers and the CPU sampler.
    pub metrics: Arc<Metrics>,
    /// `/port`: the listening-socket scan.
    pub ports: Arc<Ports>,
    /// Screen recordings (`/computeruse/recordings*` and the dashboard).
    pub recordings: Arc<recorder::Recorder>,
    /// OTLP export of traces, logs and metrics; started by `/init`.
    pub telemetry: Arc<Telemetry>,
}

impl AppState {
    pub fn new(config: Config, env: ChildEnv, work_dir: PathBuf) -> Self {
        let env = Arc::new(env);
        let home = env.get("HOME").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
        let sessions = SessionService::new(
            &home.join(".daytona"),
            env.clone(),
            Reaper::global(),
            config.termination_grace_period,
            config.termination_check_interval,
        );
        let ptys = Arc::new(PtyRegistry::new(
            config.pty_replay_bytes,
            env.clone(),
            Reaper::global(),
            work_dir.clone(),
        ));
        let computer_use = Arc::new(ComputerUse::new(env.clone(), Reaper::global(), home.join(".daytona")));
        let interpreters = Arc::new(Interpreters::with_max_contexts(
            env.clone(),
            Reaper::global(),
            work_dir.clone(),
            config.interpreter_max_contexts,
        ));
        let lsp = Arc::new(
            Lsp::new(
                Languages::new(config.lsp_servers.clone()),
                config.lsp_max_servers,
                env.clone(),
                Reaper::global(),
            )
            .with_options(lsp_bridge::Options {
                request_timeout: config.lsp_request_timeout,
                ..Default::default()
            }),
        );
        let telemetry = Arc::new(Telemetry::new(&config, VERSION));
        let recordings = crate::recordings::recorder(&config, &home, &work_dir, Reaper::global());
        AppState {
            telemetry,
            recordings,
            metrics: Arc::new(Metrics::new()),
            ports: Arc::new(Ports::new()),
            ptys,
            lsp,
            interpreters,
            config: Arc::new(config),
            env,
            work_dir: Arc::new(work_dir),
            reaper: Reaper::global(),
            init_token: Arc::new(Mutex::new(None)),
            sessions: Arc::new(sessions),
            computer_use,
        }
    }
}

impl crate::fspath::WorkDir for AppState {
    fn work_dir(&self) -> &std::path::Path {
        &self.work_dir
    }
}
