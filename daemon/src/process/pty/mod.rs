//! PTY sessions (`/process/pty…`, process.md §5, sdk-0.226.md §3.1): interactive shells on
//! pseudo-terminals, shared by any number of websocket clients.
//!
//! Beyond the reference, each terminal keeps its most recent output (`DAYTONA_PTY_REPLAY_BYTES`,
//! 64 KiB by default) and replays it to every client right after `connected`, so a reconnecting
//! client sees the screen it left and the first prompt is never lost. Clients that do not expect
//! it just receive it as ordinary output.

pub mod api;
pub mod ring;
pub mod session;
pub mod sys;
pub mod ws;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub use session::{Client, End, Launch, Pty};

/// The registry of PTY sessions by id.
pub struct PtyRegistry {
    map: Mutex<HashMap<String, Arc<Pty>>>,
    pub replay_bytes: usize,
}

impl PtyRegistry {
    pub fn new(replay_bytes: usize) -> Self {
        PtyRegistry { map: Mutex::new(HashMap::new()), replay_bytes }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Pty>>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, id: &str) -> Option<Arc<Pty>> {
        self.map().get(id).cloned()
    }

    pub fn contains(&self, id: &str) -> bool {
        self.map().contains_key(id)
    }

    pub fn list(&self) -> Vec<Arc<Pty>> {
        self.map().values().cloned().collect()
    }

    /// Inserts unless the id is taken (atomic, so two creates of one id cannot both win).
    pub fn insert_if_absent(&self, pty: Arc<Pty>) -> bool {
        let mut m = self.map();
        if m.contains_key(&pty.id) {
            return false;
        }
        m.insert(pty.id.clone(), pty);
        true
    }

    /// Removes `pty` if it is still the one registered under its id: a later session that reused
    /// the id must survive the late exit of an earlier one.
    pub fn remove(&self, pty: &Arc<Pty>) {
        let mut m = self.map();
        if m.get(&pty.id).is_some_and(|p| Arc::ptr_eq(p, pty)) {
            m.remove(&pty.id);
        }
    }
}
