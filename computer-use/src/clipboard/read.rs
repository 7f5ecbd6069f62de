//! Reading the CLIPBOARD from another client: `ConvertSelection` to a window of a connection made
//! for this one read, the owner's `SelectionNotify` awaited with a deadline, the property read
//! whole or piece by piece (INCR), never more than the size limit.

use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

use x11rb::connection::Connection;
use x11rb::protocol::Event;
use x11rb::protocol::xproto::{self, AtomEnum, ConnectionExt as _, CreateWindowAux, EventMask, Property};
use x11rb::rust_connection::RustConnection;

use super::owner::Atoms;
use super::text;
use crate::x11::error::XError;

/// How long an owner gets to answer a conversion, and each INCR piece to come.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a whole read may take, whatever the pace of the pieces: the per-piece deadline
/// alone restarts with every piece, so an owner trickling a byte just under it would hold the
/// request (and its blocking thread) for ever.
pub const TOTAL_TIMEOUT: Duration = Duration::from_secs(30);

/// Which deadline a slow owner missed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Late {
    /// No answer to the conversion within [`ANSWER_TIMEOUT`].
    Answer,
    /// No next INCR piece within [`ANSWER_TIMEOUT`] of the previous one.
    Piece,
    /// The read as a whole did not end within [`TOTAL_TIMEOUT`].
    Total,
}

/// The two deadlines a read runs under: one for the step awaited now (the answer, then each
/// piece), restarted as the owner progresses, and the read's total, never restarted.
#[derive(Debug, Clone, Copy)]
struct Deadlines {
    step: Instant,
    step_kind: Late,
    total: Instant,
}

impl Deadlines {
    fn new(now: Instant, total: Instant) -> Deadlines {
        Deadlines { step: now + ANSWER_TIMEOUT, step_kind: Late::Answer, total }
    }

    /// A piece came: the next one gets a fresh step deadline, the total stays.
    fn piece_arrived(&mut self, now: Instant) {
        self.step = now + ANSWER_TIMEOUT;
        self.step_kind = Late::Piece;
    }

    /// The earlier of the two: when waiting must stop.
    fn until(&self) -> Instant {
        self.step.min(self.total)
    }

    /// Which deadline `until` was.
    fn missed(&self) -> Late {
        if self.total <= self.step { Late::Total } else { self.step_kind }
    }
}

/// How a read failed, beside the X connection itself.
#[derive(Debug)]
pub enum ReadError {
    X(XError),
    /// The owner did not answer (or finish) in time; which deadline it missed.
    NoAnswer(Late),
    /// The owner refused both `UTF8_STRING` and `STRING`: what it holds is not text.
    NotText,
    /// The text is over the limit.
    TooLarge,
}

impl From<XError> for ReadError {
    fn from(e: XError) -> ReadError {
        ReadError::X(e)
    }
}

struct Reader {
    conn: RustConnection,
    window: xproto::Window,
    atoms: Atoms,
}

/// The clipboard's text as another client holds it; empty when nobody owns the selection.
pub fn read(display: &str) -> Result<String, ReadError> {
    // One total for the whole read, both targets included.
    let total = Instant::now() + TOTAL_TIMEOUT;
    let r = Reader::open(display)?;
    let owner = r
        .conn
        .get_selection_owner(r.atoms.CLIPBOARD)
        .map_err(XError::from)?
        .reply()
        .map_err(XError::from)?
        .owner;
    if owner == x11rb::NONE {
        return Ok(String::new());
    }
    for target in [r.atoms.UTF8_STRING, AtomEnum::STRING.into()] {
        // Decoded by the type the owner gave, not the one we asked for: some owners answer
        // every target with whatever they hold (xclip with `-t image/png` does).
        match r.convert(target, total)? {
            Some((ty, bytes)) if ty == r.atoms.UTF8_STRING => {
                return Ok(String::from_utf8_lossy(&bytes).into_owned());
            }
            Some((ty, bytes)) if ty == u32::from(AtomEnum::STRING) => return Ok(text::from_latin1(&bytes)),
            _ => {}
        }
    }
    Err(ReadError::NotText)
}

impl Reader {
    fn open(display: &str) -> Result<Reader, XError> {
        // INCR pieces are announced by PropertyNotify on our window.
        let aux = CreateWindowAux::new().event_mask(EventMask::PROPERTY_CHANGE);
        let (conn, window, atoms) = super::owner::private_window(display, &aux)?;
        conn.flush()?;
        Ok(Reader { conn, window, atoms })
    }

