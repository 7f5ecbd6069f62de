//! Talking to ffmpeg: what the installed one can do, the command line of a recording, and
//! reading what it reports while it runs (progress on stdout, diagnostics on stderr).

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Frames per second captured.
pub const FRAMERATE: u32 = 30;
/// How much of ffmpeg's stderr is kept for error messages.
pub const TAIL_BYTES: usize = 4096;
/// Longest progress line read; anything longer is not ffmpeg's progress and is skipped.
const MAX_LINE: usize = 4096;

/// The video encoder a recording uses: H.264 when the build has one (every browser plays it),
/// MPEG-4 part 2 otherwise (ffmpeg's own encoder, always built in; players such as VLC and
/// ffmpeg play it, browsers do not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoder {
    X264,
    OpenH264,
    Mpeg4,
}

impl Encoder {
    pub fn name(self) -> &'static str {
        match self {
            Encoder::X264 => "libx264",
            Encoder::OpenH264 => "libopenh264",
            Encoder::Mpeg4 => "mpeg4",
        }
    }

    /// Picks the best encoder from `ffmpeg -encoders` output.
    pub fn choose(encoders_listing: &str) -> Encoder {
        let names: Vec<&str> = encoders_listing
            .lines()
            .filter_map(|l| {
                let mut words = l.split_whitespace();
                let flags = words.next()?;
                // Encoder lines start with capability flags such as `V....D`.
                (flags.len() == 6 && flags.starts_with('V')).then(|| words.next()).flatten()
            })
            .collect();
        if names.contains(&"libx264") {
            Encoder::X264
        } else if names.contains(&"libopenh264") {
            Encoder::OpenH264
        } else {
            Encoder::Mpeg4
        }
    }

    fn args(self) -> &'static [&'static str] {
        match self {
            // The reference's settings: the fastest preset, and the pixel format players expect.
            Encoder::X264 => &["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"],
            Encoder::OpenH264 => &["-c:v", "libopenh264", "-pix_fmt", "yuv420p"],
            Encoder::Mpeg4 => &["-c:v", "mpeg4", "-q:v", "5", "-pix_fmt", "yuv420p"],
        }
    }
}

/// What the installed ffmpeg can do, probed once per ffmpeg binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    pub encoder: Encoder,
    /// `-stats_period` exists (ffmpeg 4.4 and later): progress comes every 100 ms instead of
    /// every 500 ms, so a start answers sooner after the first frame.
    pub stats_period: bool,
}

impl Caps {
    /// From `ffmpeg -version` and `ffmpeg -encoders` output.
    pub fn from_probes(version: &str, encoders: &str) -> Caps {
        Caps { encoder: Encoder::choose(encoders), stats_period: supports_stats_period(version) }
    }
}

/// `ffmpeg version 5.1.9-0+deb12u1 …` → 5.1 ≥ 4.4. Builds from git (`N-…`) or with odd version
/// strings are taken as recent.
fn supports_stats_period(version: &str) -> bool {
    let Some(v) = version.split_whitespace().skip_while(|w| *w != "version").nth(1) else {
        return true;
    };
    let mut parts = v.split(|c: char| !c.is_ascii_digit());
    let (Some(major), Some(minor)) = (parts.next(), parts.next()) else { return true };
    match (major.parse::<u32>(), minor.parse::<u32>()) {
        (Ok(major), Ok(minor)) => (major, minor) >= (4, 4),
        _ => true,
    }
}

/// The command line of a recording of `display` into `out`.
pub fn recording_args(caps: Caps, display: &str, out: &Path) -> Vec<OsString> {
    let mut args: Vec<OsString> =
        ["-hide_banner", "-nostats", "-loglevel", "warning", "-progress", "pipe:1"].map(Into::into).into();
    if caps.stats_period {
        args.extend(["-stats_period", "0.1"].map(OsString::from));
    }
    args.extend(["-f", "x11grab", "-draw_mouse", "1", "-framerate"].map(OsString::from));
    args.push(FRAMERATE.to_string().into());
    args.extend(["-i".into(), display.into()]);
    // H.264 in 4:2:0 needs even sides; an odd-sized screen loses its last row or column instead
    // of failing the recording. Cropping copies nothing.
    args.extend(["-vf", "crop=trunc(iw/2)*2:trunc(ih/2)*2"].map(OsString::from));
    args.extend(caps.encoder.args().iter().map(OsString::from));
    args.extend(["-y".into(), out.as_os_str().to_owned()]);
    args
}

/// The last [`TAIL_BYTES`] of a stream.
#[derive(Debug, Default)]
pub struct Tail {
    buf: Vec<u8>,
}

