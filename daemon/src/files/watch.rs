//! The service behind `GET /files/watch`: a [`Session`] watches a file or directory and streams
//! its changes over a WebSocket as JSON.
//!
//! Beyond the reference daemon; no official client calls it yet, so this module and the route's
//! description in `api.rs` define the contract (see [`WatchEvent`]).
//!
//! Pipeline: notify's inotify thread → [`Feeder`] (translates to [`Raw`], never blocks: a full
//! queue counts drops) → bounded queue → the connection task, which runs the pure [`Machine`]
//! (rename pairing, coalescing, ordering) and writes one text frame per event.

use std::collections::{HashMap, VecDeque};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use notify::event::{CreateKind, EventKind, ModifyKind, RemoveKind, RenameMode};
use notify::{RecursiveMode, Watcher};
use serde::Serialize;
use tokio::sync::mpsc;
use utoipa::ToSchema;

use crate::text::lossy_per_byte;

/// Events seen within this window are coalesced (repeated `modified` of one path become one)
/// and an unpaired move waits this long for its other half.
pub const WINDOW: Duration = Duration::from_millis(50);
/// Raw events queued between the inotify thread and the connection; beyond it they are dropped
/// and counted (one `overflow` event reports them).
pub const QUEUE: usize = 4096;
/// Events held for coalescing at most; beyond it the oldest go out before their window ends.
pub const MAX_PENDING: usize = 4096;
/// Entries a newly created directory is scanned for at most (see [`scan_new_dir`]).
pub const SCAN_LIMIT: usize = 10_000;
/// How long a path reported from a scan suppresses the duplicate `created` inotify may still send.
const SYNTHESIZED_TTL: Duration = Duration::from_secs(2);
/// Close code and reason when the inotify thread went away under a live connection.
const WATCHER_STOPPED: (u16, &str) = (1011, "file watcher stopped");

/// One change, sent as one JSON text frame.
#[derive(Serialize, ToSchema, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct WatchEvent {
    #[serde(rename = "type")]
    pub kind: EventType,
    /// The changed entry: the requested `path` joined with the entry's path relative to it (the
    /// requested `path` verbatim for the watched file or directory itself). Absent for
    /// `overflow` and `error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// `renamed` only: where the entry was before, same form as `path`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_path: Option<String>,
    /// Whether the entry is a directory; `false` when it can no longer be known (an entry moved
    /// out of the watched tree). Absent for `overflow` and `error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_dir: Option<bool>,
    /// `overflow` only: how many changes the daemon dropped because the client read too
    /// slowly; absent when the kernel's own queue overflowed (count unknown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dropped: Option<u64>,
    /// `error` only: what went wrong (e.g. the inotify watch limit was reached).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When the change (the first of a coalesced burst) was seen; RFC 3339, local time zone.
    pub timestamp: String,
}

#[derive(Serialize, ToSchema, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    Created,
    Modified,
    Deleted,
    Renamed,
    Overflow,
    Error,
}

// ---------------------------------------------------------------------------------- the feed

/// A change as the inotify thread saw it, before pairing and coalescing. Paths are absolute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Raw {
    pub kind: RawKind,
    pub path: PathBuf,
    pub is_dir: Option<bool>,
    pub time: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawKind {
    Created,
    Removed,
    Modified,
    /// First half of a move, with inotify's cookie.
    MovedFrom(usize),
    /// Second half of a move, with inotify's cookie.
    MovedTo(usize),
    /// The watched root itself was moved (inotify's `IN_MOVE_SELF`).
    SelfMoved,
    Overflow(Option<u64>),
    Error(String),
}

impl Raw {
    fn new(kind: RawKind, path: PathBuf, is_dir: Option<bool>, time: Timestamp) -> Self {
        Raw { kind, path, is_dir, time }
    }
}

/// Translates one notify callback into raw events. `is_dir` is asked only where notify does not
/// say (metadata changes, move targets); it stats the path in the real feed.
pub fn translate(
    res: notify::Result<notify::Event>,
    time: Timestamp,
    is_dir: impl Fn(&Path) -> Option<bool>,
) -> Option<Raw> {
    let ev = match res {
        Ok(ev) => ev,
        Err(e) => return Some(Raw::new(RawKind::Error(e.to_string()), PathBuf::new(), None, time)),
    };
    if ev.need_rescan() {
        return Some(Raw::new(RawKind::Overflow(None), PathBuf::new(), None, time));
    }
    let path = ev.paths.first()?.clone();
    let (kind, dir) = match ev.kind {
        EventKind::Create(k) => (
            RawKind::Created,
            match k {
                CreateKind::Folder => Some(true),
                CreateKind::File => Some(false),
                _ => is_dir(&path),
            },
        ),
        EventKind::Remove(k) => (
            RawKind::Removed,
            match k {
                RemoveKind::Folder => Some(true),
                RemoveKind::File => Some(false),
                _ => None,
            },
        ),
        EventKind::Modify(ModifyKind::Name(RenameMode::From)) => match ev.tracker() {
            Some(cookie) => (RawKind::MovedFrom(cookie), None),
            None => (RawKind::SelfMoved, None),
        },
        EventKind::Modify(ModifyKind::Name(RenameMode::To)) => {
            (RawKind::MovedTo(ev.tracker().unwrap_or(0)), is_dir(&path))
        }
        // notify's own pairing; ours works from the halves.
        EventKind::Modify(ModifyKind::Name(_)) => return None,
        // IN_MODIFY is only ever reported for files.
        EventKind::Modify(ModifyKind::Data(_)) => (RawKind::Modified, Some(false)),
        EventKind::Modify(_) => (RawKind::Modified, is_dir(&path)),
        // open/close/access: not changes.
        EventKind::Access(_) | EventKind::Any | EventKind::Other => return None,
    };
    Some(Raw::new(kind, path, dir, time))
}

