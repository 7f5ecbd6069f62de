//! The clipboard service: one selection owner per display (started on the first `set`, replaced
//! when `DISPLAY` changed or its connection died), and reads that answer our own value without
//! a round trip through the selection machinery.

use std::sync::{Arc, Mutex};

use super::owner::Owner;
use super::read::{self, Late, ReadError};
use super::text::MAX_TEXT_BYTES;
use crate::desktop_env::SharedDesktopEnv;
use crate::sync::lock;
use crate::x11::error::XError;

/// Why a clipboard operation failed.
#[derive(Debug)]
pub enum ClipboardError {
    X(XError),
    /// The owner did not answer a conversion (or finish it) in time; which deadline it missed.
    NoAnswer(Late),
    /// The owner holds something that is not text.
    NotText,
    /// The text (to set, or held by another client) is over [`MAX_TEXT_BYTES`].
    TooLarge,
}

impl From<XError> for ClipboardError {
    fn from(e: XError) -> ClipboardError {
        ClipboardError::X(e)
    }
}

impl From<ReadError> for ClipboardError {
    fn from(e: ReadError) -> ClipboardError {
        match e {
            ReadError::X(e) => ClipboardError::X(e),
            ReadError::NoAnswer(late) => ClipboardError::NoAnswer(late),
            ReadError::NotText => ClipboardError::NotText,
            ReadError::TooLarge => ClipboardError::TooLarge,
        }
    }
}

pub struct Clipboard {
    desktop_env: SharedDesktopEnv,
    owner: Mutex<Option<Arc<Owner>>>,
}

impl Clipboard {
    pub fn new(desktop_env: SharedDesktopEnv) -> Clipboard {
        Clipboard { desktop_env, owner: Mutex::new(None) }
    }

    /// The live owner for the current display, started if needed (blocking).
    fn owner(&self) -> Result<Arc<Owner>, XError> {
        let display = self.desktop_env.display();
        let mut guard = lock(&self.owner);
        if let Some(o) = guard.as_ref()
            && o.is_alive()
            && o.display == display
        {
            return Ok(o.clone());
        }
        if let Some(old) = guard.take() {
            old.stop();
        }
        let o = Owner::start(&display)?;
        *guard = Some(o.clone());
        Ok(o)
    }

    /// The owner of the current display if one runs; never starts one.
    fn existing_owner(&self) -> Option<Arc<Owner>> {
        let display = self.desktop_env.display();
        lock(&self.owner).as_ref().filter(|o| o.is_alive() && o.display == display).cloned()
    }

    /// Takes the selection with `text` (blocking). The value stays available until another
    /// client takes the selection.
    pub fn set(&self, text: String) -> Result<(), ClipboardError> {
        if text.len() > MAX_TEXT_BYTES {
            return Err(ClipboardError::TooLarge);
        }
        let text = Arc::new(text);
        let owner = self.owner()?;
        match owner.set(text.clone()) {
            // A connection that died under us (Xvfb restarted): once more on a fresh one.
            Err(e) if e.is_lost() => {
                owner.stop();
                Ok(self.owner()?.set(text)?)
            }
            r => Ok(r?),
        }
    }

    /// The clipboard's text (blocking): ours when we own it, else the owner's; empty when
    /// nobody owns the selection.
    pub fn get(&self) -> Result<String, ClipboardError> {
        if let Some(o) = self.existing_owner()
            && let Ok(Some(text)) = o.current()
        {
            return Ok(text.as_str().to_owned());
        }
        Ok(read::read(&self.desktop_env.display())?)
    }
}
