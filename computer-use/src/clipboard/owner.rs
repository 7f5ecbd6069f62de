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
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
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
        // Wakes the serving thread so it can drop stale transfers.
        DAYTONA_CLIPBOARD_TICK,
    }
}

/// An INCR transfer stops being served when its requestor stays silent this long (it died, or
/// gave up); the value it held is freed.
const STALE_TRANSFER: Duration = Duration::from_secs(60);

/// How often stale transfers are looked for while some are open: the serving thread blocks on
/// X events, so without a timer a silent requestor's transfer would stay until some unrelated
/// event came.
const TRANSFER_TICK: Duration = Duration::from_secs(5);

/// The most INCR transfers served at once. Each costs little (the value is shared), but every
/// one is a window we watch and a slot a requestor can hold for [`STALE_TRANSFER`]; further
/// requests needing INCR are refused the ICCCM way (property None) until one ends.
pub const MAX_TRANSFERS: usize = 8;

/// What we serve. `version` grows with every `set`, so the thread can tell a `SelectionClear`
/// meant for an older value from one that ends the current value.
struct Value {
    text: Option<Arc<String>>,
    version: u64,
}

/// A value as one target carries it, shared with the stored value where it is the same bytes.
#[derive(Clone)]
enum Bytes {
    Utf8(Arc<String>),
    Latin1(Arc<[u8]>),
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

/// The Latin-1 (`STRING`) form of one value, converted once and shared by every transfer of
/// it: converting per request made N pastes cost N copies of up to 16 MiB.
#[derive(Default)]
struct Latin1Cache {
    /// The value's version and its Latin-1 bytes (None: not representable).
    cached: Option<(u64, Option<Arc<[u8]>>)>,
}

impl Latin1Cache {
    fn get(&mut self, version: u64, text: &str) -> Option<Arc<[u8]>> {
        match &self.cached {
            Some((v, bytes)) if *v == version => bytes.clone(),
            _ => {
                // Replaced, not kept beside: an older value's bytes live on only in the
                // transfers still sending them.
                let bytes = text::to_latin1(text).map(Arc::from);
                self.cached = Some((version, bytes.clone()));
                bytes
            }
        }
    }
}

type TransferKey = (xproto::Window, xproto::Atom);

/// The open INCR transfers, at most [`MAX_TRANSFERS`], each dropped once its requestor stayed
/// silent for [`STALE_TRANSFER`].
#[derive(Default)]
struct Transfers {
    open: HashMap<TransferKey, Transfer>,
}

impl Transfers {
    /// Whether a transfer to `key` may start: a free slot, or one that replaces the transfer
    /// already going to that property (the requestor asked again).
    fn has_room(&self, key: TransferKey) -> bool {
        self.open.len() < MAX_TRANSFERS || self.open.contains_key(&key)
    }

    fn start(&mut self, key: TransferKey, t: Transfer) {
        debug_assert!(self.has_room(key));
        self.open.insert(key, t);
    }

    fn get_mut(&mut self, key: TransferKey) -> Option<&mut Transfer> {
        self.open.get_mut(&key)
    }

    /// Ends the transfer; the requestor window, when no other transfer to it goes on (so we
    /// stop watching it).
    fn finish(&mut self, key: TransferKey) -> Option<xproto::Window> {
        self.open.remove(&key)?;
        (!self.open.keys().any(|(w, _)| *w == key.0)).then_some(key.0)
    }

    /// Drops the transfers silent since before `now - STALE_TRANSFER`; the windows no longer
    /// watched for any.
    fn expire(&mut self, now: Instant) -> Vec<xproto::Window> {
        let stale: Vec<TransferKey> = self
            .open
            .iter()
            .filter(|(_, t)| now.saturating_duration_since(t.last) >= STALE_TRANSFER)
            .map(|(k, _)| *k)
            .collect();
        let mut windows: Vec<xproto::Window> = stale.into_iter().filter_map(|k| self.finish(k)).collect();
        windows.dedup();
        windows
    }

    fn len(&self) -> usize {
        self.open.len()
    }
}

pub struct Owner {
    pub display: String,
    conn: RustConnection,
    window: xproto::Window,
    pub atoms: Atoms,
    value: Mutex<Value>,
    alive: AtomicBool,
    chunk: usize,
    /// How many INCR transfers are open, for the timer thread (which wakes the serving thread
    /// only while some are).
    open_transfers: AtomicUsize,
}

/// A connection of its own to `display`, with the clipboard's atoms and an unmapped 1x1
/// input-only window: what a selection is owned through, and converted to.
pub(super) fn private_window(
    display: &str,
    aux: &CreateWindowAux,
) -> Result<(RustConnection, xproto::Window, Atoms), XError> {
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
        aux,
    )?;
    Ok((conn, window, atoms))
}

