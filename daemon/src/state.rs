//! State shared by every handler.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::config::Config;
use crate::env::ChildEnv;
use crate::reaper::Reaper;

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
}

impl AppState {
    pub fn new(config: Config, env: ChildEnv, work_dir: PathBuf) -> Self {
        AppState {
            config: Arc::new(config),
            env: Arc::new(env),
            work_dir: Arc::new(work_dir),
            reaper: Reaper::global(),
            init_token: Arc::new(Mutex::new(None)),
        }
    }
}
