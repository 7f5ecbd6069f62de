//! Whether the screen changed since a frame was taken, for the screenshot routes' `ETag`s.
//!
//! An XDamage object on the root window (which covers every window drawn on it) at report level
//! `NonEmpty`: the server sends one `DamageNotify` when the damaged region goes from empty to
//! non-empty, and no more until we subtract the region. Each time we see that event we bump a
//! generation counter and subtract, which re-arms the report.
//!
//! The damage object lives on the shared connection, and the events are drained by the request
//! that asks, right after a round trip: the server sends every event that precedes a reply
//! before that reply, so once the reply is in, every change made before the question was asked
//! is in our queue. No listener thread can lag behind, and since the subtract and the capture
//! that follows go over the same connection, the server handles them in that order: a change
//! after the subtract bumps the next generation, a change before it is in the captured frame.
//! At most one event waits in the queue between two questions (report level `NonEmpty`).

use x11rb::connection::{Connection, RequestConnection};
use x11rb::errors::ReplyError;
use x11rb::protocol::Event;
use x11rb::protocol::damage::{self, ConnectionExt as _, ReportLevel};

use super::conn::{Conn, Watch};
use super::error::XError;

/// What the screen looks like "now", in terms a frame's tag can be built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScreenState {
    /// The damage generation, or None when the server has no XDamage.
    pub generation: Option<u64>,
    /// The pointer (root coordinates), when asked for.
    pub pointer: Option<(i32, i32)>,
}

/// The watch a `DamageCreate`'s outcome leaves: watching when it worked; frame comparison when
/// the server refused it (XDamage is there but unusable for us), which is slower but right;
/// a lost connection stays an error (the next question reconnects and tries again).
fn watch_after_create(id: damage::Damage, created: Result<(), ReplyError>) -> Result<Watch, XError> {
    match created {
        // Generation 1: the first frame taken after this point.
        Ok(()) => Ok(Watch::Watching { id, generation: 1 }),
        Err(ReplyError::X11Error(e)) => {
            tracing::warn!(
                error = ?e.error_kind,
                "the X server refused a damage watch; unchanged screens are found by comparing frames"
            );
            Ok(Watch::Missing)
        }
        Err(ReplyError::ConnectionError(e)) => Err(e.into()),
    }
}

impl Conn {
    fn start_watch(&mut self) -> Result<Watch, XError> {
        if self.c.extension_information(damage::X11_EXTENSION_NAME)?.is_none() {
            tracing::info!("the X server has no XDamage; unchanged screens are found by comparing frames");
            return Ok(Watch::Missing);
        }
        // The extension must be told which version we speak before any other request.
        if self.c.damage_query_version(1, 1)?.reply().is_err() {
            return Ok(Watch::Missing);
        }
        let id = self.c.generate_id()?;
        // Checked (one round trip, once per connection): an unchecked create that failed would
        // leave a watch that never reports, its generation stuck, so every later request with
        // the current tag would be answered 304 however much the screen changed.
        let created = self.c.damage_create(id, self.root, ReportLevel::NON_EMPTY)?.check();
        watch_after_create(id, created)
    }

    /// The screen's current damage generation (brought up to date with one round trip) and,
    /// when `pointer`, the pointer position (whose query is that round trip).
    pub fn screen_state(&mut self, pointer: bool) -> Result<ScreenState, XError> {
        if self.watch == Watch::Unknown {
            self.watch = self.start_watch()?;
        }
        // The round trip that puts every earlier event in our queue.
        let pointer = if pointer { Some(self.pointer()?) } else { None };
        let Watch::Watching { id, generation } = self.watch else {
            return Ok(ScreenState { generation: None, pointer });
        };
        if pointer.is_none() {
            self.sync()?;
        }
        let mut damaged = false;
        // Other events here are errors of earlier unchecked requests, which nobody waits for.
        while let Some(ev) = self.c.poll_for_event()? {
            if let Event::DamageNotify(e) = ev
                && e.damage == id
            {
                damaged = true;
            }
        }
        let generation = if damaged {
            // Empty the region so the next change is reported again (see the module comment).
            self.c.damage_subtract(id, x11rb::NONE, x11rb::NONE)?;
            self.c.flush()?;
            generation + 1
        } else {
            generation
        };
        self.watch = Watch::Watching { id, generation };
        Ok(ScreenState { generation: Some(generation), pointer })
    }
}

#[cfg(test)]
mod tests {
    use x11rb::errors::ConnectionError;
    use x11rb::x11_utils::X11Error;

    use super::*;

    fn refusal() -> ReplyError {
        ReplyError::X11Error(X11Error {
            error_kind: x11rb::protocol::ErrorKind::Match,
            error_code: 8,
            sequence: 7,
            bad_value: 0,
            minor_opcode: 1,
            major_opcode: 143,
            extension_name: Some("DAMAGE".into()),
            request_name: Some("Create"),
        })
    }

    #[test]
    fn a_created_watch_starts_at_generation_one() {
        assert_eq!(watch_after_create(5, Ok(())).unwrap(), Watch::Watching { id: 5, generation: 1 });
    }

    #[test]
    fn a_refused_create_falls_back_to_comparing_frames() {
        // Not a watch whose generation never moves (which would make every tag look current).
        assert_eq!(watch_after_create(5, Err(refusal())).unwrap(), Watch::Missing);
    }

    #[test]
    fn a_lost_connection_stays_an_error() {
        let e = watch_after_create(5, Err(ReplyError::ConnectionError(ConnectionError::UnknownError)))
            .unwrap_err();
        assert!(e.is_lost(), "{e:?}");
    }
}
