//! The agent's X11 connection: opened lazily on the desktop's `DISPLAY`, re-opened when the
//! server went away (Xvfb restarted), and the record of held keys and buttons so they can be
//! released.
//!
//! Every X call blocks, so callers run on blocking threads ([`X11::run`] wraps `spawn_blocking`).
//! One connection is shared behind a mutex that is held per X step, never across the pauses of
//! an input sequence, so a long `type` with a delay does not stall screenshots.

use std::sync::{Arc, Mutex};

use super::conn::Conn;
use super::error::XError;
use crate::desktop_env::SharedDesktopEnv;
use crate::sync::lock;

/// Keys and buttons pressed by `keyboard/down` / `mouse/down` and not released yet.
#[derive(Debug, Default)]
struct Held {
    keys: Vec<u8>,
    buttons: Vec<u8>,
}

pub struct X11 {
    desktop_env: SharedDesktopEnv,
    conn: Mutex<Option<Conn>>,
    held: Mutex<Held>,
    /// Serialises keyboard sequences that borrow spare keycodes (unicode typing), so two of them
    /// never remap the same keycode under each other.
    pub(crate) typing: Mutex<()>,
}

impl X11 {
    pub fn new(desktop_env: SharedDesktopEnv) -> X11 {
        X11 { desktop_env, conn: Mutex::new(None), held: Mutex::new(Held::default()), typing: Mutex::new(()) }
    }

    /// Runs one X step on the shared connection (blocking). Connects on first use or when
    /// `DISPLAY` changed; when a reused connection turns out to be dead (the server restarted),
    /// reconnects and runs the step once more.
    pub fn with<R>(&self, mut f: impl FnMut(&mut Conn) -> Result<R, XError>) -> Result<R, XError> {
        let display = self.desktop_env.display();
        let mut guard = lock(&self.conn);
        if guard.as_ref().is_some_and(|c| c.display != display) {
            *guard = None;
        }
        let fresh = guard.is_none();
        if fresh {
            *guard = Some(Conn::open(&display)?);
        }
        let result = f(guard.as_mut().expect("connected"));
        match result {
            Err(e) if e.is_lost() => {
                *guard = None;
                if fresh {
                    return Err(e);
                }
                // Whatever was held lived on the old server.
                *lock(&self.held) = Held::default();
                let mut conn = Conn::open(&display)?;
                let r = f(&mut conn);
                if !matches!(&r, Err(e) if e.is_lost()) {
                    *guard = Some(conn);
                }
                r
            }
            other => other,
        }
    }

    /// Runs a blocking X sequence off the async runtime. The sequence's own error type only
    /// has to take an [`XError`], for the worker thread that failed.
    pub async fn run<R, E>(
        self: &Arc<Self>,
        f: impl FnOnce(&X11) -> Result<R, E> + Send + 'static,
    ) -> Result<R, E>
    where
        R: Send + 'static,
        E: From<XError> + Send + 'static,
    {
        let me = self.clone();
        match tokio::task::spawn_blocking(move || f(&me)).await {
            Ok(r) => r,
            Err(e) => Err(XError::internal(format!("X11 task failed: {e}")).into()),
        }
    }

    pub(crate) fn note_key_down(&self, keycode: u8) {
        let mut held = lock(&self.held);
        if !held.keys.contains(&keycode) {
            held.keys.push(keycode);
        }
    }

    pub(crate) fn held_keys(&self) -> Vec<u8> {
        lock(&self.held).keys.clone()
    }

    pub(crate) fn note_key_up(&self, keycode: u8) {
        lock(&self.held).keys.retain(|k| *k != keycode);
    }

    pub(crate) fn note_button_down(&self, button: u8) {
        let mut held = lock(&self.held);
        if !held.buttons.contains(&button) {
            held.buttons.push(button);
        }
    }

    pub(crate) fn note_button_up(&self, button: u8) {
        lock(&self.held).buttons.retain(|b| *b != button);
    }

    /// Releases every key and mouse button pressed through `keyboard/down` or `mouse/down` and
    /// not released yet (on `/computeruse/stop` and at exit).
    pub fn release_all(&self) {
        let held = std::mem::take(&mut *lock(&self.held));
        if held.keys.is_empty() && held.buttons.is_empty() {
            return;
        }
        let work = || {
            let r = self.with(|c| {
                for b in held.buttons.iter().rev() {
                    c.button(*b, false)?;
                }
                for k in held.keys.iter().rev() {
                    c.key(*k, false)?;
                }
                c.restore_remapped(&[])?;
                c.sync()
            });
            if let Err(e) = r {
                tracing::warn!(error = %e, "releasing held keys and buttons failed");
            }
        };
        // Called from async code (stop, shutdown): leave the runtime's worker while blocking.
        match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(work)
            }
            _ => work(),
        }
    }
}
