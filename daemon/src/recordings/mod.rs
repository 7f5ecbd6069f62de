//! Screen recordings: `/computeruse/recordings*` on the toolbox port ([`api`]) and the
//! recording dashboard on its own port ([`dashboard`]), both over the `recorder` crate's
//! service. Recordings do not need the computer-use agent, only ffmpeg and an X display, so they
//! are served here rather than relayed.
//!
//! This file ties the service to the daemon: ffmpeg is spawned through the reaper, found on
//! the PATH children get, and records the `DISPLAY` children get (the desktop sets it).

pub mod api;
pub mod dashboard;

use std::io;
use std::path::Path;
use std::process::{Child, Command};
use std::sync::Arc;

use recorder::{Exit, ExitFuture, Launch, Options, Recorder, Spawner};

use crate::config::Config;
use crate::env::ChildEnv;
use crate::reaper::{ExitStatus, Reaper};

/// Spawns through the daemon's reaper, the only code that waits for children.
struct ReaperSpawner(&'static Reaper);

impl Spawner for ReaperSpawner {
    fn spawn(&self, cmd: &mut Command) -> io::Result<(Child, ExitFuture)> {
        let (child, wait) = self.0.spawn(cmd)?;
        Ok((
            child,
            Box::pin(async move {
                match wait.wait().await {
                    ExitStatus::Exited(c) => Exit::Code(c),
                    ExitStatus::Signaled(s) => Exit::Signal(s),
                    ExitStatus::Unknown => Exit::Unknown,
                }
            }),
        ))
    }
}

/// The service, on `DAYTONA_RECORDINGS_DIR` or `<home>/.daytona/recordings` (a relative
/// directory is taken from the daemon's working directory, so file paths in answers are
/// absolute).
pub fn recorder(config: &Config, home: &Path, work_dir: &Path, reaper: &'static Reaper) -> Arc<Recorder> {
    let dir = config.recordings_dir.clone().unwrap_or_else(|| home.join(".daytona").join("recordings"));
    let dir = if dir.is_absolute() { dir } else { work_dir.join(dir) };
    let mut opts = Options::new(dir);
    opts.stop_timeout = config.recording_stop_timeout;
    Recorder::new(opts, Arc::new(ReaperSpawner(reaper)))
}

/// What a recording started now runs with: the children's environment and the ffmpeg on its
/// `PATH`.
pub fn launch(env: &ChildEnv) -> Launch {
    let vars = env.snapshot_with([]);
    let path = vars.iter().find(|(k, _)| k == "PATH").map(|(_, v)| v.as_os_str());
    let ffmpeg = crate::which::find_program(&["ffmpeg"], path);
    Launch { ffmpeg, env: vars }
}
