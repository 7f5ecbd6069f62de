//! Owning the CLIPBOARD selection: a connection of its own, an unmapped input-only window, and
//! a thread that answers other clients' `SelectionRequest`s for as long as we own it, so the
//! value stays pasteable after the request that set it returned (X has no clipboard storage:
//! the owner must answer every paste).
//!
//! Targets: `TARGETS`, `UTF8_STRING`, `TEXT` (answered as UTF-8) and `STRING` (Latin-1, refused
//! when the text has characters beyond U+00FF). Not `TIMESTAMP`: the selection is taken at
//! `CurrentTime` (as xclip does), so there is no real acquisition time to tell. Values larger than one chunk
//! go by INCR: the requestor deletes each piece and we write the next, then an empty one.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use x11rb::connection::{Connection, RequestConnection};
use x11rb::protocol::Event;
use x11rb::protocol::xproto::{
    self, AtomEnum, ChangeWindowAttributesAux, ClientMessageEvent, ConnectionExt as _, CreateWindowAux,
    EventMask, PropMode, Property, SelectionNotifyEvent, SelectionRequestEvent, WindowClass,
};
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;

use super::text;
use crate::sync::lock;
use crate::x11::error::XError;

x11rb::atom_manager! {
    pub Atoms: AtomsCookie {
        CLIPBOARD,
        TARGETS,
        UTF8_STRING,
        TEXT,
        INCR,
        // Where conversions for our own reads land, on our own windows.
        DAYTONA_CLIPBOARD,
        // Wakes the serving thread so it can end.
        DAYTONA_CLIPBOARD_STOP,
    }
}

/// An INCR transfer stops being served when its requestor stays silent this long (it died, or
/// gave up); the value it held is freed.
const STALE_TRANSFER: Duration = Duration::from_secs(60);

/// What we serve. `version` grows with every `set`, so the thread can tell a `SelectionClear`
/// meant for an older value from one that ends the current value.
struct Value {
    text: Option<Arc<String>>,
    version: u64,
}

/// A value as one target carries it, shared with the stored value where it is the same bytes.
enum Bytes {
    Utf8(Arc<String>),
    Latin1(Arc<Vec<u8>>),
}

impl Bytes {
    fn as_bytes(&self) -> &[u8] {
        match self {
            Bytes::Utf8(s) => s.as_bytes(),
            Bytes::Latin1(b) => b,
        }
    }

    fn len(&self) -> usize {
        self.as_bytes().len()
    }
}

/// One INCR transfer to one requestor's property.
struct Transfer {
    data: Bytes,
    offset: usize,
    ty: xproto::Atom,
    last: Instant,
}

pub struct Owner {
    pub display: String,
    conn: RustConnection,
    window: xproto::Window,
    pub atoms: Atoms,
    value: Mutex<Value>,
    alive: AtomicBool,
    chunk: usize,
}