/// notify's event handler: runs on the inotify thread and never blocks it. When the queue is
/// full the event is counted in `dropped`; the next event that fits is preceded by one
/// `overflow` carrying the count, so the gap sits where the loss happened.
struct Feeder {
    tx: mpsc::Sender<Raw>,
    dropped: Arc<AtomicU64>,
}

impl Feeder {
    fn offer(&self, raw: Raw) {
        let lost = self.dropped.swap(0, Ordering::AcqRel);
        if lost > 0 {
            let marker = Raw::new(overflow_kind(lost), PathBuf::new(), None, raw.time);
            if self.tx.try_send(marker).is_err() {
                // Still full: this event is lost too, and nothing may overtake the marker.
                self.restore(lost);
                self.lose(&raw);
                return;
            }
        }
        if let Err(mpsc::error::TrySendError::Full(raw)) = self.tx.try_send(raw) {
            self.lose(&raw);
        }
    }

    /// Counts an event that did not fit. A lost kernel-overflow notice makes the count unknown:
    /// the kernel never says how many events it dropped.
    fn lose(&self, raw: &Raw) {
        if matches!(raw.kind, RawKind::Overflow(None)) {
            self.dropped.fetch_or(COUNT_UNKNOWN, Ordering::AcqRel);
        } else {
            self.dropped.fetch_add(1, Ordering::AcqRel);
        }
    }

    fn restore(&self, lost: u64) {
        self.dropped.fetch_add(lost & !COUNT_UNKNOWN, Ordering::AcqRel);
        if lost & COUNT_UNKNOWN != 0 {
            self.dropped.fetch_or(COUNT_UNKNOWN, Ordering::AcqRel);
        }
    }
}

/// Set in a drop counter when the kernel's queue overflowed too, so the total is unknown.
const COUNT_UNKNOWN: u64 = 1 << 63;

/// The overflow marker for a drop counter's value.
fn overflow_kind(lost: u64) -> RawKind {
    if lost & COUNT_UNKNOWN != 0 { RawKind::Overflow(None) } else { RawKind::Overflow(Some(lost)) }
}

impl notify::EventHandler for Feeder {
    fn handle_event(&mut self, res: notify::Result<notify::Event>) {
        let stat = |p: &Path| std::fs::symlink_metadata(p).ok().map(|m| m.is_dir());
        if let Some(raw) = translate(res, Timestamp::now(), stat) {
            self.offer(raw);
        }
    }
}

// ----------------------------------------------------------------------------- the machine

/// An event ready to be sent, with absolute paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Out {
    pub kind: EventType,
    pub path: PathBuf,
    pub old_path: Option<PathBuf>,
    pub is_dir: bool,
    pub dropped: Option<u64>,
    pub message: Option<String>,
    pub time: Timestamp,
    /// A directory created (not moved in) during a recursive watch: its contents may predate
    /// its watch and are scanned once it is sent.
    pub scan: bool,
}

impl Out {
    fn simple(kind: EventType, path: PathBuf, is_dir: bool, time: Timestamp) -> Self {
        Out { kind, path, old_path: None, is_dir, dropped: None, message: None, time, scan: false }
    }

    fn paths(&self) -> impl Iterator<Item = &PathBuf> {
        std::iter::once(&self.path).chain(self.old_path.as_ref())
    }
}

struct Pending {
    /// `None` once coalesced away (a tombstone, skipped when it reaches the front).
    out: Option<Out>,
    due: Instant,
}

struct MoveFrom {
    cookie: usize,
    path: PathBuf,
    time: Timestamp,
    at: Instant,
}

/// Pairs moves, coalesces bursts and keeps order; pure (time is passed in), so it is tested
/// without a filesystem.
pub struct Machine {
    root: PathBuf,
    root_is_dir: bool,
    recursive: bool,
    pending: VecDeque<Pending>,
    /// Sequence number of `pending[0]`.
    front_seq: u64,
    /// Path → sequence number of the last pending event naming it.
    last: HashMap<PathBuf, u64>,
    move_from: Option<MoveFrom>,
    /// Paths reported from a directory scan, whose inotify `created` may still arrive.
    synthesized: HashMap<PathBuf, Instant>,
    finished: bool,
}

impl Machine {
    pub fn new(root: PathBuf, root_is_dir: bool, recursive: bool) -> Self {
        Machine {
            root,
            root_is_dir,
            recursive,
            pending: VecDeque::new(),
            front_seq: 0,
            last: HashMap::new(),
            move_from: None,
            synthesized: HashMap::new(),
            finished: false,
        }
    }

    /// True once the root is gone: send what is pending, then close.
    pub fn finished(&self) -> bool {
        self.finished
    }

    pub fn is_idle(&self) -> bool {
        self.pending.is_empty() && self.move_from.is_none()
    }