impl Owner {
    /// Connects, creates the window and starts the serving thread.
    pub fn start(display: &str) -> Result<Arc<Owner>, XError> {
        let (conn, window, atoms) = private_window(display, &CreateWindowAux::new())?;
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
            open_transfers: AtomicUsize::new(0),
        });
        let me = owner.clone();
        std::thread::Builder::new()
            .name("clipboard-owner".into())
            .spawn(move || me.serve())
            .map_err(|e| XError::internal(format!("cannot start the clipboard thread: {e}")))?;
        // Weak: the timer must not keep the owner (and its connection) alive.
        let me = Arc::downgrade(&owner);
        std::thread::Builder::new()
            .name("clipboard-timer".into())
            .spawn(move || Owner::tick(me))
            .map_err(|e| XError::internal(format!("cannot start the clipboard timer: {e}")))?;
        Ok(owner)
    }

    /// Every [`TRANSFER_TICK`] while INCR transfers are open, wakes the serving thread so it
    /// expires stale ones even when no other event comes; ends with the owner.
    fn tick(me: Weak<Owner>) {
        loop {
            std::thread::sleep(TRANSFER_TICK);
            let Some(owner) = me.upgrade() else { return };
            if !owner.is_alive() {
                return;
            }
            if owner.open_transfers.load(Ordering::SeqCst) > 0 {
                let a = owner.atoms.DAYTONA_CLIPBOARD_TICK;
                let wake = ClientMessageEvent::new(32, owner.window, a, [0u32; 5]);
                let _ = owner.conn.send_event(false, owner.window, EventMask::NO_EVENT, wake);
                let _ = owner.conn.flush();
            }
        }
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
        let mut transfers = Transfers::default();
        let mut latin1 = Latin1Cache::default();
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
                Event::SelectionRequest(req) => self.answer(req, &mut transfers, &mut latin1),
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
            // After every event, the timer's wake-ups included.
            for window in transfers.expire(Instant::now()) {
                self.unwatch(window);
            }
            self.open_transfers.store(transfers.len(), Ordering::SeqCst);
            let _ = self.conn.flush();
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
        transfers: &mut Transfers,
        latin1: &mut Latin1Cache,
    ) -> Result<(), XError> {
        // Obsolete requestors pass no property: the target's name is the property (ICCCM).
        let property = if req.property == x11rb::NONE { req.target } else { req.property };
        let (text, version) = {
            let v = lock(&self.value);
            (v.text.clone(), v.version)
        };
        let stored = match (req.selection == self.atoms.CLIPBOARD, text) {
            (true, Some(text)) => self.convert(&req, property, (text, version), transfers, latin1)?,
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
        (text, version): (Arc<String>, u64),
        transfers: &mut Transfers,
        latin1: &mut Latin1Cache,
    ) -> Result<bool, XError> {
        let a = &self.atoms;
        let w = req.requestor;
        if req.target == a.TARGETS {
            let mut targets = vec![a.TARGETS, a.UTF8_STRING, a.TEXT];
            if text::is_latin1(&text) {
                targets.push(AtomEnum::STRING.into());
            }
            self.conn.change_property32(PropMode::REPLACE, w, property, AtomEnum::ATOM, &targets)?;
            return Ok(true);
        }
        let (ty, data) = if req.target == a.UTF8_STRING || req.target == a.TEXT {
            (a.UTF8_STRING, Bytes::Utf8(text))
        } else if req.target == u32::from(AtomEnum::STRING) {
            match latin1.get(version, &text) {
                Some(bytes) => (AtomEnum::STRING.into(), Bytes::Latin1(bytes)),
                None => return Ok(false),
            }
        } else {
            return Ok(false);
        };
        if !text::needs_incr(data.len(), self.chunk) {
            self.conn.change_property8(PropMode::REPLACE, w, property, ty, data.as_bytes())?;
            return Ok(true);
        }
        if !transfers.has_room((w, property)) {
            tracing::debug!(requestor = w, "too many clipboard transfers at once; refusing one");
            return Ok(false);
        }
        // INCR: announce the size, then write a chunk each time the requestor deletes the
        // property (PropertyNotify on its window, which we must select).
        self.conn.change_window_attributes(
            w,
            &ChangeWindowAttributesAux::new().event_mask(EventMask::PROPERTY_CHANGE),
        )?;
        let size = u32::try_from(data.len()).unwrap_or(u32::MAX);
        self.conn.change_property32(PropMode::REPLACE, w, property, a.INCR, &[size])?;
        transfers.start((w, property), Transfer { data, offset: 0, ty, last: Instant::now() });
        Ok(true)
    }

    fn continue_transfer(
        &self,
        window: xproto::Window,
        property: xproto::Atom,
        transfers: &mut Transfers,
    ) -> Result<(), XError> {
        let Some(t) = transfers.get_mut((window, property)) else { return Ok(()) };
        let piece = text::next_chunk(t.data.as_bytes(), t.offset, self.chunk);
        let done = piece.is_empty();
        let r = self.conn.change_property8(PropMode::REPLACE, window, property, t.ty, piece);
        t.offset += piece.len();
        t.last = Instant::now();
        if done || r.is_err() {
            // The empty piece ends the transfer; stop watching the window unless another
            // transfer to it goes on.
            if let Some(w) = transfers.finish((window, property)) {
                self.unwatch(w);
            }
        }
        r?;
        self.conn.flush()?;
        Ok(())
    }

    /// Stops watching a requestor's window once no transfer to it goes on.
    fn unwatch(&self, window: xproto::Window) {
        let _ = self.conn.change_window_attributes(
            window,
            &ChangeWindowAttributesAux::new().event_mask(EventMask::NO_EVENT),
        );
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        let _ = self.conn.destroy_window(self.window);
        let _ = self.conn.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transfer(last: Instant) -> Transfer {
        Transfer { data: Bytes::Latin1(Arc::from(&b"x"[..])), offset: 0, ty: 31, last }
    }

    #[test]
    fn one_latin1_copy_per_value_shared_by_every_transfer() {
        let mut cache = Latin1Cache::default();
        let a = cache.get(1, "café").unwrap();
        let b = cache.get(1, "café").unwrap();
        assert!(Arc::ptr_eq(&a, &b), "the second paste reuses the first conversion");
        assert_eq!(&*a, b"caf\xe9");
        let c = cache.get(2, "thé").unwrap();
        assert!(!Arc::ptr_eq(&a, &c), "a new value is converted anew");
        assert_eq!(&*c, b"th\xe9");
        assert_eq!(cache.get(3, "日本"), None);
        assert_eq!(cache.get(3, "日本"), None);
    }

    #[test]
    fn transfers_are_capped_and_further_ones_refused() {
        let now = Instant::now();
        let mut t = Transfers::default();
        for i in 0..MAX_TRANSFERS as u32 {
            assert!(t.has_room((100 + i, 1)));
            t.start((100 + i, 1), transfer(now));
        }
        assert!(!t.has_room((999, 1)), "a ninth transfer is refused");
        assert!(t.has_room((100, 1)), "a requestor asking again on its own property replaces its transfer");
        assert_eq!(t.finish((100, 1)), Some(100), "its window is no longer watched");
        assert!(t.has_room((999, 1)), "a slot frees when a transfer ends");
    }

    #[test]
    fn a_window_stays_watched_while_another_transfer_to_it_goes_on() {
        let now = Instant::now();
        let mut t = Transfers::default();
        t.start((7, 1), transfer(now));
        t.start((7, 2), transfer(now));
        assert_eq!(t.finish((7, 1)), None);
        assert_eq!(t.finish((7, 2)), Some(7));
        assert_eq!(t.finish((7, 2)), None, "finishing twice is harmless");
    }

    #[test]
    fn stale_transfers_expire_by_time_alone() {
        let t0 = Instant::now();
        let mut t = Transfers::default();
        t.start((1, 1), transfer(t0));
        t.start((2, 1), transfer(t0 + Duration::from_secs(30)));
        assert!(t.expire(t0 + Duration::from_secs(59)).is_empty());
        assert_eq!(t.expire(t0 + STALE_TRANSFER), vec![1]);
        assert_eq!(t.len(), 1);
        assert_eq!(t.expire(t0 + Duration::from_secs(30) + STALE_TRANSFER), vec![2]);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn the_timer_wakes_well_within_the_stale_limit() {
        assert!(TRANSFER_TICK * 4 <= STALE_TRANSFER);
    }
}
