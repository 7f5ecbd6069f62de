//! PTY sessions (`/process/pty…`, process.md §5, sdk-0.226.md §3.1): interactive shells on
//! pseudo-terminals, shared by any number of websocket clients.
//!
//! Beyond the reference, each terminal keeps its most recent output (`DAYTONA_PTY_REPLAY_BYTES`,
//! 64 KiB by default) and replays it to every client right after `connected`, so a reconnecting
//! client sees the screen it left and the first prompt is never lost. Clients that do not expect
//! it just receive it as ordinary output.
//!
//! [`PtyRegistry`] is the service: it knows the terminals by id and answers with [`PtyError`];
//! the routes in `api.rs` turn that into HTTP.

pub mod api;
pub mod ring;
pub mod session;
pub mod ws;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

pub use session::{Client, End, Launch, Pty, ResizeError};

use crate::env::ChildEnv;
use crate::id::{self, InvalidId};
use crate::reaper::Reaper;

/// How many ids of ended terminals are remembered, so that an operation on one that ended is
/// told so (410) rather than that it never existed (404). The oldest are forgotten first; ids
/// are at most 255 bytes, so this costs at most about 256 KiB.
pub const REMEMBERED_ENDS: usize = 1024;

/// Why a PTY operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PtyError {
    #[error(transparent)]
    InvalidId(#[from] InvalidId),
    #[error("PTY session with ID '{0}' already exists")]
    Exists(String),
    /// No terminal has this id, nor had recently.
    #[error("PTY session {0} not found")]
    NotFound(String),
    /// The terminal existed and has ended (its shell exited, or it was deleted).
    #[error("PTY session '{0}' has terminated")]
    Ended(String),
    /// A lazy terminal whose shell has not started yet.
    #[error("PTY session '{0}' has not started")]
    NotStarted(String),
    #[error("failed to start PTY session: {0}")]
    Start(std::io::Error),
    #[error("failed to resize PTY session: {0}")]
    Resize(String),
    /// The daemon failed itself (a blocking task died).
    #[error("{0}")]
    Internal(String),
}

/// A terminal to create; `None`s and empties take the contract's defaults (process.md §5.1).
#[derive(Debug, Default, Clone)]
pub struct NewPty {
    pub id: String,
    pub cwd: Option<String>,
    pub envs: BTreeMap<String, String>,
    pub cols: u16,
    pub rows: u16,
    pub lazy_start: bool,
}

/// The PTY sessions by id.
pub struct PtyRegistry {
    state: Mutex<Registry>,
    replay_bytes: usize,
    env: Arc<ChildEnv>,
    reaper: &'static Reaper,
    /// The default cwd of a terminal.
    work_dir: PathBuf,
}

#[derive(Default)]
struct Registry {
    live: HashMap<String, Arc<Pty>>,
    /// Ids of ended terminals, oldest first, at most [`REMEMBERED_ENDS`].
    ended: VecDeque<String>,
}

impl Registry {
    fn remember_end(&mut self, id: &str) {
        self.forget_end(id);
        if self.ended.len() == REMEMBERED_ENDS {
            self.ended.pop_front();
        }
        self.ended.push_back(id.to_string());
    }

    fn forget_end(&mut self, id: &str) {
        self.ended.retain(|e| e != id);
    }
}

impl PtyRegistry {
    pub fn new(replay_bytes: usize, env: Arc<ChildEnv>, reaper: &'static Reaper, work_dir: PathBuf) -> Self {
        PtyRegistry { state: Mutex::new(Registry::default()), replay_bytes, env, reaper, work_dir }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        toolbox_envelope::sync::lock(&self.state)
    }

    pub fn list(&self) -> Vec<Arc<Pty>> {
        self.lock().live.values().cloned().collect()
    }

    /// A live terminal by id.
    pub fn get(&self, id: &str) -> Result<Arc<Pty>, PtyError> {
        id::check("PTY", id)?;
        let reg = self.lock();
        if let Some(pty) = reg.live.get(id) {
            return Ok(pty.clone());
        }
        if reg.ended.iter().any(|e| e == id) {
            return Err(PtyError::Ended(id.to_string()));
        }
        Err(PtyError::NotFound(id.to_string()))
    }

    /// Whether `id` could be created now: valid and not taken. Creation checks again (a racing
    /// create may win in between).
    pub fn check_new(&self, id: &str) -> Result<(), PtyError> {
        id::check("PTY", id)?;
        if self.lock().live.contains_key(id) {
            return Err(PtyError::Exists(id.to_string()));
        }
        Ok(())
    }

    /// Registers a terminal and, unless it is lazy, starts its shell. It leaves the registry
    /// when it ends.
    pub fn create(self: &Arc<Self>, new: NewPty) -> Result<Arc<Pty>, PtyError> {
        id::check("PTY", &new.id)?;
        let mut envs = new.envs;
        if envs.get("TERM").is_none_or(String::is_empty) {
            envs.insert("TERM".into(), "xterm-256color".into());
        }
        let cwd =
            new.cwd.filter(|c| !c.is_empty()).unwrap_or_else(|| self.work_dir.to_string_lossy().into_owned());
        let pty = Pty::new(new.id, cwd, envs, new.cols, new.rows, new.lazy_start, self.replay_bytes);
        {
            // Atomic, so two creates of one id cannot both win.
            let mut reg = self.lock();
            if reg.live.contains_key(&pty.id) {
                return Err(PtyError::Exists(pty.id.clone()));
            }
            reg.forget_end(&pty.id);
            reg.live.insert(pty.id.clone(), pty.clone());
        }
        if !new.lazy_start
            && let Err(e) = self.start(&pty)
        {
            // It never ran: forgotten, not remembered as ended.
            let mut reg = self.lock();
            if reg.live.get(&pty.id).is_some_and(|p| Arc::ptr_eq(p, &pty)) {
                reg.live.remove(&pty.id);
            }
            return Err(e);
        }
        Ok(pty)
    }