    pub fn push(&mut self, raw: Raw, now: Instant) {
        if self.finished {
            return;
        }
        if let Some(from) = self.move_from.take() {
            if raw.kind == RawKind::MovedTo(from.cookie) {
                let mut out =
                    Out::simple(EventType::Renamed, raw.path, raw.is_dir.unwrap_or(false), raw.time);
                out.old_path = Some(from.path);
                self.enqueue(out, now);
                return;
            }
            self.moved_out(from, now);
        }
        let Raw { kind, path, is_dir, time } = raw;
        match kind {
            RawKind::MovedFrom(cookie) => {
                self.move_from = Some(MoveFrom { cookie, path, time, at: now });
            }
            RawKind::MovedTo(_) => {
                self.enqueue(Out::simple(EventType::Created, path, is_dir.unwrap_or(false), time), now)
            }
            RawKind::Created => {
                if self.synthesized.remove(&path).is_some_and(|at| now.duration_since(at) < SYNTHESIZED_TTL) {
                    return; // already reported from the scan of its new parent
                }
                let is_dir = is_dir.unwrap_or(false);
                let mut out = Out::simple(EventType::Created, path, is_dir, time);
                out.scan = is_dir && self.recursive;
                self.enqueue(out, now);
            }
            RawKind::Removed if path == self.root => self.root_gone(time, now),
            RawKind::SelfMoved if path == self.root => self.root_gone(time, now),
            RawKind::SelfMoved => {}
            RawKind::Removed => {
                if self.last_kind(&path) == Some(EventType::Modified) {
                    self.tombstone_last(&path);
                }
                self.enqueue(Out::simple(EventType::Deleted, path, is_dir.unwrap_or(false), time), now);
            }
            RawKind::Modified => {
                if matches!(self.last_kind(&path), Some(EventType::Modified | EventType::Created)) {
                    return; // coalesced into the pending one
                }
                let is_dir = is_dir.unwrap_or(false);
                self.enqueue(Out::simple(EventType::Modified, path, is_dir, time), now);
            }
            RawKind::Overflow(dropped) => {
                // Back-to-back losses (nothing got through in between) are one gap.
                if let Some(Pending { out: Some(last), .. }) = self.pending.back_mut()
                    && last.kind == EventType::Overflow
                {
                    last.dropped = last.dropped.zip(dropped).map(|(a, b)| a + b);
                    return;
                }
                let mut out = Out::simple(EventType::Overflow, path, false, time);
                out.dropped = dropped;
                self.enqueue(out, now);
            }
            RawKind::Error(message) => {
                let mut out = Out::simple(EventType::Error, path, false, time);
                out.message = Some(message);
                self.enqueue(out, now);
            }
        }
    }

    /// The next event to send: the oldest, once its window has passed (at once when the root is
    /// gone or too many are held).
    pub fn pop_due(&mut self, now: Instant) -> Option<Out> {
        if let Some(from) = self.move_from.take_if(|f| now.duration_since(f.at) >= WINDOW) {
            self.moved_out(from, now);
        }
        loop {
            let front = self.pending.front()?;
            let ready = self.finished || self.pending.len() > MAX_PENDING || front.due <= now;
            if front.out.is_some() && !ready {
                return None;
            }
            let seq = self.front_seq;
            let item = self.pending.pop_front()?;
            self.front_seq += 1;
            if let Some(out) = item.out {
                for p in out.paths() {
                    if self.last.get(p) == Some(&seq) {
                        self.last.remove(p);
                    }
                }
                return Some(out);
            }
        }
    }

