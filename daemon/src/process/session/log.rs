//! The session output log: a byte stream of records, each a 3-byte marker (stdout `01 01 01`,
//! stderr `02 02 02`) followed by payload up to the next marker (process.md §4.3).
//!
//! [`Recorder`] turns raw stream output into records (one per line), [`Demux`] splits a log
//! back into stdout and stderr, [`Stripper`] removes the markers for combined output. The last
//! two work on arbitrary chunks, so logs are processed as they stream, never whole in memory.
//! [`Tail`] keeps the newest records of a running command in memory for its followers.

use std::collections::VecDeque;

use bytes::Bytes;

pub const STDOUT_MARKER: [u8; 3] = [1, 1, 1];
pub const STDERR_MARKER: [u8; 3] = [2, 2, 2];

/// A line longer than this is written out in pieces (each its own record, so the demuxed text is
/// unchanged) instead of growing the buffer without limit.
pub const MAX_PARTIAL_LINE: usize = 64 * 1024;

pub const STDOUT: usize = 0;
pub const STDERR: usize = 1;

fn marker(stream: usize) -> &'static [u8; 3] {
    if stream == STDOUT { &STDOUT_MARKER } else { &STDERR_MARKER }
}

/// Frames output into records: `marker + line + "\n"` for every complete line; an unfinished
/// line waits for its end (or [`Recorder::finish`]).
#[derive(Default)]
pub struct Recorder {
    partial: [Vec<u8>; 2],
}

impl Recorder {
    /// Appends the records for `data` of `stream` to `out`.
    pub fn push(&mut self, stream: usize, mut data: &[u8], out: &mut Vec<u8>) {
        // Every output byte passes here: the newline search is the C library's vectorised one.
        while let Some(nl) = find_newline(data) {
            out.extend_from_slice(marker(stream));
            out.append(&mut self.partial[stream]);
            out.extend_from_slice(&data[..=nl]);
            data = &data[nl + 1..];
        }
        self.partial[stream].extend_from_slice(data);
        if self.partial[stream].len() >= MAX_PARTIAL_LINE {
            out.extend_from_slice(marker(stream));
            out.append(&mut self.partial[stream]);
        }
    }

    /// Ends unfinished lines, which get a newline as the reference's labelers give them.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        for stream in [STDOUT, STDERR] {
            if !self.partial[stream].is_empty() {
                out.extend_from_slice(marker(stream));
                out.append(&mut self.partial[stream]);
                out.push(b'\n');
            }
        }
    }
}

/// The index of the first `\n` in `data`.
fn find_newline(data: &[u8]) -> Option<usize> {
    // SAFETY: memchr reads at most `data.len()` bytes from a valid slice; a non-null result
    // points into it.
    let p = unsafe { libc::memchr(data.as_ptr().cast(), b'\n' as libc::c_int, data.len()) };
    (!p.is_null()).then(|| p as usize - data.as_ptr() as usize)
}

/// The newest bytes of a running command's log, as the pump appended them. A follower that keeps
/// up takes its bytes from here (shared, not copied) instead of reading back from the file what
/// the pump has just written; one that falls behind the kept window reads the file as before.
/// Only commands with a follower keep anything.
#[derive(Default)]
pub struct Tail {
    /// The log offset of the first byte of `chunks[0]`.
    start: u64,
    chunks: VecDeque<Bytes>,
    held: usize,
    /// Followers streaming the log now.
    followers: usize,
}

impl Tail {
    /// The most bytes kept per command beyond its newest append: a follower a little behind
    /// still finds its bytes, while many followed commands hold little.
    pub const CAP: usize = 512 << 10;

    /// Records the next append of the log (every append, in order, so offsets stay exact).
    pub fn push(&mut self, chunk: Bytes) {
        if self.followers == 0 {
            self.skip(chunk.len());
            return;
        }
        self.held += chunk.len();
        self.chunks.push_back(chunk);
        while self.held > Self::CAP && self.chunks.len() > 1 {
            self.drop_front();
        }
    }

    /// The kept bytes from log offset `pos` to the end of the append that holds it.
    pub fn at(&self, pos: u64) -> Option<Bytes> {
        let mut off = self.start;
        if pos < off {
            return None;
        }
        for c in &self.chunks {
            let end = off + c.len() as u64;
            if pos < end {
                return Some(c.slice((pos - off) as usize..));
            }
            off = end;
        }
        None
    }

    /// Counts an append of `n` bytes that nobody follows: offsets advance, nothing is kept.
    pub fn skip(&mut self, n: usize) {
        self.clear();
        self.start += n as u64;
    }