impl Owner {
    /// Connects, creates the window and starts the serving thread.
    pub fn start(display: &str) -> Result<Arc<Owner>, XError> {
        let (conn, screen) = RustConnection::connect(Some(display))
            .map_err(|e| XError::lost(format!("cannot open display {display}: {e}")))?;
        let root = conn.setup().roots[screen].root;
        let atoms = Atoms::new(&conn)?.reply()?;
        let window = conn.generate_id()?;
        conn.create_window(
            x11rb::COPY_DEPTH_FROM_PARENT,
            window,
            root,
            -1,
            -1,
            1,
            1,
            0,
            WindowClass::INPUT_ONLY,
            x11rb::COPY_FROM_PARENT,
            &CreateWindowAux::new(),
        )?;
        conn.flush()?;
        let chunk = text::chunk_size(conn.maximum_request_bytes());
        let owner = Arc::new(Owner {
            display: display.to_owned(),
            conn,
            window,
            atoms,
            value: Mutex::new(Value { text: None, version: 0 }),
            alive: AtomicBool::new(true),
            chunk,
        });
        let me = owner.clone();
        std::thread::Builder::new()
            .name("clipboard-owner".into())
            .spawn(move || me.serve())
            .map_err(|e| XError::internal(format!("cannot start the clipboard thread: {e}")))?;
        Ok(owner)
    }

    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::SeqCst)
    }

    /// Takes the CLIPBOARD selection with `text` as its value.
    pub fn set(&self, text: Arc<String>) -> Result<(), XError> {
        {
            // The request goes out under the lock, so the thread's ownership checks (also sent
            // under it) are ordered with it; see `cleared`.
            let mut v = lock(&self.value);
            v.version += 1;
            v.text = Some(text);
            self.conn.set_selection_owner(self.window, self.atoms.CLIPBOARD, x11rb::CURRENT_TIME)?;
            self.conn.flush()?;
        }
        let owner = self.conn.get_selection_owner(self.atoms.CLIPBOARD)?.reply()?.owner;
        if owner != self.window {
            return Err(XError::new("the X server did not give us the clipboard"));
        }
        Ok(())
    }

    /// Our value, when we still own the selection (asked of the server, not assumed).
    pub fn current(&self) -> Result<Option<Arc<String>>, XError> {
        let owner = self.conn.get_selection_owner(self.atoms.CLIPBOARD)?.reply()?.owner;
        if owner != self.window {
            return Ok(None);
        }
        Ok(lock(&self.value).text.clone())
    }

    /// Ends the serving thread (the agent moved to another display); the selection goes with
    /// the connection.
    pub fn stop(&self) {
        self.alive.store(false, Ordering::SeqCst);
        let wake = ClientMessageEvent::new(32, self.window, self.atoms.DAYTONA_CLIPBOARD_STOP, [0u32; 5]);
        let _ = self.conn.send_event(false, self.window, EventMask::NO_EVENT, wake);
        let _ = self.conn.flush();
    }

    fn serve(self: Arc<Self>) {
        let mut transfers: HashMap<(xproto::Window, xproto::Atom), Transfer> = HashMap::new();
        loop {
            let ev = match self.conn.wait_for_event() {
                Ok(ev) => ev,
                Err(e) => {
                    tracing::info!(error = %e, display = %self.display, "clipboard connection ended");
                    break;
                }
            };
            if !self.is_alive() {
                break;
            }
            let r = match ev {
                Event::SelectionRequest(req) => self.answer(req, &mut transfers),
                Event::SelectionClear(e) if e.selection == self.atoms.CLIPBOARD => self.cleared(),
                Event::PropertyNotify(e) if e.state == Property::DELETE => {
                    self.continue_transfer(e.window, e.atom, &mut transfers)
                }
                _ => Ok(()),
            };
            if let Err(e) = r {
                if e.is_lost() {
                    tracing::info!(error = %e, "clipboard connection lost");
                    break;
                }
                tracing::debug!(error = %e, "serving a clipboard request failed");
            }
            transfers.retain(|_, t| t.last.elapsed() < STALE_TRANSFER);
        }
        self.alive.store(false, Ordering::SeqCst);
    }

    /// Another client took the selection: drop our value, unless a `set` since then made us the
    /// owner again (the clear was for the value before it).
    fn cleared(&self) -> Result<(), XError> {
        let (version, cookie) = {
            let v = lock(&self.value);
            (v.version, self.conn.get_selection_owner(self.atoms.CLIPBOARD)?)
        };
        let owner = cookie.reply()?.owner;
        let mut v = lock(&self.value);
        if owner != self.window && v.version == version {
            v.text = None;
        }
        Ok(())
    }

    fn answer(
        &self,
        req: SelectionRequestEvent,
        transfers: &mut HashMap<(xproto::Window, xproto::Atom), Transfer>,
    ) -> Result<(), XError> {
        // Obsolete requestors pass no property: the target's name is the property (ICCCM).
        let property = if req.property == x11rb::NONE { req.target } else { req.property };
        let text = lock(&self.value).text.clone();
        let stored = match (req.selection == self.atoms.CLIPBOARD, text) {
            (true, Some(text)) => self.convert(&req, property, text, transfers)?,
            _ => false,
        };
        let notify = SelectionNotifyEvent {
            response_type: xproto::SELECTION_NOTIFY_EVENT,
            sequence: 0,
            time: req.time,
            requestor: req.requestor,
            selection: req.selection,
            target: req.target,
            property: if stored { property } else { x11rb::NONE },
        };
        self.conn.send_event(false, req.requestor, EventMask::NO_EVENT, notify)?;
        self.conn.flush()?;
        Ok(())
    }

    /// Writes the answer for `req.target` into the requestor's property; false when we refuse
    /// the target.
    fn convert(
        &self,
        req: &SelectionRequestEvent,
        property: xproto::Atom,
        text: Arc<String>,
        transfers: &mut HashMap<(xproto::Window, xproto::Atom), Transfer>,
    ) -> Result<bool, XError> {
        let a = &self.atoms;
        let w = req.requestor;
        if req.target == a.TARGETS {
            let mut targets = vec![a.TARGETS, a.UTF8_STRING, a.TEXT];
            if text::to_latin1(&text).is_some() {
                targets.push(AtomEnum::STRING.into());
            }
            self.conn.change_property32(PropMode::REPLACE, w, property, AtomEnum::ATOM, &targets)?;
            return Ok(true);
        }
        let (ty, data) = if req.target == a.UTF8_STRING || req.target == a.TEXT {
            (a.UTF8_STRING, Bytes::Utf8(text))
        } else if req.target == u32::from(AtomEnum::STRING) {
            match text::to_latin1(&text) {
                Some(bytes) => (AtomEnum::STRING.into(), Bytes::Latin1(Arc::new(bytes))),
                None => return Ok(false),
            }
        } else {
            return Ok(false);
        };
        if !text::needs_incr(data.len(), self.chunk) {
            self.conn.change_property8(PropMode::REPLACE, w, property, ty, data.as_bytes())?;
            return Ok(true);
        }
        // INCR: announce the size, then write a chunk each time the requestor deletes the
        // property (PropertyNotify on its window, which we must select).
        self.conn.change_window_attributes(
            w,
            &ChangeWindowAttributesAux::new().event_mask(EventMask::PROPERTY_CHANGE),
        )?;
        let size = u32::try_from(data.len()).unwrap_or(u32::MAX);
        self.conn.change_property32(PropMode::REPLACE, w, property, a.INCR, &[size])?;
        transfers.insert((w, property), Transfer { data, offset: 0, ty, last: Instant::now() });
        Ok(true)
    }

    fn continue_transfer(
        &self,
        window: xproto::Window,
        property: xproto::Atom,
        transfers: &mut HashMap<(xproto::Window, xproto::Atom), Transfer>,
    ) -> Result<(), XError> {
        let Some(t) = transfers.get_mut(&(window, property)) else { return Ok(()) };
        let piece = text::next_chunk(t.data.as_bytes(), t.offset, self.chunk);
        let done = piece.is_empty();
        let r = self.conn.change_property8(PropMode::REPLACE, window, property, t.ty, piece);
        t.offset += piece.len();
        t.last = Instant::now();
        if done || r.is_err() {
            // The empty piece ends the transfer; stop watching the window unless another
            // transfer to it goes on.
            transfers.remove(&(window, property));
            if !transfers.keys().any(|(w, _)| *w == window) {
                let _ = self.conn.change_window_attributes(
                    window,
                    &ChangeWindowAttributesAux::new().event_mask(EventMask::NO_EVENT),
                );
            }
        }
        r?;
        self.conn.flush()?;
        Ok(())
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        let _ = self.conn.destroy_window(self.window);
        let _ = self.conn.flush();
    }
}