    /// When [`pop_due`](Self::pop_due) will next have something; `None` when idle.
    pub fn next_deadline(&self) -> Option<Instant> {
        let front = self.pending.front().map(|p| p.due);
        let from = self.move_from.as_ref().map(|f| f.at + WINDOW);
        match (front, from) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Records an entry found by scanning a new directory; returns the `created` to send unless
    /// one is already pending for it.
    pub fn synthesize(&mut self, path: PathBuf, is_dir: bool, now: Instant) -> Option<Out> {
        if self.finished {
            return None;
        }
        match self.last_kind(&path) {
            // Already queued from inotify: a `created`, or a lone `modified` when the directory's
            // watch came up after the entry was created but before it was written (that write
            // is really its creation). It leaves the queue now, in scan order, so an entry is
            // never reported after what the scan finds inside it.
            Some(EventType::Created | EventType::Modified) => {
                let mut out = self.take_last(&path)?;
                out.kind = EventType::Created;
                out.is_dir = is_dir;
                out.scan = false; // the scan under way already covers its subtree
                return Some(out);
            }
            // Already sent: it was reported.
            None if self.last.contains_key(&path) => return None,
            _ => {}
        }
        if self.synthesized.len() >= SCAN_LIMIT {
            self.synthesized.retain(|_, at| now.duration_since(*at) < SYNTHESIZED_TTL);
        }
        self.synthesized.insert(path.clone(), now);
        Some(Out::simple(EventType::Created, path, is_dir, Timestamp::now()))
    }

    fn moved_out(&mut self, from: MoveFrom, now: Instant) {
        // The kernel says whether a moved entry was a directory, but notify does not pass it on.
        self.enqueue(Out::simple(EventType::Deleted, from.path, false, from.time), now);
    }

    fn root_gone(&mut self, time: Timestamp, now: Instant) {
        let root = self.root.clone();
        self.enqueue(Out::simple(EventType::Deleted, root, self.root_is_dir, time), now);
        self.finished = true;
    }

    fn last_kind(&self, path: &Path) -> Option<EventType> {
        let seq = *self.last.get(path)?;
        let item = self.pending.get(usize::try_from(seq.checked_sub(self.front_seq)?).ok()?)?;
        item.out.as_ref().map(|o| o.kind)
    }

    /// Takes the pending event last naming `path` out of the queue.
    fn take_last(&mut self, path: &Path) -> Option<Out> {
        let seq = *self.last.get(path)?;
        let idx = usize::try_from(seq.checked_sub(self.front_seq)?).ok()?;
        let out = self.pending.get_mut(idx)?.out.take()?;
        for p in out.paths() {
            if self.last.get(p) == Some(&seq) {
                self.last.remove(p);
            }
        }
        Some(out)
    }

    fn tombstone_last(&mut self, path: &Path) {
        if let Some(&seq) = self.last.get(path)
            && let Some(item) = seq
                .checked_sub(self.front_seq)
                .and_then(|i| usize::try_from(i).ok())
                .and_then(|i| self.pending.get_mut(i))
        {
            item.out = None;
        }
    }

    fn enqueue(&mut self, out: Out, now: Instant) {
        self.synthesized.remove(&out.path);
        let seq = self.front_seq + self.pending.len() as u64;
        for p in out.paths() {
            self.last.insert(p.clone(), seq);
        }
        self.pending.push_back(Pending { out: Some(out), due: now + WINDOW });
    }
}

/// How a path is reported: the requested path (as the client spelled it) joined with the part
/// below the root.
pub fn report_path(requested: &[u8], root: &Path, path: &Path) -> String {
    let requested = Path::new(std::ffi::OsStr::from_bytes(requested));
    let shown = match path.strip_prefix(root) {
        Ok(rel) if rel.as_os_str().is_empty() => requested.to_path_buf(),
        Ok(rel) => requested.join(rel),
        Err(_) => path.to_owned(),
    };
    lossy_per_byte(shown.as_os_str().as_bytes())
}

fn to_wire(out: &Out, requested: &[u8], root: &Path, tz: &TimeZone) -> WatchEvent {
    let has_path = !matches!(out.kind, EventType::Overflow | EventType::Error);
    WatchEvent {
        kind: out.kind,
        path: has_path.then(|| report_path(requested, root, &out.path)),
        old_path: out.old_path.as_deref().map(|p| report_path(requested, root, p)),
        is_dir: has_path.then_some(out.is_dir),
        dropped: out.dropped,
        message: out.message.clone(),
        timestamp: crate::timefmt::format_rfc3339(out.time, tz),
    }
}

/// Entries below a directory created during a recursive watch, found breadth-first (at most
/// `limit`, symbolic links not followed). Files written into a new directory before notify
/// added its watch would otherwise never be reported.
pub fn scan_new_dir(dir: &Path, limit: usize) -> Vec<(PathBuf, bool)> {
    let mut found = Vec::new();
    let mut queue = VecDeque::from([dir.to_path_buf()]);
    while let Some(d) = queue.pop_front() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        let mut entries: Vec<(PathBuf, bool)> =
            rd.filter_map(Result::ok).map(|e| (e.path(), e.file_type().is_ok_and(|t| t.is_dir()))).collect();
        entries.sort();
        for (path, is_dir) in entries {
            if found.len() >= limit {
                return found;
            }
            if is_dir {
                queue.push_back(path.clone());
            }
            found.push((path, is_dir));
        }
    }
    found
}

// ------------------------------------------------------------------------------ a session

/// A watch installed for one connection; dropping it removes the watch and ends the thread.
pub struct Session {
    watcher: notify::RecommendedWatcher,
    rx: mpsc::Receiver<Raw>,
    dropped: Arc<AtomicU64>,
    requested: Vec<u8>,
    root: PathBuf,
    machine: Machine,
}