impl Tail {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() > TAIL_BYTES {
            let cut = self.buf.len() - TAIL_BYTES;
            self.buf.drain(..cut);
        }
    }

    /// The kept text, trimmed, from the first whole line on when the start was cut off.
    pub fn text(&self) -> String {
        let text = String::from_utf8_lossy(&self.buf);
        let text = if self.buf.len() == TAIL_BYTES {
            text.split_once('\n').map(|(_, rest)| rest.to_string()).unwrap_or_else(|| text.to_string())
        } else {
            text.into_owned()
        };
        text.trim().to_string()
    }
}

/// Copies a stream into a shared [`Tail`] until it ends (on a thread of its own).
pub fn keep_tail(mut stream: impl Read, tail: Arc<Mutex<Tail>>) {
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => tail.lock().unwrap_or_else(|e| e.into_inner()).push(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// Reads `-progress` output until it ends, calling `on_frames` with each `frame=` count.
pub fn follow_progress(stream: impl Read, mut on_frames: impl FnMut(u64)) {
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        match (&mut reader).take(MAX_LINE as u64).read_until(b'\n', &mut line) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        }
        if line.last() != Some(&b'\n') && line.len() >= MAX_LINE {
            // An overlong line: skip the rest of it.
            let mut rest = Vec::new();
            if reader.read_until(b'\n', &mut rest).is_err() {
                return;
            }
            continue;
        }
        if let Some(n) = line.strip_prefix(b"frame=")
            && let Ok(n) = std::str::from_utf8(n).unwrap_or("").trim().parse::<u64>()
        {
            on_frames(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENCODERS: &str = "Encoders:\n V..... = Video\n ------\n V....D libopenh264          OpenH264 H.264\n V....D mpeg4                MPEG-4 part 2\n";

    #[test]
    fn h264_is_preferred_and_mpeg4_is_the_fallback() {
        assert_eq!(Encoder::choose(ENCODERS), Encoder::OpenH264);
        let with_x264 = format!("{ENCODERS} V....D libx264              libx264 H.264 / AVC\n");
        assert_eq!(Encoder::choose(&with_x264), Encoder::X264);
        assert_eq!(Encoder::choose(" V....D mpeg4   MPEG-4\n"), Encoder::Mpeg4);
        // The legend line (`V..... = Video`) is not an encoder called `=`.
        assert_eq!(Encoder::choose(" V..... = Video\n"), Encoder::Mpeg4);
    }

    #[test]
    fn stats_period_needs_ffmpeg_4_4() {
        assert!(supports_stats_period("ffmpeg version 5.1.9-0+deb12u1 Copyright (c) 2000-2025"));
        assert!(supports_stats_period("ffmpeg version 4.4.2-0ubuntu0.22.04.1"));
        assert!(!supports_stats_period("ffmpeg version 4.2.7-0ubuntu0.1 Copyright"));
        assert!(!supports_stats_period("ffmpeg version 3.4.11"));
        assert!(supports_stats_period("ffmpeg version N-112233-gabcdef"));
        assert!(supports_stats_period("garbage"));
    }

    #[test]
    fn the_command_line_records_the_display_into_the_file() {
        let caps = Caps { encoder: Encoder::X264, stats_period: true };
        let args: Vec<String> = recording_args(caps, ":5", Path::new("/r/a b.mp4"))
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        let joined = args.join(" ");
        assert!(joined.contains("-f x11grab -draw_mouse 1 -framerate 30 -i :5"), "{joined}");
        assert!(joined.contains("-progress pipe:1 -stats_period 0.1"), "{joined}");
        assert!(joined.contains("-c:v libx264 -preset ultrafast -pix_fmt yuv420p"), "{joined}");
        assert_eq!(args.last().unwrap(), "/r/a b.mp4");
        let old = Caps { encoder: Encoder::Mpeg4, stats_period: false };
        let joined: Vec<String> = recording_args(old, ":5", Path::new("/x.mp4"))
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        assert!(!joined.contains(&"-stats_period".to_string()));
        assert!(joined.contains(&"mpeg4".to_string()));
    }

    #[test]
    fn tails_keep_the_end() {
        let mut t = Tail::default();
        t.push(b"first line\nsecond\n");
        assert_eq!(t.text(), "first line\nsecond");
        let mut t = Tail::default();
        for i in 0..1000 {
            t.push(format!("line {i}\n").as_bytes());
        }
        let text = t.text();
        assert!(text.ends_with("line 999"), "{text}");
        assert!(text.starts_with("line "), "{text}");
        assert!(text.len() < TAIL_BYTES);
    }

    #[test]
    fn progress_reports_frame_counts_and_skips_junk() {
        let input = format!(
            "fps=0.0\nframe=0\nframe=3\n{}\nframe=x\nframe=12\nprogress=continue\n",
            "z".repeat(10_000)
        );
        let mut seen = Vec::new();
        follow_progress(input.as_bytes(), |n| seen.push(n));
        assert_eq!(seen, vec![0, 3, 12]);
    }
}