    /// Whether a follower streams the log now (else appends need not be kept).
    pub fn followed(&self) -> bool {
        self.followers > 0
    }

    /// A follower starts (`true`) or stops streaming.
    pub fn follow(&mut self, starts: bool) {
        if starts {
            self.followers += 1;
        } else {
            self.followers = self.followers.saturating_sub(1);
        }
    }

    /// Lets go of everything kept (the command has ended; followers read the file).
    pub fn clear(&mut self) {
        while !self.chunks.is_empty() {
            self.drop_front();
        }
    }

    fn drop_front(&mut self) {
        if let Some(c) = self.chunks.pop_front() {
            self.start += c.len() as u64;
            self.held -= c.len();
        }
    }
}

/// Splits a log into stdout and stderr. Bytes before the first marker are dropped; a marker
/// split across chunks is recognised.
#[derive(Default)]
pub struct Demux {
    current: Option<u8>,
    pending: Vec<u8>,
}

impl Demux {
    /// Feeds a chunk; calls `emit(stream, bytes)` with stream [`STDOUT`] or [`STDERR`].
    pub fn feed(&mut self, chunk: &[u8], mut emit: impl FnMut(usize, &[u8])) {
        let joined;
        let data: &[u8] = if self.pending.is_empty() {
            chunk
        } else {
            let mut d = std::mem::take(&mut self.pending);
            d.extend_from_slice(chunk);
            joined = d;
            &joined
        };
        let mut start = 0;
        let mut i = 0;
        while i < data.len() {
            let b = data[i];
            if b == 1 || b == 2 {
                let end = (i + 3).min(data.len());
                if data[i..end].iter().all(|&x| x == b) {
                    self.flush(&data[start..i], &mut emit);
                    if end - i < 3 {
                        // A marker may continue in the next chunk.
                        self.pending = data[i..].to_vec();
                        return;
                    }
                    self.current = Some(b);
                    i += 3;
                    start = i;
                    continue;
                }
            }
            i += 1;
        }
        self.flush(&data[start..], &mut emit);
    }

    /// Emits a held-back partial marker as payload: the log ended inside it.
    pub fn finish(&mut self, mut emit: impl FnMut(usize, &[u8])) {
        let rest = std::mem::take(&mut self.pending);
        self.flush(&rest, &mut emit);
    }

    fn flush(&self, bytes: &[u8], emit: &mut impl FnMut(usize, &[u8])) {
        if let (Some(stream), false) = (self.current, bytes.is_empty()) {
            emit(if stream == 1 { STDOUT } else { STDERR }, bytes);
        }
    }
}

/// Removes markers from a stream of chunks, holding back at most 2 trailing bytes that could
/// start a marker (the reference re-sent text here; pitfalls 19).
#[derive(Default)]
pub struct Stripper {
    held: Vec<u8>,
}

impl Stripper {
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        let joined;
        let data: &[u8] = if self.held.is_empty() {
            chunk
        } else {
            let mut d = std::mem::take(&mut self.held);
            d.extend_from_slice(chunk);
            joined = d;
            &joined
        };
        let mut i = 0;
        while i < data.len() {
            let b = data[i];
            if b == 1 || b == 2 {
                let end = (i + 3).min(data.len());
                if data[i..end].iter().all(|&x| x == b) {
                    if end - i < 3 {
                        self.held = data[i..].to_vec();
                        return;
                    }
                    i += 3;
                    continue;
                }
            }
            out.push(b);
            i += 1;
        }
    }

    pub fn finish(&mut self, out: &mut Vec<u8>) {
        out.append(&mut self.held);
    }
}

/// The whole log stripped of markers.
pub fn strip_all(log: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(log.len());
    let mut s = Stripper::default();
    s.feed(log, &mut out);
    s.finish(&mut out);
    out
}