impl Session {
    /// Watches `root` (the path the client spelled `requested`, which the events repeat), a
    /// directory when `is_dir`, with everything below it when `recursive`. Blocking: a
    /// recursive watch walks the whole tree.
    pub fn start(
        requested: &[u8],
        root: PathBuf,
        is_dir: bool,
        recursive: bool,
    ) -> Result<Self, notify::Error> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let feeder = Feeder { tx, dropped: dropped.clone() };
        // Links inside the tree are not followed: a link to `/` would otherwise watch everything.
        let config = notify::Config::default().with_follow_symlinks(false);
        let watcher = notify::RecommendedWatcher::new(feeder, config)?;
        let mode = if recursive && is_dir { RecursiveMode::Recursive } else { RecursiveMode::NonRecursive };
        // notify starts its event thread in `new` and ignores a failure (the sandbox's pids
        // limit held by a fork bomb); `watch` then panics, and so would the watcher's drop while
        // that panic unwinds — a panic in a panic, which aborts the daemon. So the watcher is
        // kept from dropping until `watch` has worked, and leaked when it panicked.
        let mut watcher = std::mem::ManuallyDrop::new(watcher);
        let watched = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| watcher.watch(&root, mode)));
        match watched {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                drop(std::mem::ManuallyDrop::into_inner(watcher));
                return Err(e);
            }
            Err(_) => return Err(notify::Error::io(std::io::Error::from_raw_os_error(libc::EAGAIN))),
        }
        let watcher = std::mem::ManuallyDrop::into_inner(watcher);
        Ok(Session {
            watcher,
            rx,
            dropped,
            requested: requested.to_vec(),
            machine: Machine::new(root.clone(), is_dir, recursive && is_dir),
            root,
        })
    }

    /// Streams the events over `socket` until the client leaves or the watched path is gone.
    pub async fn run(mut self, mut socket: WebSocket) {
        let reason = self.pump(&mut socket).await;
        // Remove the watch before the (possibly slow) goodbye.
        drop(self.watcher);
        if let Some((code, reason)) = reason {
            let frame = CloseFrame { code, reason: reason.into() };
            if socket.send(Message::Close(Some(frame))).await.is_ok() {
                // Give the client a moment to answer the close; it need not.
                let _ = tokio::time::timeout(Duration::from_secs(2), async {
                    while let Some(Ok(msg)) = socket.recv().await {
                        if matches!(msg, Message::Close(_)) {
                            break;
                        }
                    }
                })
                .await;
            }
        }
    }

    /// Runs until the client leaves (`None`) or the server ends the stream (`Some` close code
    /// and reason): 1000 when the root is gone, 1011 if the watcher thread stopped.
    async fn pump(&mut self, socket: &mut WebSocket) -> Option<(u16, &'static str)> {
        let tz = TimeZone::system();
        loop {
            // Take everything queued; once the queue is empty, drops not yet reported by the
            // feeder (no event has come since) are reported here.
            loop {
                match self.rx.try_recv() {
                    Ok(raw) => self.machine.push(raw, Instant::now()),
                    Err(mpsc::error::TryRecvError::Empty) => {
                        let lost = self.dropped.swap(0, Ordering::AcqRel);
                        if lost > 0 {
                            let raw = Raw::new(overflow_kind(lost), PathBuf::new(), None, Timestamp::now());
                            self.machine.push(raw, Instant::now());
                        }
                        break;
                    }
                    Err(mpsc::error::TryRecvError::Disconnected) => return Some(WATCHER_STOPPED),
                }
            }
            while let Some(out) = self.machine.pop_due(Instant::now()) {
                if !self.send(socket, &out, &tz).await {
                    return None;
                }
                if out.scan && !self.scan(socket, out.path, &tz).await {
                    return None;
                }
            }
            if self.machine.finished() && self.machine.is_idle() {
                return Some((1000, "watched path was deleted"));
            }
            let deadline = self.machine.next_deadline();
            tokio::select! {
                msg = socket.recv() => match msg {
                    // Pings are answered by the socket itself on the next read.
                    Some(Ok(Message::Close(_))) => {
                        crate::ws::answer_close(socket).await;
                        return None;
                    }
                    Some(Err(_)) | None => return None,
                    Some(Ok(_)) => {}
                },
                raw = self.rx.recv() => match raw {
                    Some(raw) => self.machine.push(raw, Instant::now()),
                    None => return Some(WATCHER_STOPPED),
                },
                () = sleep_until(deadline) => {}
            }
        }
    }

    async fn send(&self, socket: &mut WebSocket, out: &Out, tz: &TimeZone) -> bool {
        let event = to_wire(out, &self.requested, &self.root, tz);
        let text = serde_json::to_string(&event).expect("event serialises");
        socket.send(Message::Text(text.into())).await.is_ok()
    }

    async fn scan(&mut self, socket: &mut WebSocket, dir: PathBuf, tz: &TimeZone) -> bool {
        let Ok(found) = tokio::task::spawn_blocking(move || scan_new_dir(&dir, SCAN_LIMIT)).await else {
            return true;
        };
        for (path, is_dir) in found {
            if let Some(out) = self.machine.synthesize(path, is_dir, Instant::now())
                && !self.send(socket, &out, tz).await
            {
                return false;
            }
        }
        true
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{DataChange, MetadataKind};

    fn ts() -> Timestamp {
        "2025-01-15T10:30:45Z".parse().unwrap()
    }

    fn raw(kind: RawKind, path: &str, is_dir: Option<bool>) -> Raw {
        Raw::new(kind, PathBuf::from(path), is_dir, ts())
    }

    fn drain(m: &mut Machine, now: Instant) -> Vec<(EventType, String, Option<String>)> {
        std::iter::from_fn(|| m.pop_due(now))
            .map(|o| (o.kind, o.path.display().to_string(), o.old_path.map(|p| p.display().to_string())))
            .collect()
    }

    fn ev(kind: EventType, path: &str) -> (EventType, String, Option<String>) {
        (kind, path.to_string(), None)
    }

    #[test]
    fn a_lost_kernel_overflow_makes_the_count_unknown() {
        let (tx, mut rx) = mpsc::channel(1);
        let feeder = Feeder { tx, dropped: Arc::new(AtomicU64::new(0)) };
        let t = Timestamp::now();
        feeder.offer(Raw::new(RawKind::Created, PathBuf::from("/w/a"), Some(false), t));
        // Queue full: a plain event is counted, the kernel's overflow notice makes it unknown.
        feeder.offer(Raw::new(RawKind::Created, PathBuf::from("/w/b"), Some(false), t));
        feeder.offer(Raw::new(RawKind::Overflow(None), PathBuf::new(), None, t));
        feeder.offer(Raw::new(RawKind::Created, PathBuf::from("/w/c"), Some(false), t));
        assert_eq!(rx.try_recv().unwrap().kind, RawKind::Created);
        feeder.offer(Raw::new(RawKind::Created, PathBuf::from("/w/d"), Some(false), t));
        assert_eq!(rx.try_recv().unwrap().kind, RawKind::Overflow(None), "the gap count is unknown");
        // `d` did not fit behind the marker; without a kernel overflow that count is exact.
        feeder.offer(Raw::new(RawKind::Created, PathBuf::from("/w/e"), Some(false), t));
        assert_eq!(rx.try_recv().unwrap().kind, RawKind::Overflow(Some(1)), "d");
        assert_eq!(overflow_kind(3), RawKind::Overflow(Some(3)));
    }

    #[test]
    fn translation_of_notify_events() {
        let t = ts();
        let no_stat = |_: &Path| -> Option<bool> { panic!("not asked") };
        let e = notify::Event::new(EventKind::Create(CreateKind::Folder)).add_path("/r/d".into());
        assert_eq!(translate(Ok(e), t, no_stat), Some(raw(RawKind::Created, "/r/d", Some(true))));
        let e = notify::Event::new(EventKind::Remove(RemoveKind::File)).add_path("/r/f".into());
        assert_eq!(translate(Ok(e), t, no_stat), Some(raw(RawKind::Removed, "/r/f", Some(false))));
        let e =
            notify::Event::new(EventKind::Modify(ModifyKind::Data(DataChange::Any))).add_path("/r/f".into());
        assert_eq!(translate(Ok(e), t, no_stat), Some(raw(RawKind::Modified, "/r/f", Some(false))));
        let e = notify::Event::new(EventKind::Modify(ModifyKind::Name(RenameMode::From)))
            .add_path("/r/a".into())
            .set_tracker(7);
        assert_eq!(translate(Ok(e), t, no_stat), Some(raw(RawKind::MovedFrom(7), "/r/a", None)));
        let e =
            notify::Event::new(EventKind::Modify(ModifyKind::Name(RenameMode::From))).add_path("/r".into());
        assert_eq!(translate(Ok(e), t, no_stat), Some(raw(RawKind::SelfMoved, "/r", None)));
        let e = notify::Event::new(EventKind::Modify(ModifyKind::Name(RenameMode::Both)))
            .add_path("/r/a".into())
            .add_path("/r/b".into());
        assert_eq!(translate(Ok(e), t, no_stat), None);
        let e = notify::Event::new(EventKind::Access(notify::event::AccessKind::Any)).add_path("/r/a".into());
        assert_eq!(translate(Ok(e), t, no_stat), None);
        let e = notify::Event::new(EventKind::Other).set_flag(notify::event::Flag::Rescan);
        assert_eq!(translate(Ok(e), t, no_stat), Some(raw(RawKind::Overflow(None), "", None)));

        // Metadata changes and move targets are stat'ed.
        let dir = |_: &Path| Some(true);
        let e = notify::Event::new(EventKind::Modify(ModifyKind::Metadata(MetadataKind::Any)))
            .add_path("/r/d".into());
        assert_eq!(translate(Ok(e), t, dir), Some(raw(RawKind::Modified, "/r/d", Some(true))));
        let e = notify::Event::new(EventKind::Modify(ModifyKind::Name(RenameMode::To)))
            .add_path("/r/b".into())
            .set_tracker(7);
        assert_eq!(translate(Ok(e), t, dir), Some(raw(RawKind::MovedTo(7), "/r/b", Some(true))));

        let err = notify::Error::new(notify::ErrorKind::MaxFilesWatch);
        let r = translate(Err(err), t, no_stat).unwrap();
        assert!(matches!(r.kind, RawKind::Error(ref m) if m.contains("limit")), "{r:?}");
    }

    #[test]
    fn moves_inside_the_tree_pair_into_renamed() {
        let now = Instant::now();
        let mut m = Machine::new("/r".into(), true, true);
        m.push(raw(RawKind::MovedFrom(3), "/r/a", None), now);
        m.push(raw(RawKind::MovedTo(3), "/r/sub/b", Some(false)), now);
        let out = m.pop_due(now + WINDOW).unwrap();
        assert_eq!(
            (out.kind, out.path, out.old_path, out.is_dir),
            (EventType::Renamed, "/r/sub/b".into(), Some("/r/a".into()), false)
        );
        assert!(m.is_idle());
    }

    #[test]
    fn moves_across_the_tree_boundary() {
        let now = Instant::now();
        let mut m = Machine::new("/r".into(), true, true);
        // Out: no second half follows, so after the window it is a deletion.
        m.push(raw(RawKind::MovedFrom(3), "/r/a", None), now);
        assert_eq!(m.pop_due(now), None);
        assert_eq!(m.next_deadline(), Some(now + WINDOW));
        let later = now + WINDOW;
        assert_eq!(m.pop_due(later), None, "the deletion now waits its own window");
        assert_eq!(drain(&mut m, later + WINDOW), vec![ev(EventType::Deleted, "/r/a")]);
        // In: a second half without a first is a creation, and unrelated halves do not pair.
        m.push(raw(RawKind::MovedTo(9), "/r/in", Some(true)), now);
        m.push(raw(RawKind::MovedFrom(4), "/r/x", None), now);
        m.push(raw(RawKind::MovedTo(5), "/r/y", Some(false)), now);
        let out = drain(&mut m, now + WINDOW * 3);
        assert_eq!(
            out,
            vec![
                ev(EventType::Created, "/r/in"),
                ev(EventType::Deleted, "/r/x"),
                ev(EventType::Created, "/r/y")
            ]
        );
    }

    #[test]
    fn a_pending_move_resolves_before_the_next_event() {
        let now = Instant::now();
        let mut m = Machine::new("/r".into(), true, false);
        m.push(raw(RawKind::MovedFrom(1), "/r/a", None), now);
        m.push(raw(RawKind::Created, "/r/b", Some(false)), now);
        assert_eq!(
            drain(&mut m, now + WINDOW),
            vec![ev(EventType::Deleted, "/r/a"), ev(EventType::Created, "/r/b")]
        );
    }

    #[test]
    fn bursts_coalesce_without_reordering() {
        let now = Instant::now();
        let mut m = Machine::new("/r".into(), true, false);
        m.push(raw(RawKind::Created, "/r/a", Some(false)), now);
        for _ in 0..100 {
            m.push(raw(RawKind::Modified, "/r/a", Some(false)), now);
            m.push(raw(RawKind::Modified, "/r/b", Some(false)), now);
        }
        m.push(raw(RawKind::Removed, "/r/c", Some(false)), now);
        m.push(raw(RawKind::Modified, "/r/c", Some(false)), now);
        m.push(raw(RawKind::Modified, "/r/c", Some(false)), now);
        assert_eq!(m.pop_due(now + WINDOW / 2), None, "held for the window");
        assert_eq!(
            drain(&mut m, now + WINDOW),
            vec![
                ev(EventType::Created, "/r/a"),
                ev(EventType::Modified, "/r/b"),
                ev(EventType::Deleted, "/r/c"),
                ev(EventType::Modified, "/r/c"),
            ]
        );
        // Once sent, a new burst starts a new event.
        m.push(raw(RawKind::Modified, "/r/a", Some(false)), now + WINDOW);
        assert_eq!(drain(&mut m, now + WINDOW * 2), vec![ev(EventType::Modified, "/r/a")]);
    }

    #[test]
    fn modified_then_deleted_is_just_deleted() {
        let now = Instant::now();
        let mut m = Machine::new("/r".into(), true, false);
        m.push(raw(RawKind::Modified, "/r/a", Some(false)), now);
        m.push(raw(RawKind::Modified, "/r/b", Some(false)), now);
        m.push(raw(RawKind::Removed, "/r/a", Some(false)), now);
        // A new modified after the deletion is a new event (a re-created file).
        m.push(raw(RawKind::Created, "/r/a", Some(false)), now);
        assert_eq!(
            drain(&mut m, now + WINDOW),
            vec![
                ev(EventType::Modified, "/r/b"),
                ev(EventType::Deleted, "/r/a"),
                ev(EventType::Created, "/r/a")
            ]
        );
    }

    #[test]
    fn a_renamed_entry_is_not_merged_with_later_changes() {
        let now = Instant::now();
        let mut m = Machine::new("/r".into(), true, false);
        m.push(raw(RawKind::MovedFrom(2), "/r/a", None), now);
        m.push(raw(RawKind::MovedTo(2), "/r/b", Some(false)), now);
        m.push(raw(RawKind::Modified, "/r/b", Some(false)), now);
        m.push(raw(RawKind::Modified, "/r/b", Some(false)), now);
        let kinds: Vec<_> = drain(&mut m, now + WINDOW).into_iter().map(|e| e.0).collect();
        assert_eq!(kinds, vec![EventType::Renamed, EventType::Modified]);
    }

    #[test]
    fn root_deletion_flushes_and_finishes() {
        let now = Instant::now();
        let mut m = Machine::new("/r".into(), true, true);
        m.push(raw(RawKind::Removed, "/r/f", Some(false)), now);
        m.push(raw(RawKind::Removed, "/r", None), now);
        m.push(raw(RawKind::Created, "/r/late", Some(false)), now);
        assert!(m.finished());
        let out: Vec<_> = std::iter::from_fn(|| m.pop_due(now)).collect();
        assert_eq!(out.len(), 2, "sent at once, nothing after the root");
        assert_eq!(
            (out[1].kind, out[1].path.as_path(), out[1].is_dir),
            (EventType::Deleted, Path::new("/r"), true)
        );
        assert!(m.is_idle());

        let mut m = Machine::new("/r/file".into(), false, false);
        m.push(raw(RawKind::SelfMoved, "/r/file", None), now);
        assert!(m.finished());
        assert_eq!(drain(&mut m, now), vec![ev(EventType::Deleted, "/r/file")]);
    }

    #[test]
    fn overflow_and_errors_keep_their_place() {
        let now = Instant::now();
        let mut m = Machine::new("/r".into(), true, false);
        m.push(raw(RawKind::Modified, "/r/a", Some(false)), now);
        m.push(raw(RawKind::Overflow(Some(12)), "", None), now);
        m.push(raw(RawKind::Modified, "/r/a", Some(false)), now);
        m.push(raw(RawKind::Overflow(Some(3)), "", None), now);
        m.push(raw(RawKind::Error("limit".into()), "", None), now);
        let out: Vec<_> = std::iter::from_fn(|| m.pop_due(now + WINDOW)).collect();
        assert_eq!(
            out.iter().map(|o| o.kind).collect::<Vec<_>>(),
            vec![EventType::Modified, EventType::Overflow, EventType::Error]
        );
        assert_eq!(out[1].dropped, Some(15), "adjacent losses are one overflow");
        let wire = to_wire(&out[1], b"/r", Path::new("/r"), &TimeZone::UTC);
        assert_eq!(
            serde_json::to_string(&wire).unwrap(),
            r#"{"type":"overflow","dropped":15,"timestamp":"2025-01-15T10:30:45Z"}"#
        );
        // A kernel overflow (count unknown) makes the merged count unknown.
        m.push(raw(RawKind::Overflow(Some(3)), "", None), now);
        m.push(raw(RawKind::Overflow(None), "", None), now);
        assert_eq!(drain(&mut m, now + WINDOW).len(), 1);
    }

    #[test]
    fn pending_is_bounded() {
        let now = Instant::now();
        let mut m = Machine::new("/r".into(), true, false);
        for i in 0..MAX_PENDING + 10 {
            m.push(raw(RawKind::Created, &format!("/r/{i}"), Some(false)), now);
        }
        let early: Vec<_> = std::iter::from_fn(|| m.pop_due(now)).collect();
        assert_eq!(early.len(), 10);
        assert_eq!(early[0].path, Path::new("/r/0"));
    }

    #[test]
    fn scanned_entries_suppress_their_late_inotify_duplicates() {
        let now = Instant::now();
        let mut m = Machine::new("/r".into(), true, true);
        m.push(raw(RawKind::Created, "/r/new", Some(true)), now);
        m.push(raw(RawKind::Created, "/r/new/seen", Some(false)), now);
        let dir = m.pop_due(now + WINDOW).unwrap();
        assert!(dir.scan);
        // The scan finds both; the one already pending leaves the queue in scan order and is
        // not reported twice.
        let seen = m.synthesize("/r/new/seen".into(), false, now).unwrap();
        assert_eq!((seen.kind, seen.path.as_path()), (EventType::Created, Path::new("/r/new/seen")));
        let out = m.synthesize("/r/new/early".into(), false, now).unwrap();
        assert_eq!((out.kind, out.path.as_path()), (EventType::Created, Path::new("/r/new/early")));
        m.push(raw(RawKind::Created, "/r/new/early", Some(false)), now);
        m.push(raw(RawKind::Modified, "/r/new/early", Some(false)), now);
        assert_eq!(drain(&mut m, now + WINDOW * 2), vec![ev(EventType::Modified, "/r/new/early")]);
        // Created before its directory's watch, written after: only the write was seen, and the
        // scan turns that pending `modified` into the `created`.
        let mut m = Machine::new("/r".into(), true, true);
        m.push(raw(RawKind::Created, "/r/d", Some(true)), now);
        m.push(raw(RawKind::Modified, "/r/d/f", Some(false)), now);
        assert!(m.pop_due(now + WINDOW).unwrap().scan);
        let f = m.synthesize("/r/d/f".into(), false, now).unwrap();
        assert_eq!((f.kind, f.path.as_path(), f.scan), (EventType::Created, Path::new("/r/d/f"), false));
        assert_eq!(drain(&mut m, now + WINDOW * 2), vec![]);
        // A subdirectory whose own `created` is queued comes out before what the scan finds in
        // it: a parent is never reported after its children.
        let mut m = Machine::new("/r".into(), true, true);
        m.push(raw(RawKind::Created, "/r/a", Some(true)), now);
        m.push(raw(RawKind::Created, "/r/a/b", Some(true)), now);
        assert!(m.pop_due(now + WINDOW).unwrap().scan);
        let b = m.synthesize("/r/a/b".into(), true, now).unwrap();
        let f = m.synthesize("/r/a/b/f".into(), false, now).unwrap();
        assert_eq!(
            (b.path.as_path(), b.is_dir, f.path.as_path()),
            (Path::new("/r/a/b"), true, Path::new("/r/a/b/f"))
        );
        assert_eq!(drain(&mut m, now + WINDOW * 2), vec![]);
        // Non-recursive watches do not scan.
        let mut m = Machine::new("/r".into(), true, false);
        m.push(raw(RawKind::Created, "/r/new", Some(true)), now);
        assert!(!m.pop_due(now + WINDOW).unwrap().scan);
    }

    #[test]
    fn wire_shape_and_paths_as_requested() {
        let root = Path::new("/work/proj");
        assert_eq!(report_path(b"proj", root, Path::new("/work/proj/a/b")), "proj/a/b");
        assert_eq!(report_path(b"proj/", root, Path::new("/work/proj")), "proj/");
        assert_eq!(report_path(b"/work/proj", root, Path::new("/work/proj/x")), "/work/proj/x");
        let mut out = Out::simple(EventType::Renamed, "/work/proj/b".into(), true, ts());
        out.old_path = Some("/work/proj/a".into());
        let wire = to_wire(&out, b"./proj", root, &TimeZone::UTC);
        assert_eq!(
            serde_json::to_value(&wire).unwrap(),
            serde_json::json!({"type": "renamed", "path": "./proj/b", "oldPath": "./proj/a",
                "isDir": true, "timestamp": "2025-01-15T10:30:45Z"})
        );
        let bad = Path::new(std::ffi::OsStr::from_bytes(b"/work/proj/\xff"));
        assert_eq!(report_path(b"p", root, bad), "p/\u{FFFD}");
    }

    /// The real thing: inotify, a new nested directory in a recursive watch, rename pairing.
    #[tokio::test]
    async fn real_filesystem_feed() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let mut s = {
            let root = root.clone();
            tokio::task::spawn_blocking(move || Session::start(b"w", root, true, true))
                .await
                .unwrap()
                .unwrap()
        };
        let collect = |s: &mut Session, want: usize, wait: Duration| {
            let mut got = Vec::new();
            let deadline = Instant::now() + wait;
            while got.len() < want && Instant::now() < deadline {
                while let Ok(raw) = s.rx.try_recv() {
                    s.machine.push(raw, Instant::now());
                }
                while let Some(out) = s.machine.pop_due(Instant::now()) {
                    got.push(to_wire(&out, b"w", &root, &TimeZone::UTC));
                    if out.scan {
                        for (p, d) in scan_new_dir(&out.path, SCAN_LIMIT) {
                            if let Some(o) = s.machine.synthesize(p, d, Instant::now()) {
                                got.push(to_wire(&o, b"w", &root, &TimeZone::UTC));
                            }
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            got.into_iter().map(|e| (e.kind, e.path.unwrap_or_default(), e.old_path)).collect::<Vec<_>>()
        };
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/b/f"), "x").unwrap();
        let got = collect(&mut s, 3, Duration::from_secs(5));
        let paths: Vec<&str> = got.iter().map(|e| e.1.as_str()).collect();
        assert!(paths.contains(&"w/a/b/f"), "{got:?}");
        assert_eq!(got[0], (EventType::Created, "w/a".into(), None));
        let _ = collect(&mut s, usize::MAX, Duration::from_millis(200)); // the write's modified
        std::fs::rename(root.join("a/b/f"), root.join("g")).unwrap();
        let got = collect(&mut s, 1, Duration::from_secs(5));
        assert_eq!(got, vec![(EventType::Renamed, "w/g".into(), Some("w/a/b/f".into()))]);
        drop(s);
    }
}
