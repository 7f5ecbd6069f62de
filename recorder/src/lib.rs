//! Screen recordings: the service behind `/computeruse/recordings*` and the recording
//! dashboard's page.
//!
//! Each recording is one `ffmpeg -f x11grab` process writing an MP4 into the recordings
//! directory ([`Recorder`]); the directory, with a metadata file per recording, is what outlives
//! the process ([`store`]). The crate knows nothing of HTTP: the daemon's `recordings` area maps
//! [`RecorderError`] to statuses and serves the files. Children are spawned through a
//! [`Spawner`] the daemon provides, so that its reaper stays the only code that waits for them.

pub mod display;
pub mod error;
pub mod ffmpeg;
pub mod label;
pub mod model;
pub mod service;
pub mod store;

pub use error::RecorderError;
pub use label::{MAX_LABEL_LEN, is_valid_label};
pub use model::{Recording, Status};
pub use service::{Exit, ExitFuture, Launch, Options, Recorder, Spawner};

/// The recording dashboard: one self-contained page (no external resources).
pub const DASHBOARD_HTML: &str = include_str!("../assets/dashboard.html");