    /// Starts a lazy terminal's shell (a no-op when it runs); an ended one cannot come back.
    pub fn start(self: &Arc<Self>, pty: &Arc<Pty>) -> Result<(), PtyError> {
        if pty.is_ended() {
            return Err(PtyError::Ended(pty.id.clone()));
        }
        let launch = Launch {
            program: crate::shell::select(&self.env),
            args: vec!["-i".into(), "-l".into()],
            cwd: pty.cwd.clone().into(),
            env: self.env.snapshot_with(pty.envs.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
        };
        let (registry, me) = (self.clone(), pty.clone());
        pty.start(self.reaper, launch, move || registry.ended(&me)).map_err(PtyError::Start)
    }

    /// Resizes a running terminal.
    pub fn resize(&self, id: &str, cols: u16, rows: u16) -> Result<Arc<Pty>, PtyError> {
        let pty = self.get(id)?;
        match pty.resize(cols, rows) {
            Ok(()) => Ok(pty),
            Err(ResizeError::NotStarted) => Err(PtyError::NotStarted(id.to_string())),
            Err(ResizeError::Ended) => Err(PtyError::Ended(id.to_string())),
            Err(ResizeError::Io(e)) => Err(PtyError::Resize(e)),
        }
    }

    /// Kills a terminal and its whole process tree.
    pub async fn delete(&self, id: &str) -> Result<(), PtyError> {
        let pty = self.get(id)?;
        self.ended(&pty);
        let p = pty.clone();
        tokio::task::spawn_blocking(move || p.kill_blocking())
            .await
            .map_err(|e| PtyError::Internal(format!("cannot kill the PTY session: {e}")))
    }

    /// Forgets `pty` if it is still the one registered under its id (a later terminal that
    /// reused the id must survive the late exit of an earlier one), and remembers that it ended.
    fn ended(&self, pty: &Arc<Pty>) {
        let mut reg = self.lock();
        if reg.live.get(&pty.id).is_some_and(|p| Arc::ptr_eq(p, pty)) {
            reg.live.remove(&pty.id);
            reg.remember_end(&pty.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> Arc<PtyRegistry> {
        let env = ChildEnv::new([("PATH".into(), "/usr/bin:/bin".into())]);
        Arc::new(PtyRegistry::new(1024, Arc::new(env), Reaper::global(), "/".into()))
    }

    fn lazy(id: &str) -> NewPty {
        NewPty { id: id.into(), cols: 80, rows: 24, lazy_start: true, ..Default::default() }
    }

    #[test]
    fn ids_follow_the_session_rules() {
        let reg = registry();
        for bad in ["", ".", "..", "a/b", "a\0b", &"x".repeat(300), &"x".repeat(1 << 20)] {
            assert!(matches!(reg.create(lazy(bad)), Err(PtyError::InvalidId(_))), "{} bytes", bad.len());
            assert!(matches!(reg.check_new(bad), Err(PtyError::InvalidId(_))));
            assert!(matches!(reg.get(bad), Err(PtyError::InvalidId(_))));
        }
        assert!(reg.list().is_empty());
    }

    #[tokio::test]
    async fn unknown_ended_and_reused_ids() {
        let reg = registry();
        assert!(matches!(reg.resize("nosuch", 10, 10), Err(PtyError::NotFound(_))));
        let pty = reg.create(lazy("p")).unwrap();
        assert_eq!(pty.envs["TERM"], "xterm-256color");
        assert_eq!(pty.cwd, "/");
        assert!(matches!(reg.create(lazy("p")), Err(PtyError::Exists(_))));
        assert!(matches!(reg.check_new("p"), Err(PtyError::Exists(_))));
        assert!(matches!(reg.resize("p", 10, 10), Err(PtyError::NotStarted(_))));
        reg.delete("p").await.unwrap();
        assert!(matches!(reg.resize("p", 10, 10), Err(PtyError::Ended(_))));
        assert!(matches!(reg.delete("p").await, Err(PtyError::Ended(_))));
        // The id may be used again, and is then live, not ended.
        reg.create(lazy("p")).unwrap();
        assert!(matches!(reg.resize("p", 10, 10), Err(PtyError::NotStarted(_))));
        reg.delete("p").await.unwrap();
    }

    #[tokio::test]
    async fn a_terminal_that_ends_by_itself_is_remembered_as_ended() {
        let reg = registry();
        let pty = reg.create(NewPty { lazy_start: false, ..lazy("x") }).unwrap();
        assert!(pty.is_active());
        // Not through the registry: the terminal's own end must tell it.
        let p = pty.clone();
        tokio::task::spawn_blocking(move || p.kill_blocking()).await.unwrap();
        assert!(matches!(reg.get("x"), Err(PtyError::Ended(_))));
        assert!(reg.list().is_empty());
    }

    #[tokio::test]
    async fn only_the_most_recent_ends_are_remembered() {
        let reg = registry();
        for i in 0..=REMEMBERED_ENDS {
            let id = format!("p{i}");
            reg.create(lazy(&id)).unwrap();
            reg.delete(&id).await.unwrap();
        }
        assert_eq!(reg.lock().ended.len(), REMEMBERED_ENDS);
        assert!(matches!(reg.get("p0"), Err(PtyError::NotFound(_))));
        assert!(matches!(reg.get(&format!("p{REMEMBERED_ENDS}")), Err(PtyError::Ended(_))));
    }
}