/// The whole log split into (stdout, stderr).
pub fn demux_all(log: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let (mut o, mut e) = (Vec::new(), Vec::new());
    let mut d = Demux::default();
    let mut sink =
        |s: usize, b: &[u8]| if s == STDOUT { o.extend_from_slice(b) } else { e.extend_from_slice(b) };
    d.feed(log, &mut sink);
    d.finish(&mut sink);
    (o, e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demux_chunks(chunks: &[&[u8]]) -> (Vec<u8>, Vec<u8>) {
        let mut d = Demux::default();
        let (mut o, mut e) = (Vec::new(), Vec::new());
        for c in chunks {
            d.feed(c, |s, b| if s == STDOUT { o.extend_from_slice(b) } else { e.extend_from_slice(b) });
        }
        (o, e)
    }

    #[test]
    fn tail_serves_kept_offsets_and_forgets_beyond_its_cap() {
        let mut t = Tail::default();
        // Without a follower nothing is kept, but offsets still count.
        t.push(Bytes::from_static(b"unseen"));
        assert!(t.at(0).is_none());
        t.follow(true);
        t.push(Bytes::from_static(b"abc"));
        t.push(Bytes::from_static(b"defg"));
        assert!(t.at(5).is_none());
        assert_eq!(&t.at(6).unwrap()[..], b"abc");
        assert_eq!(&t.at(8).unwrap()[..], b"c");
        assert_eq!(&t.at(9).unwrap()[..], b"defg");
        assert_eq!(&t.at(12).unwrap()[..], b"g");
        assert!(t.at(13).is_none());
        // Past the cap the oldest appends go; offsets stay those of the log.
        let big = Bytes::from(vec![b'x'; Tail::CAP]);
        t.push(big);
        assert!(t.at(6).is_none() && t.at(12).is_none());
        assert_eq!(t.at(13).unwrap().len(), Tail::CAP);
        t.push(Bytes::from_static(b"hi"));
        assert!(t.at(13).is_none());
        let end = 13 + Tail::CAP as u64;
        assert_eq!(&t.at(end).unwrap()[..], b"hi");
        t.clear();
        assert!(t.at(end).is_none());
        t.push(Bytes::from_static(b"z"));
        assert_eq!(&t.at(end + 2).unwrap()[..], b"z");
        // The last follower gone, appends are counted and not kept.
        t.follow(false);
        t.push(Bytes::from_static(b"gone"));
        assert!(t.at(end + 2).is_none() && t.at(end + 3).is_none());
        t.follow(true);
        t.push(Bytes::from_static(b"back"));
        assert_eq!(&t.at(end + 7).unwrap()[..], b"back");
    }

    #[test]
    fn recorder_frames_lines() {
        let mut r = Recorder::default();
        let mut out = Vec::new();
        r.push(STDOUT, b"one\ntw", &mut out);
        r.push(STDERR, b"err\n", &mut out);
        r.push(STDOUT, b"o\nthree", &mut out);
        r.finish(&mut out);
        assert_eq!(out, b"\x01\x01\x01one\n\x02\x02\x02err\n\x01\x01\x01two\n\x01\x01\x01three\n");
    }

    #[test]
    fn recorder_bounds_long_lines_without_changing_the_text() {
        let mut r = Recorder::default();
        let mut out = Vec::new();
        let long = vec![b'x'; MAX_PARTIAL_LINE * 2 + 10];
        for piece in long.chunks(1000) {
            r.push(STDOUT, piece, &mut out);
            assert!(r.partial[STDOUT].len() < MAX_PARTIAL_LINE);
        }
        r.finish(&mut out);
        let (o, e) = demux_all(&out);
        assert_eq!(o.len(), long.len() + 1);
        assert!(e.is_empty());
    }

    #[test]
    fn demux_splits_streams_and_drops_the_prefix() {
        let (o, e) = demux_chunks(&[b"junk\x01\x01\x01out1\n\x02\x02\x02err\n\x01\x01\x01out2\n"]);
        assert_eq!(o, b"out1\nout2\n");
        assert_eq!(e, b"err\n");
    }

    #[test]
    fn demux_handles_markers_split_across_chunks() {
        let (o, e) = demux_chunks(&[b"\x01\x01\x01a\x02", b"\x02", b"\x02b\n\x01", b"\x01\x01c"]);
        assert_eq!(o, b"ac");
        assert_eq!(e, b"b\n");
        // Every split point of a log gives the same result as the whole log.
        let log = b"\x01\x01\x01ab\x01\n\x02\x02\x02c\x02\x02d\n\x01\x01\x01\x01e";
        let whole = demux_all(log);
        for i in 0..log.len() {
            assert_eq!(demux_chunks(&[&log[..i], &log[i..]]), whole, "split at {i}");
        }
    }

    #[test]
    fn stripper_matches_whole_log_stripping_at_every_split() {
        let log = b"\x01\x01\x01ab\n\x02\x02\x02cd\n\x01\x01x\x01\x01\x01\x01\x02\x02";
        let whole = strip_all(log);
        assert_eq!(whole, b"ab\ncd\n\x01\x01x\x01\x02\x02");
        for i in 0..=log.len() {
            for j in i..=log.len() {
                let mut s = Stripper::default();
                let mut out = Vec::new();
                for c in [&log[..i], &log[i..j], &log[j..]] {
                    s.feed(c, &mut out);
                }
                s.finish(&mut out);
                assert_eq!(out, whole, "split at {i},{j}");
            }
        }
    }
}