    /// The next event, or None once `deadline` passed.
    fn next_event(&self, deadline: Instant) -> Result<Option<Event>, XError> {
        loop {
            if let Some(ev) = self.conn.poll_for_event()? {
                return Ok(Some(ev));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            let mut pfd =
                libc::pollfd { fd: self.conn.stream().as_fd().as_raw_fd(), events: libc::POLLIN, revents: 0 };
            let ms = i32::try_from(left.as_millis()).unwrap_or(i32::MAX).max(1);
            // SAFETY: one valid pollfd for the duration of the call.
            if unsafe { libc::poll(&mut pfd, 1, ms) } < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(XError::lost(format!("waiting for the X server: {e}")));
                }
            }
        }
    }

    /// Asks the owner for `target`; the type it answered with and the bytes, or None when it
    /// refused that target.
    fn convert(
        &self,
        target: xproto::Atom,
        total: Instant,
    ) -> Result<Option<(xproto::Atom, Vec<u8>)>, ReadError> {
        let prop = self.atoms.DAYTONA_CLIPBOARD;
        let c = &self.conn;
        c.convert_selection(self.window, self.atoms.CLIPBOARD, target, prop, x11rb::CURRENT_TIME)
            .map_err(XError::from)?;
        c.flush().map_err(XError::from)?;
        let mut deadlines = Deadlines::new(Instant::now(), total);
        let notify = loop {
            match self.next_event(deadlines.until())? {
                None => return Err(ReadError::NoAnswer(deadlines.missed())),
                Some(Event::SelectionNotify(n)) if n.requestor == self.window => break n,
                Some(_) => {}
            }
        };
        if notify.property == x11rb::NONE {
            return Ok(None);
        }
        // Deleting the property as we read it is what tells an INCR owner to send the next piece.
        let first = self.take(prop)?;
        if first.type_ != self.atoms.INCR {
            return Ok(Some((first.type_, first.value)));
        }
        let mut out = Vec::new();
        // The pieces carry the data's type; an empty transfer keeps the one asked for.
        let mut ty = target;
        deadlines.piece_arrived(Instant::now());
        loop {
            match self.next_event(deadlines.until())? {
                None => return Err(ReadError::NoAnswer(deadlines.missed())),
                Some(Event::PropertyNotify(e))
                    if e.window == self.window && e.atom == prop && e.state == Property::NEW_VALUE =>
                {
                    let piece = self.take(prop)?;
                    if piece.value.is_empty() {
                        return Ok(Some((ty, out)));
                    }
                    ty = piece.type_;
                    if out.len() + piece.value.len() > text::MAX_TEXT_BYTES {
                        return Err(ReadError::TooLarge);
                    }
                    out.extend_from_slice(&piece.value);
                    deadlines.piece_arrived(Instant::now());
                }
                Some(_) => {}
            }
        }
    }

    /// Reads and deletes the property, refusing more than the size limit.
    fn take(&self, prop: xproto::Atom) -> Result<xproto::GetPropertyReply, ReadError> {
        // In four-byte units: one more than the limit, so an oversized value shows as bytes_after.
        let units = (text::MAX_TEXT_BYTES / 4 + 1) as u32;
        let r = self
            .conn
            .get_property(true, self.window, prop, AtomEnum::ANY, 0, units)
            .map_err(XError::from)?
            .reply()
            .map_err(XError::from)?;
        if r.bytes_after > 0 || r.value.len() > text::MAX_TEXT_BYTES {
            let _ = self.conn.delete_property(self.window, prop);
            return Err(ReadError::TooLarge);
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_silent_owner_misses_the_answer_deadline() {
        let t0 = Instant::now();
        let d = Deadlines::new(t0, t0 + TOTAL_TIMEOUT);
        assert_eq!(d.until(), t0 + ANSWER_TIMEOUT);
        assert_eq!(d.missed(), Late::Answer);
    }

    #[test]
    fn a_stalled_transfer_misses_the_piece_deadline() {
        let t0 = Instant::now();
        let mut d = Deadlines::new(t0, t0 + TOTAL_TIMEOUT);
        d.piece_arrived(t0 + Duration::from_secs(1));
        assert_eq!(d.until(), t0 + Duration::from_secs(1) + ANSWER_TIMEOUT);
        assert_eq!(d.missed(), Late::Piece);
    }

    #[test]
    fn a_trickling_owner_cannot_hold_the_read_past_the_total() {
        // A piece just before each per-piece deadline: the step deadline keeps moving, the
        // total does not, and it is the one that ends the wait.
        let t0 = Instant::now();
        let total = t0 + TOTAL_TIMEOUT;
        let mut d = Deadlines::new(t0, total);
        let mut now = t0;
        let mut pieces = 0;
        while d.until() < total {
            now = d.until() - Duration::from_millis(100);
            d.piece_arrived(now);
            pieces += 1;
            assert!(pieces < 100, "the deadline never reached the total");
        }
        assert_eq!(d.until(), total, "never later than the total");
        assert_eq!(d.missed(), Late::Total);
        assert!(now < total);
    }
}
