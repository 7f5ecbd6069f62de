//! The searches behind `GET /files/find` ([`find`]: literal text in file contents) and
//! `GET /files/search` ([`search`]: base-name glob), with the reference's walk semantics. Roots
//! and patterns are raw bytes; what is reported is text (invalid UTF-8 as one U+FFFD per byte).
//!
//! Both walk the tree the way Go's `filepath.Walk` does: the root is `lstat`ed (a symlinked
//! root is reported by `search` but never entered), symbolic links below it are never
//! followed, nothing is filtered (no ignore files, hidden entries included), a directory that
//! cannot be read is skipped together with its own name, and results come in lexical walk
//! order. The walk itself is parallel and allocation-free per entry ([`walk`]); determinism
//! comes from sorting by the walk key at the end, which reproduces the pre-order, name-sorted
//! order of `filepath.Walk`.
//!
//! Results are bounded: see [`MAX_FIND_MATCHES`], [`MAX_SEARCH_PATHS`] and
//! [`MAX_RESULT_BYTES`]. When a bound cuts the answer, it holds exactly the first results in
//! walk order and carries the [`TRUNCATED_HEADER`] header.

use std::ffi::CStr;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use grep_matcher::Matcher;
use grep_regex::{RegexMatcher, RegexMatcherBuilder};

use crate::walk::{self, Kind, Visitor as _};

use crate::fspath;
use crate::text::lossy_per_byte;

/// Most matches `/files/find` returns (the first ones in walk order).
pub const MAX_FIND_MATCHES: usize = 100_000;
/// Most paths `/files/search` returns (the first ones in walk order).
pub const MAX_SEARCH_PATHS: usize = 1_000_000;
/// Most bytes of paths and line contents one answer holds, whatever the count.
pub const MAX_RESULT_BYTES: usize = 128 * 1024 * 1024;
/// Response header present (value `true`) when a bound cut the results.
pub const TRUNCATED_HEADER: &str = "x-daytona-results-truncated";

/// Longest line the reference reads: Go's `bufio.Scanner` holds at most 64 KiB including the
/// `\n`, and a longer line ends the scan of that file without an error.
const MAX_LINE: usize = 64 * 1024 - 1;
/// The reference's binary sniff: a NUL in its first read of this many bytes skips the file.
const SNIFF_LEN: usize = 512;
/// Per-thread read buffer. Must exceed `MAX_LINE` so an unfinished line always fits.
const READ_BUF: usize = 256 * 1024;
/// Hits a walker thread gathers before handing them to the shared collector.
const BATCH: usize = 4096;

/// One line containing the pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// The walk path: the requested path as given for the root, the cleaned join below it
    /// (invalid UTF-8 as one U+FFFD per byte).
    pub file: Arc<str>,
    /// 1-based line number.
    pub line: u64,
    /// The whole line, without its `\n` and one trailing `\r`.
    pub content: String,
}

/// Result bounds of one request.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub items: usize,
    pub bytes: usize,
}

impl Limits {
    pub const FIND: Limits = Limits { items: MAX_FIND_MATCHES, bytes: MAX_RESULT_BYTES };
    pub const SEARCH: Limits = Limits { items: MAX_SEARCH_PATHS, bytes: MAX_RESULT_BYTES };
}

/// A search's results, in walk order.
#[derive(Debug)]
pub struct Found<T> {
    pub items: Vec<T>,
    /// A bound dropped results after the last one kept.
    pub truncated: bool,
}

impl<T> Found<T> {
    fn empty() -> Self {
        Found { items: Vec::new(), truncated: false }
    }
}

// ------------------------------------------------------------------------------------ find

/// Searches the tree at `fs_root` (the requested path `root`, resolved against the work
/// directory as given, not cleaned) for lines containing the literal bytes `pattern`.
pub fn find(root: &[u8], fs_root: &Path, pattern: &[u8], limits: Limits) -> Found<Match> {
    // Lines never contain `\n`, so such a pattern cannot match anything.
    if pattern.contains(&b'\n') {
        return Found::empty();
    }
    let Ok(matcher) = literal_matcher(pattern) else {
        // Only a pattern too large for the regex engine gets here.
        return Found::empty();
    };
    let Ok(meta) = fs::symlink_metadata(fs_root) else { return Found::empty() };
    let job = Job::new(root, fs_root, limits);
    let finder = Finder { job: &job, matcher: &matcher };
    if meta.is_file() {
        let mut local = finder.local();
        if let Ok(mut file) = File::open(fs_root) {
            finder.scan_file(&mut local, &mut file, &|| None);
        }
        finder.finish(local);
    } else if meta.is_dir() {
        job.walk(&finder, ());
    }
    job.collector.finish()
}

/// A matcher for the literal bytes `pattern`. Text is matched as a fixed string; a pattern that
/// is not UTF-8 (a client may send `%FF`) is spelled byte by byte in the engine's byte mode, so
/// it finds exactly those bytes.
fn literal_matcher(pattern: &[u8]) -> Result<RegexMatcher, grep_regex::Error> {
    match std::str::from_utf8(pattern) {
        Ok(text) => RegexMatcherBuilder::new().fixed_strings(true).build(text),
        Err(_) => {
            let spelled: String = pattern.iter().map(|b| format!("\\x{b:02X}")).collect();
            RegexMatcherBuilder::new().build(&format!("(?-u:{spelled})"))
        }
    }
}

/// The walk of a find: every regular file below the root is scanned.
struct Finder<'a> {
    job: &'a Job<Match>,
    matcher: &'a RegexMatcher,
}

/// One walking thread's state: its own matcher (no contention on the regex cache pool), read
/// buffer and batch of hits, all reused from file to file.
struct FindLocal {
    matcher: RegexMatcher,
    buf: Box<[u8]>,
    batch: Vec<Hit<Match>>,
}

impl Finder<'_> {
    /// Scans one open regular file: the entry at the path `rel` gives, or the root itself when
    /// it gives none (called at the first match only: most files have none).
    fn scan_file(&self, local: &mut FindLocal, file: &mut File, rel: &dyn Fn() -> Option<Vec<u8>>) {
        let job = self.job;
        let batch = &mut local.batch;
        let mut names: Option<(Arc<[u8]>, Arc<str>)> = None;
        let (mut count, mut bytes) = (0usize, 0usize);
        let _ = scan(file, &local.matcher, &mut local.buf, &mut |line, content| {
            let (key, display) = names.get_or_insert_with(|| match rel() {
                Some(rel) => (walk_key(&rel).into(), job.display(&rel).into()),
                None => (Arc::from(&[][..]), Arc::from(job.shown_root.as_str())),
            });
            let content = lossy_per_byte(content);
            let size = content.len() + display.len();
            batch.push(Hit {
                key: key.clone(),
                seq: line,
                bytes: size,
                value: Match { file: display.clone(), line, content },
            });
            if batch.len() >= BATCH {
                job.collector.add(batch);
            }
            count += 1;
            bytes += size;
            // Later lines of this file come after these in walk order: once one hit past a
            // bound is in the batch, none of them can be in the answer. That one hit is kept
            // so the collector sees the cut (and says the answer is truncated) even when a
            // single file holds more matches than the bound.
            count <= job.collector.limits.items && bytes <= job.collector.limits.bytes
        });
        if !local.batch.is_empty() {
            self.job.collector.add(&mut local.batch);
        }
    }
}

impl walk::Visitor for Finder<'_> {
    type Local = FindLocal;
    type Carry = ();

    fn local(&self) -> FindLocal {
        FindLocal {
            matcher: self.matcher.clone(),
            buf: vec![0; READ_BUF].into_boxed_slice(),
            batch: Vec::new(),
        }
    }

    fn finish(&self, mut local: FindLocal) {
        self.job.collector.add(&mut local.batch);
    }

    fn beyond(&self, rel: &[u8]) -> bool {
        self.job.collector.is_cut() && self.job.collector.beyond(rel)
    }

    fn listing(&self, _: &mut FindLocal, _: &[u8], _: (), _: bool) {}

    fn entry(&self, _: &mut FindLocal, _: &[u8], _: &[u8], kind: Kind) -> Option<()> {
        (kind == Kind::Dir).then_some(())
    }

    fn reads_files(&self) -> bool {
        true
    }

    fn file(&self, local: &mut FindLocal, dir: BorrowedFd<'_>, dir_rel: &[u8], name: &CStr) {
        let cut = self.job.collector.is_cut();
        // The path is only needed for a hit, or to compare with the cut once there is one.
        let rel = |dir_rel: &[u8]| join_rel(dir_rel, name.to_bytes());
        if cut && self.job.collector.beyond(&rel(dir_rel)) {
            return;
        }
        let Some(mut file) = walk::open_file(dir, name) else { return };
        self.scan_file(local, &mut file, &|| Some(rel(dir_rel)));
    }
}

/// `dir_rel/name` (just `name` below the root).
fn join_rel(dir_rel: &[u8], name: &[u8]) -> Vec<u8> {
    let mut rel = Vec::with_capacity(dir_rel.len() + 1 + name.len());
    if !dir_rel.is_empty() {
        rel.extend_from_slice(dir_rel);
        rel.push(b'/');
    }
    rel.extend_from_slice(name);
    rel
}

/// Reads one file and calls `on_match(line_number, line)` for each line containing the
/// pattern, with the reference's rules: a NUL in the first read (up to 512 bytes) or an empty
/// file means no lines at all; lines end at `\n` and lose one trailing `\r`; the first line
/// longer than 64 KiB ends the scan (lines before it were reported). `on_match` returns
/// whether to go on. A read error ends the scan after the lines already reported.
pub fn scan(
    r: &mut impl Read,
    matcher: &RegexMatcher,
    buf: &mut [u8],
    on_match: &mut dyn FnMut(u64, &[u8]) -> bool,
) -> io::Result<()> {
    debug_assert!(buf.len() > MAX_LINE);
    let mut end = 0; // buf[..end] holds data; it always starts at the beginning of a line
    let mut line_no: u64 = 1; // number of the line starting at buf[0]
    let mut first_read = true;
    loop {
        let mut eof = false;
        while end < buf.len() {
            let n = match r.read(&mut buf[end..]) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if first_read {
                first_read = false;
                if n == 0 || buf[..n.min(SNIFF_LEN)].contains(&0) {
                    return Ok(());
                }
            }
            if n == 0 {
                eof = true;
                break;
            }
            end += n;
        }
        let long = first_long_line(&buf[..end]);
        // Complete lines to search now: up to a too-long line, else up to the last `\n`
        // (everything at EOF). An unfinished line is kept for the next read.
        let stop = match long {
            Some(at) => at,
            None if eof => end,
            // No `\n` at all would be a too-long line, as the buffer exceeds `MAX_LINE`.
            None => buf[..end].iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1),
        };
        let region = &buf[..stop];
        let mut at = 0;
        let mut counted = 0;
        while at < stop {
            let Ok(Some(m)) = matcher.find_at(region, at) else { break };
            let start = region[..m.start()].iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            let nl = region[m.end()..].iter().position(|&b| b == b'\n').map_or(stop, |i| m.end() + i);
            line_no += count_newlines(&region[counted..start]);
            counted = start;
            let line = &region[start..nl];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            // The leftmost occurrence ending in the dropped `\r` means no occurrence in the line.
            if m.end() <= start + line.len() && !on_match(line_no, line) {
                return Ok(());
            }
            at = nl + 1;
        }
        if long.is_some() || eof {
            return Ok(());
        }
        line_no += count_newlines(&region[counted..]);
        buf.copy_within(stop..end, 0);
        end -= stop;
    }
}

/// Offset of the first line in `data` (which starts at a line start) whose content exceeds
/// `MAX_LINE`, counting an unterminated tail as a line. Costs one backwards scan per 64 KiB.
fn first_long_line(data: &[u8]) -> Option<usize> {
    let mut p = 0;
    while data.len() - p > MAX_LINE {
        // The line at `p` fits only if a `\n` ends it within its first MAX_LINE + 1 bytes; the
        // last `\n` there also vouches for every line before it.
        match data[p..=p + MAX_LINE].iter().rposition(|&b| b == b'\n') {
            Some(i) => p += i + 1,
            None => return Some(p),
        }
    }
    None
}

fn count_newlines(data: &[u8]) -> u64 {
    // Byte sums over short chunks vectorise well and cannot overflow.
    data.chunks(255).map(|c| u64::from(c.iter().map(|&b| u8::from(b == b'\n')).sum::<u8>())).sum()
}

// ---------------------------------------------------------------------------------- search

/// Lists the walk paths under `fs_root` (the requested path `root`, resolved as given) whose
/// base name matches the Go glob `pattern`.
pub fn search(root: &[u8], fs_root: &Path, pattern: &[u8], limits: Limits) -> Found<String> {
    let Ok(meta) = fs::symlink_metadata(fs_root) else { return Found::empty() };
    if !meta.is_dir() {
        let hit = glob_match(pattern, fspath::base(root));
        return Found { items: if hit { vec![lossy_per_byte(root)] } else { Vec::new() }, truncated: false };
    }
    let job = Job::new(root, fs_root, limits);
    let searcher = Searcher { job: &job, glob: Glob::new(pattern) };
    let root_hit = glob_match(pattern, fspath::base(root)).then(|| Hit {
        key: Arc::from(&[][..]),
        seq: 0,
        bytes: job.shown_root.len(),
        value: job.shown_root.clone(),
    });
    job.walk(&searcher, root_hit);
    job.collector.finish()
}

/// The walk of a search: every entry's base name is matched.
struct Searcher<'a> {
    job: &'a Job<String>,
    glob: Glob<'a>,
}

impl walk::Visitor for Searcher<'_> {
    type Local = Vec<Hit<String>>;
    /// A directory's own hit waits for its listing: the reference skips the name of a directory
    /// it cannot read, together with its contents.
    type Carry = Option<Hit<String>>;

    fn local(&self) -> Vec<Hit<String>> {
        Vec::new()
    }

    fn finish(&self, mut batch: Vec<Hit<String>>) {
        self.job.collector.add(&mut batch);
    }

    fn beyond(&self, rel: &[u8]) -> bool {
        self.job.collector.is_cut() && self.job.collector.beyond(rel)
    }

    fn listing(&self, batch: &mut Vec<Hit<String>>, _: &[u8], hit: Option<Hit<String>>, opened: bool) {
        if let Some(hit) = hit
            && opened
        {
            batch.push(hit);
        }
    }

    fn entry(
        &self,
        batch: &mut Vec<Hit<String>>,
        dir_rel: &[u8],
        name: &[u8],
        kind: Kind,
    ) -> Option<Option<Hit<String>>> {
        let hit = self.glob.matches(name).then(|| {
            let rel = join_rel(dir_rel, name);
            let display = self.job.display(&rel);
            Hit { key: walk_key(&rel).into(), seq: 0, bytes: display.len(), value: display }
        });
        if kind == Kind::Dir {
            return Some(hit);
        }
        if let Some(hit) = hit {
            // Past the cut, the collector drops it (and notes the answer is truncated).
            batch.push(hit);
            if batch.len() >= BATCH {
                self.job.collector.add(batch);
            }
        }
        None
    }

    fn reads_files(&self) -> bool {
        false
    }

    fn file(&self, _: &mut Vec<Hit<String>>, _: BorrowedFd<'_>, _: &[u8], _: &CStr) {}
}

// -------------------------------------------------------------------------- shared walking

/// What a walk needs to know about its root.
struct Job<T> {
    /// The `path` parameter as given, as reported: the root's own walk path.
    shown_root: String,
    /// `root` cleaned as Go's `filepath.Clean`: the prefix of every path below it.
    clean_root: Vec<u8>,
    /// Path of the root on the file system.
    fs_root: PathBuf,
    collector: Collector<T>,
}

impl<T> Job<T> {
    fn new(root: &[u8], fs_root: &Path, limits: Limits) -> Self {
        Job {
            shown_root: lossy_per_byte(root),
            clean_root: fspath::clean(root),
            fs_root: fs_root.to_path_buf(),
            collector: Collector::new(limits),
        }
    }

    /// Walks the tree with one thread per CPU (at most 12), or on this thread alone when the
    /// system has no threads to give (see [`walk::walk`]).
    fn walk<V: walk::Visitor>(&self, visitor: &V, carry: V::Carry) {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(12);
        #[cfg(test)]
        let threads = if tests::SERIAL.with(|s| s.get()) { 1 } else { threads };
        walk::walk(&self.fs_root, visitor, carry, threads);
    }

    /// The reference's walk path for an entry below the root: `filepath.Join(root, rel)`.
    fn display(&self, rel: &[u8]) -> String {
        lossy_per_byte(&fspath::join(&self.clean_root, rel))
    }
}

/// Sort key of a path below the root: its bytes with `/` as 0, so that plain byte order is the
/// walk's pre-order with name-sorted siblings (`a/b` before `a.txt`). The root's key is empty.
fn walk_key(rel: &[u8]) -> Vec<u8> {
    rel.iter().map(|&b| if b == b'/' { 0 } else { b }).collect()
}

/// One result with its place in walk order: (`key`, `seq`) where `seq` is the line number.
struct Hit<T> {
    key: Arc<[u8]>,
    seq: u64,
    bytes: usize,
    value: T,
}

/// Gathers the hits of all walker threads, keeping memory within twice the bounds: when it
/// holds too much it sorts, keeps the first hits in walk order and remembers the last kept
/// place, after which nothing more can make it into the answer.
struct Collector<T> {
    limits: Limits,
    acc: Mutex<Acc<T>>,
    cut: AtomicBool,
}

struct Acc<T> {
    hits: Vec<Hit<T>>,
    bytes: usize,
    cutoff: Option<(Arc<[u8]>, u64)>,
    truncated: bool,
}

impl<T> Collector<T> {
    fn new(limits: Limits) -> Self {
        Collector {
            limits,
            acc: Mutex::new(Acc { hits: Vec::new(), bytes: 0, cutoff: None, truncated: false }),
            cut: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Acc<T>> {
        toolbox_envelope::sync::lock(&self.acc)
    }

    fn add(&self, batch: &mut Vec<Hit<T>>) {
        if batch.is_empty() {
            return;
        }
        let mut acc = self.lock();
        for hit in batch.drain(..) {
            if acc.cutoff.as_ref().is_some_and(|(k, s)| (&hit.key[..], hit.seq) > (&k[..], *s)) {
                acc.truncated = true;
                continue;
            }
            acc.bytes += hit.bytes;
            acc.hits.push(hit);
        }
        if acc.hits.len() > self.limits.items.saturating_mul(2)
            || acc.bytes > self.limits.bytes.saturating_mul(2)
        {
            acc.trim(self.limits);
            self.cut.store(true, Ordering::Release);
        }
    }

    /// Whether a bound has cut the results, so that [`Collector::beyond`] may hold.
    fn is_cut(&self) -> bool {
        self.cut.load(Ordering::Acquire)
    }

    /// Whether everything at or below `rel` lies past the results already kept.
    fn beyond(&self, rel: &[u8]) -> bool {
        let key = walk_key(rel);
        self.lock().cutoff.as_ref().is_some_and(|(k, _)| key[..] > k[..])
    }

    fn finish(&self) -> Found<T> {
        let mut acc = self.lock();
        acc.trim(self.limits);
        Found { items: acc.hits.drain(..).map(|h| h.value).collect(), truncated: acc.truncated }
    }
}

impl<T> Acc<T> {
    /// Sorts into walk order and keeps the longest prefix within the bounds.
    fn trim(&mut self, limits: Limits) {
        self.hits.sort_unstable_by(|a, b| (&a.key[..], a.seq).cmp(&(&b.key[..], b.seq)));
        let mut bytes = 0;
        let mut keep = 0;
        for hit in &self.hits {
            if keep == limits.items || bytes + hit.bytes > limits.bytes {
                break;
            }
            bytes += hit.bytes;
            keep += 1;
        }
        if keep < self.hits.len() {
            self.truncated = true;
            self.cutoff = Some(match keep {
                0 => (Arc::from(&[][..]), 0),
                n => (self.hits[n - 1].key.clone(), self.hits[n - 1].seq),
            });
            self.hits.truncate(keep);
        }
        self.bytes = bytes;
    }
}

// ------------------------------------------------------------------------------------ glob

/// A glob compiled for matching many names: `filepath.Match` semantics (see [`glob_match`]),
/// with the cheap necessary conditions checked first. Most names of a walk do not match, and
/// those are turned away by comparing literal bytes instead of running the matcher.
pub struct Glob<'p> {
    pattern: &'p [u8],
    /// A malformed pattern matches nothing (the reference's walk ignores `ErrBadPattern`).
    valid: bool,
    /// Literal bytes the pattern starts with (a name must start with them) ...
    prefix: Vec<u8>,
    /// ... and ends with.
    suffix: Vec<u8>,
    /// Every run of literal bytes, in pattern order: a name holds each of them, in that order,
    /// without overlap, as literal bytes only ever match themselves.
    runs: Vec<Vec<u8>>,
}

impl<'p> Glob<'p> {
    pub fn new(pattern: &'p [u8]) -> Self {
        // Go checks the whole pattern whatever the name (names hold no `/`), so one try says
        // whether it is malformed.
        let valid = go_match(pattern, b"").is_ok();
        let mut runs: Vec<Vec<u8>> = Vec::new();
        let (mut starts_literal, mut ends_literal, mut first_token) = (false, false, true);
        let mut current: Option<Vec<u8>> = None;
        let mut i = 0;
        while valid && i < pattern.len() {
            let literal = match pattern[i] {
                b'*' | b'?' => None,
                b'[' => {
                    // A well-formed class: items up to the first unescaped `]` after the first.
                    i += 1;
                    if pattern.get(i) == Some(&b'^') {
                        i += 1;
                    }
                    let mut first = true;
                    while i < pattern.len() && (first || pattern[i] != b']') {
                        i += if pattern[i] == b'\\' { 2 } else { 1 };
                        first = false;
                    }
                    None
                }
                b'\\' => {
                    i += 1;
                    pattern.get(i).copied()
                }
                b => Some(b),
            };
            i += 1;
            if first_token {
                starts_literal = literal.is_some();
                first_token = false;
            }
            match literal {
                Some(b) => {
                    current.get_or_insert_with(Vec::new).push(b);
                    ends_literal = true;
                }
                None => {
                    runs.extend(current.take());
                    ends_literal = false;
                }
            }
        }
        runs.extend(current);
        let prefix = if starts_literal { runs.first().cloned().unwrap_or_default() } else { Vec::new() };
        let suffix = if ends_literal { runs.last().cloned().unwrap_or_default() } else { Vec::new() };
        Glob { pattern, valid, prefix, suffix, runs }
    }

    pub fn matches(&self, name: &[u8]) -> bool {
        if !self.valid || !name.starts_with(&self.prefix) || !name.ends_with(&self.suffix) {
            return false;
        }
        let mut rest = name;
        for run in &self.runs {
            match rest.windows(run.len()).position(|w| w == &run[..]) {
                Some(at) => rest = &rest[at + run.len()..],
                None => return false,
            }
        }
        glob_match(self.pattern, name)
    }
}

/// Go's `filepath.Match` as the reference uses it: a malformed pattern matches nothing.
pub fn glob_match(pattern: &[u8], name: &[u8]) -> bool {
    go_match(pattern, name).unwrap_or(false)
}

/// `filepath.ErrBadPattern`.
#[derive(Debug, PartialEq, Eq)]
pub struct BadPattern;

/// A port of Go's `filepath.Match` (Unix, Go ≥ 1.16: the whole pattern is checked for syntax
/// errors even after a mismatch). Names are bytes; classes and `?` decode one UTF-8 character
/// (an invalid byte counts as one U+FFFD), everything else compares bytes.
pub fn go_match(mut pattern: &[u8], mut name: &[u8]) -> Result<bool, BadPattern> {
    'pattern: while !pattern.is_empty() {
        let (star, chunk, rest) = scan_chunk(pattern);
        pattern = rest;
        if star && chunk.is_empty() {
            // A trailing `*` matches the rest unless it has a separator.
            return Ok(!name.contains(&b'/'));
        }
        let here = match_chunk(chunk, name)?;
        if let Some(t) = here
            && (t.is_empty() || !pattern.is_empty())
        {
            name = t;
            continue;
        }
        if star {
            let mut i = 0;
            while i < name.len() && name[i] != b'/' {
                if let Some(t) = match_chunk(chunk, &name[i + 1..])? {
                    // The last chunk must consume the whole name.
                    if pattern.is_empty() && !t.is_empty() {
                        i += 1;
                        continue;
                    }
                    name = t;
                    continue 'pattern;
                }
                i += 1;
            }
        }
        while !pattern.is_empty() {
            let (_, chunk, rest) = scan_chunk(pattern);
            pattern = rest;
            match_chunk(chunk, b"")?;
        }
        return Ok(false);
    }
    Ok(name.is_empty())
}

fn scan_chunk(mut pattern: &[u8]) -> (bool, &[u8], &[u8]) {
    let mut star = false;
    while let [b'*', rest @ ..] = pattern {
        pattern = rest;
        star = true;
    }
    let mut in_range = false;
    let mut i = 0;
    while i < pattern.len() {
        match pattern[i] {
            b'\\' if i + 1 < pattern.len() => i += 1,
            b'[' => in_range = true,
            b']' => in_range = false,
            b'*' if !in_range => break,
            _ => {}
        }
        i += 1;
    }
    (star, &pattern[..i], &pattern[i..])
}

/// Matches `chunk` (no unbracketed `*`) at the start of `s`, returning the rest of `s`.
fn match_chunk<'s>(mut chunk: &[u8], mut s: &'s [u8]) -> Result<Option<&'s [u8]>, BadPattern> {
    // After a mismatch the chunk is still parsed, to report syntax errors.
    let mut failed = false;
    while let Some(&c) = chunk.first() {
        if !failed && s.is_empty() {
            failed = true;
        }
        match c {
            b'[' => {
                let mut r = 0;
                if !failed {
                    let (ch, n) = decode_rune(s);
                    r = ch;
                    s = &s[n..];
                }
                chunk = &chunk[1..];
                let negated = chunk.first() == Some(&b'^');
                if negated {
                    chunk = &chunk[1..];
                }
                let mut matched = false;
                let mut ranges = 0;
                loop {
                    if chunk.first() == Some(&b']') && ranges > 0 {
                        chunk = &chunk[1..];
                        break;
                    }
                    let (lo, rest) = get_esc(chunk)?;
                    chunk = rest;
                    let mut hi = lo;
                    if chunk[0] == b'-' {
                        (hi, chunk) = get_esc(&chunk[1..])?;
                    }
                    if lo <= r && r <= hi {
                        matched = true;
                    }
                    ranges += 1;
                }
                if matched == negated {
                    failed = true;
                }
            }
            b'?' => {
                if !failed {
                    if s[0] == b'/' {
                        failed = true;
                    }
                    s = &s[decode_rune(s).1..];
                }
                chunk = &chunk[1..];
            }
            _ => {
                if c == b'\\' {
                    chunk = &chunk[1..];
                    if chunk.is_empty() {
                        return Err(BadPattern);
                    }
                }
                if !failed {
                    if chunk[0] != s[0] {
                        failed = true;
                    }
                    s = &s[1..];
                }
                chunk = &chunk[1..];
            }
        }
    }
    Ok(if failed { None } else { Some(s) })
}

/// One (possibly escaped) character of a class; the class must go on after it.
fn get_esc(chunk: &[u8]) -> Result<(u32, &[u8]), BadPattern> {
    let mut c = match chunk.first() {
        None | Some(b'-' | b']') => return Err(BadPattern),
        Some(_) => chunk,
    };
    if c[0] == b'\\' {
        c = &c[1..];
        if c.is_empty() {
            return Err(BadPattern);
        }
    }
    let (r, n) = decode_rune(c);
    let rest = &c[n..];
    if (r == 0xFFFD && n == 1) || rest.is_empty() {
        return Err(BadPattern);
    }
    Ok((r, rest))
}

/// Go's `utf8.DecodeRune` on a non-empty slice: invalid input is (U+FFFD, 1).
fn decode_rune(s: &[u8]) -> (u32, usize) {
    let len = match s[0] {
        0x00..=0x7F => return (u32::from(s[0]), 1),
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => return (0xFFFD, 1),
    };
    match s.get(..len).map(std::str::from_utf8) {
        Some(Ok(text)) => (text.chars().next().map_or(0xFFFD, u32::from), len),
        _ => (0xFFFD, 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    thread_local! {
        /// Makes this thread's walks take the sequential path of a sandbox without threads.
        pub static SERIAL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }

    #[test]
    fn without_threads_the_walk_runs_here_with_the_same_answers() {
        let dir = tree();
        let root = root_of(&dir);
        let parallel = find_in(&root, "needle", Limits::FIND);
        let names = search_in(&root, "*.txt", Limits::SEARCH);
        SERIAL.with(|s| s.set(true));
        let serial = find_in(&root, "needle", Limits::FIND);
        let serial_names = search_in(&root, "*.txt", Limits::SEARCH);
        SERIAL.with(|s| s.set(false));
        let key = |f: &Found<Match>| f.items.iter().map(|m| (m.file.to_string(), m.line)).collect::<Vec<_>>();
        assert_eq!(key(&serial), key(&parallel));
        assert_eq!(serial.items.len(), 6);
        assert_eq!(serial_names.items, names.items);
        assert!(!serial_names.items.is_empty());
    }
    use std::os::unix::fs::symlink;

    fn matcher(p: &str) -> RegexMatcher {
        RegexMatcherBuilder::new().fixed_strings(true).build(p).unwrap()
    }

    /// Reads in pieces of `step` bytes (the first read is always at least 512), so refills and
    /// lines crossing buffer boundaries get exercised.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
        first: bool,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let want = if std::mem::take(&mut self.first) { self.step.max(SNIFF_LEN) } else { self.step };
            let n = want.min(out.len()).min(self.data.len());
            out[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    fn scan_all(data: &[u8], pattern: &str, step: usize) -> Vec<(u64, Vec<u8>)> {
        let mut out = Vec::new();
        let mut buf = vec![0; READ_BUF];
        let mut r = Trickle { data, step, first: true };
        scan(&mut r, &matcher(pattern), &mut buf, &mut |n, l| {
            out.push((n, l.to_vec()));
            true
        })
        .unwrap();
        out
    }

    /// The reference's loop written the obvious way: bufio.Scanner + strings.Contains.
    fn model(data: &[u8], pattern: &str) -> Vec<(u64, Vec<u8>)> {
        if data.is_empty() || data[..data.len().min(SNIFF_LEN)].contains(&0) {
            return vec![];
        }
        let mut out = Vec::new();
        let mut lines: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
        if data.ends_with(b"\n") {
            lines.pop();
        }
        for (i, line) in lines.into_iter().enumerate() {
            if line.len() > MAX_LINE {
                break;
            }
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.windows(pattern.len()).any(|w| w == pattern.as_bytes()) {
                out.push((i as u64 + 1, line.to_vec()));
            }
        }
        out
    }

    fn lines(v: &[(u64, &str)]) -> Vec<(u64, Vec<u8>)> {
        v.iter().map(|(n, s)| (*n, s.as_bytes().to_vec())).collect()
    }

    #[test]
    fn scan_basics_crlf_and_last_line() {
        let data = b"foo bar\r\nno\nbar foo foo\nfoo\r\r\nlast foo";
        assert_eq!(
            scan_all(data, "foo", 1 << 20),
            lines(&[(1, "foo bar"), (3, "bar foo foo"), (4, "foo\r"), (5, "last foo")])
        );
        // One trailing `\r` is not part of the line; an inner one is.
        assert_eq!(scan_all(b"a\r\nb\rc\n", "\r", 1 << 20), lines(&[(2, "b\rc")]));
        assert_eq!(scan_all(b"xy\r\nxy\r\r\n", "y\r", 1 << 20), lines(&[(2, "xy\r")]));
        assert_eq!(scan_all(b"Foo\nfoo\n", "foo", 64), lines(&[(2, "foo")]), "case-sensitive");
        assert_eq!(scan_all(b"a.*b\nazzb\n", ".*", 64), lines(&[(1, "a.*b")]), "literal, not regex");
    }

    #[test]
    fn binary_and_empty_files_are_skipped() {
        assert!(scan_all(b"", "a", 64).is_empty());
        let mut bin = b"match\n".to_vec();
        bin.push(0);
        assert!(scan_all(&bin, "match", 64).is_empty());
        // A NUL beyond the first 512 bytes does not make the file binary.
        let mut late = vec![b'x'; 600];
        late.extend_from_slice(b"\nmat\0ch match\n");
        assert_eq!(scan_all(&late, "match", 64), lines(&[(2, "mat\0ch match")]));
        // Only the first read counts, even when it is short.
        let mut r = Trickle { data: b"abc\nmatch\n\0", step: 4, first: false };
        let mut hits = 0;
        scan(&mut r, &matcher("match"), &mut vec![0; READ_BUF], &mut |_, _| {
            hits += 1;
            true
        })
        .unwrap();
        assert_eq!(hits, 1);
    }

    #[test]
    fn long_lines_end_the_file() {
        let ok = "y".repeat(MAX_LINE);
        let long = "z".repeat(MAX_LINE + 1);
        // A line of exactly 65535 bytes is fine, terminated or not.
        let data = format!("foo\n{ok}\nfoo\n{ok}foo");
        let got = scan_all(data.as_bytes(), "foo", 1 << 20);
        assert_eq!(got.iter().map(|(n, _)| *n).collect::<Vec<_>>(), vec![1, 3]);
        let data = format!("foo\n{}foo", &ok[3..]);
        assert_eq!(scan_all(data.as_bytes(), "foo", 4096).len(), 2);
        // One byte more stops the scan there; earlier matches stay.
        let data = format!("foo\n{long}\nfoo\n");
        assert_eq!(scan_all(data.as_bytes(), "foo", 1 << 20), lines(&[(1, "foo")]));
        let data = format!("foo\n{}foo", &long[3..]);
        assert_eq!(scan_all(data.as_bytes(), "foo", 1 << 20), lines(&[(1, "foo")]));
        // The `\r` of a CRLF line counts toward the limit.
        let data = format!("foo\n{ok}\r\nfoo\n");
        assert_eq!(scan_all(data.as_bytes(), "foo", 1 << 20), lines(&[(1, "foo")]));
        // A too-long line far into a large file.
        let mut big = "foo\nbar\n".repeat(40_000);
        big.push_str(&long);
        big.push_str("\nfoo\n");
        assert_eq!(scan_all(big.as_bytes(), "foo", 7919).len(), 40_000);
    }

    #[test]
    fn scan_agrees_with_the_model() {
        // Deterministic pseudo-random files: short and long lines, CRLF, matches at chunk edges.
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..60 {
            let mut data = Vec::new();
            let target = (next() % 700_000) as usize;
            while data.len() < target {
                let len = match next() % 100 {
                    0 => 60_000 + (next() % 8_000) as usize,
                    1..=10 => (next() % 3000) as usize,
                    _ => (next() % 90) as usize,
                };
                for _ in 0..len {
                    data.push(b"abcdefgh needle\r"[(next() % 16) as usize]);
                }
                if next() % 7 == 0 {
                    data.extend_from_slice(b"needle");
                }
                data.push(b'\n');
            }
            if round % 3 == 0 {
                data.truncate(data.len().saturating_sub(1));
            }
            for pattern in ["needle", "e\r", "a"] {
                let want = model(&data, pattern);
                for step in [1 << 20, 65_537, 4093] {
                    assert_eq!(
                        scan_all(&data, pattern, step),
                        want,
                        "round {round} pattern {pattern:?} step {step}"
                    );
                }
            }
        }
    }

    #[test]
    fn scan_stops_when_told() {
        let mut buf = vec![0; READ_BUF];
        let mut seen = 0;
        scan(&mut Cursor::new(b"x\nx\nx\n"), &matcher("x"), &mut buf, &mut |_, _| {
            seen += 1;
            seen < 2
        })
        .unwrap();
        assert_eq!(seen, 2);
    }

    #[test]
    fn newline_counting() {
        let data: Vec<u8> = (0..10_000u32).map(|i| if i % 3 == 0 { b'\n' } else { b'x' }).collect();
        assert_eq!(count_newlines(&data), 3334);
        assert_eq!(count_newlines(b""), 0);
        assert_eq!(first_long_line(&[b'a'; MAX_LINE]), None);
        assert_eq!(first_long_line(&[b'a'; MAX_LINE + 1]), Some(0));
    }

    // ------------------------------------------------------------------------------- glob

    #[test]
    fn glob_matches_go_filepath_match() {
        // Go's own table (path/filepath/match_test.go); `Err` = ErrBadPattern.
        let table: &[(&str, &str, Result<bool, BadPattern>)] = &[
            ("abc", "abc", Ok(true)),
            ("*", "abc", Ok(true)),
            ("*c", "abc", Ok(true)),
            ("a*", "a", Ok(true)),
            ("a*", "abc", Ok(true)),
            ("a*", "ab/c", Ok(false)),
            ("a*/b", "abc/b", Ok(true)),
            ("a*/b", "a/c/b", Ok(false)),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", Ok(true)),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/f", Ok(true)),
            ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", Ok(false)),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", Ok(false)),
            ("a*b?c*x", "abxbbxdbxebxczzx", Ok(true)),
            ("a*b?c*x", "abxbbxdbxebxczzy", Ok(false)),
            ("ab[c]", "abc", Ok(true)),
            ("ab[b-d]", "abc", Ok(true)),
            ("ab[e-g]", "abc", Ok(false)),
            ("ab[^c]", "abc", Ok(false)),
            ("ab[^b-d]", "abc", Ok(false)),
            ("ab[^e-g]", "abc", Ok(true)),
            ("a\\*b", "a*b", Ok(true)),
            ("a\\*b", "ab", Ok(false)),
            ("a?b", "a☺b", Ok(true)),
            ("a[^a]b", "a☺b", Ok(true)),
            ("a???b", "a☺b", Ok(false)),
            ("a[^a][^a][^a]b", "a☺b", Ok(false)),
            ("[a-ζ]*", "α", Ok(true)),
            ("*[a-ζ]", "A", Ok(false)),
            ("a?b", "a/b", Ok(false)),
            ("a*b", "a/b", Ok(false)),
            ("[\\]a]", "]", Ok(true)),
            ("[\\-]", "-", Ok(true)),
            ("[x\\-]", "x", Ok(true)),
            ("[x\\-]", "-", Ok(true)),
            ("[x\\-]", "z", Ok(false)),
            ("[\\-x]", "x", Ok(true)),
            ("[\\-x]", "-", Ok(true)),
            ("[\\-x]", "a", Ok(false)),
            ("[]a]", "]", Err(BadPattern)),
            ("[-]", "-", Err(BadPattern)),
            ("[x-]", "x", Err(BadPattern)),
            ("[x-]", "-", Err(BadPattern)),
            ("[x-]", "z", Err(BadPattern)),
            ("[-x]", "x", Err(BadPattern)),
            ("[-x]", "-", Err(BadPattern)),
            ("[-x]", "a", Err(BadPattern)),
            ("\\", "a", Err(BadPattern)),
            ("[a-b-c]", "a", Err(BadPattern)),
            ("[", "a", Err(BadPattern)),
            ("[^", "a", Err(BadPattern)),
            ("[^bc", "a", Err(BadPattern)),
            ("a[", "a", Err(BadPattern)),
            ("a[", "ab", Err(BadPattern)),
            ("a[", "x", Err(BadPattern)),
            ("a/b[", "x", Err(BadPattern)),
            ("*x", "xxx", Ok(true)),
            // Beyond Go's table: what the endpoint relies on.
            ("*.txt", ".hidden.txt", Ok(true)),
            ("{a,b}", "a", Ok(false)),
            ("{a,b}", "{a,b}", Ok(true)),
            ("**", "abc", Ok(true)),
            ("*", "/", Ok(false)),
            ("*", ".", Ok(true)),
            ("x[", "ab", Err(BadPattern)),
            ("*.py", "main.py", Ok(true)),
            ("*.py", "main.pyc", Ok(false)),
            ("d?ta", "däta", Ok(true)),
        ];
        for (pattern, name, want) in table {
            assert_eq!(&go_match(pattern.as_bytes(), name.as_bytes()), want, "Match({pattern:?}, {name:?})");
            assert_eq!(glob_match(pattern.as_bytes(), name.as_bytes()), *want == Ok(true));
            if !name.contains('/') {
                assert_eq!(
                    Glob::new(pattern.as_bytes()).matches(name.as_bytes()),
                    *want == Ok(true),
                    "{pattern:?}"
                );
            }
        }
        // Invalid UTF-8 in a name is one U+FFFD per byte for `?` and classes.
        assert!(glob_match(b"a??b", b"a\xff\xfeb"));
        assert!(glob_match(b"a[^x]b", b"a\xffb"));
        assert!(!glob_match(b"a?b", b"a\xff\xfeb"));
    }

    #[test]
    fn compiled_glob_agrees_with_match_on_random_input() {
        // Patterns and names over a small alphabet with every special character, so literal
        // runs, escapes, classes and stars meet at every position.
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n) as usize
        };
        let specials: &[&[u8]] = &[b"*", b"?", b"[ab]", b"[^a]", b"[a-c]", b"\\a", b"\\*", b"[", b"\\", b"]"];
        for _ in 0..200_000 {
            let mut pattern = Vec::new();
            for _ in 0..next(6) {
                match next(3) {
                    0 => pattern.extend_from_slice(specials[next(specials.len() as u64)]),
                    _ => pattern.push(b"ab.c"[next(4)]),
                }
            }
            let name: Vec<u8> = (0..next(7)).map(|_| b"ab.c*\xff"[next(6)]).collect();
            assert_eq!(
                Glob::new(&pattern).matches(&name),
                glob_match(&pattern, &name),
                "pattern {:?} name {:?}",
                String::from_utf8_lossy(&pattern),
                String::from_utf8_lossy(&name)
            );
        }
        let glob = Glob::new(b"f0*.t\\xt");
        assert_eq!((&glob.prefix[..], &glob.suffix[..]), (&b"f0"[..], &b".txt"[..]));
        assert!(glob.matches(b"f00.txt") && !glob.matches(b"f00.txt2") && !glob.matches(b"g0.txt"));
    }

    #[test]
    fn display_paths() {
        for (root, rel, want) in [
            (".", "a/b.txt", "a/b.txt"),
            ("./", "a", "a"),
            ("/x/", "a.txt", "/x/a.txt"),
            ("/", "etc", "/etc"),
            ("../d/./e/", "f", "../d/e/f"),
            ("-", "f", "-/f"),
        ] {
            let job: Job<String> = Job::new(root.as_bytes(), Path::new(root), Limits::SEARCH);
            assert_eq!(job.display(rel.as_bytes()), want, "root {root:?}");
        }
        let job: Job<String> = Job::new(b".", Path::new("."), Limits::SEARCH);
        assert_eq!(job.display(b"bad\xffname"), "bad\u{FFFD}name");
    }

    // ------------------------------------------------------------------------------- walks

    /// A find rooted at `root` as given (the tests' roots are absolute).
    fn find_in(root: &str, pattern: &str, limits: Limits) -> Found<Match> {
        find(root.as_bytes(), Path::new(root), pattern.as_bytes(), limits)
    }

    fn search_in(root: &str, pattern: &str, limits: Limits) -> Found<String> {
        search(root.as_bytes(), Path::new(root), pattern.as_bytes(), limits)
    }

    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    fn write(path: &Path, data: &[u8]) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, data).unwrap();
    }

    /// a/b.txt, a/c/d.txt, a.txt, b.bin (binary), e.txt -> a.txt (link), l -> a (dir link),
    /// z/empty, ünï/çødé.txt
    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(&d.join("a/b.txt"), b"one needle\nno\n");
        write(&d.join("a/c/d.txt"), b"needle\r\nneedle\r\n");
        write(&d.join("a.txt"), b"x\nneedle here\n");
        write(&d.join("b.bin"), b"needle\0\n");
        write(&d.join("z/empty"), b"");
        write(&d.join("\u{fc}n\u{ef}/\u{e7}\u{f8}d\u{e9}.txt"), "日本 needle ✓\n".as_bytes());
        write(&d.join("a-.txt"), b"needle");
        symlink(d.join("a.txt"), d.join("e.txt")).unwrap();
        symlink(d.join("a"), d.join("l")).unwrap();
        symlink(d.join("missing"), d.join("dangling.txt")).unwrap();
        dir
    }

    fn root_of(dir: &tempfile::TempDir) -> String {
        dir.path().to_str().unwrap().to_owned()
    }

    #[test]
    fn find_walks_in_lexical_order_without_links_or_binaries() {
        let dir = tree();
        let root = root_of(&dir);
        let found = find_in(&root, "needle", Limits::FIND);
        assert!(!found.truncated);
        let got: Vec<(String, u64, String)> =
            found.items.into_iter().map(|m| (m.file.to_string(), m.line, m.content)).collect();
        let p = |rel: &str| format!("{root}/{rel}");
        assert_eq!(
            got,
            vec![
                (p("a/b.txt"), 1, "one needle".into()),
                (p("a/c/d.txt"), 1, "needle".into()),
                (p("a/c/d.txt"), 2, "needle".into()),
                (p("a-.txt"), 1, "needle".into()),
                (p("a.txt"), 2, "needle here".into()),
                (p("\u{fc}n\u{ef}/\u{e7}\u{f8}d\u{e9}.txt"), 1, "日本 needle ✓".into()),
            ]
        );
        // Same answer every time despite the parallel walk.
        for _ in 0..5 {
            assert_eq!(find_in(&root, "needle", Limits::FIND).items.len(), 6);
        }
    }

    #[test]
    fn find_root_forms() {
        let dir = tree();
        let root = root_of(&dir);
        // Trailing slash and dots: children are cleaned joins.
        let found = find_in(&format!("{root}/./a/"), "needle", Limits::FIND);
        let files: Vec<String> = found.items.iter().map(|m| m.file.to_string()).collect();
        assert_eq!(
            files,
            vec![format!("{root}/a/b.txt"), format!("{root}/a/c/d.txt"), format!("{root}/a/c/d.txt")]
        );
        // A file root keeps the string as given.
        let given = format!("{root}//a.txt");
        let found = find_in(&given, "needle", Limits::FIND);
        assert_eq!(
            found.items,
            vec![Match { file: given.as_str().into(), line: 2, content: "needle here".into() }]
        );
        // A symlinked root is not followed (to a file or to a directory), a missing one is empty.
        assert!(find_in(&format!("{root}/e.txt"), "needle", Limits::FIND).items.is_empty());
        assert!(find_in(&format!("{root}/l"), "needle", Limits::FIND).items.is_empty());
        assert!(find_in(&format!("{root}/nope"), "needle", Limits::FIND).items.is_empty());
        // ... unless a trailing slash makes the kernel resolve it, as for the reference.
        assert_eq!(find_in(&format!("{root}/l/"), "needle", Limits::FIND).items.len(), 3);
        assert!(find_in(&root, "nee\ndle", Limits::FIND).items.is_empty());
    }

    #[test]
    fn search_reports_base_name_matches_of_every_kind() {
        let dir = tree();
        let root = root_of(&dir);
        let p = |rel: &str| format!("{root}/{rel}");
        let found = search_in(&root, "*.txt", Limits::SEARCH);
        assert_eq!(
            found.items,
            vec![
                p("a/b.txt"),
                p("a/c/d.txt"),
                p("a-.txt"),
                p("a.txt"),
                p("dangling.txt"),
                p("e.txt"),
                p("\u{fc}n\u{ef}/\u{e7}\u{f8}d\u{e9}.txt")
            ]
        );
        // Directories, links and the root itself.
        assert_eq!(search_in(&root, "[al]", Limits::SEARCH).items, vec![p("a"), p("l")]);
        let base = std::str::from_utf8(fspath::base(root.as_bytes())).unwrap().to_owned();
        assert_eq!(search_in(&root, &base, Limits::SEARCH).items, vec![root.clone()]);
        assert_eq!(search_in(&format!("{root}/"), &base, Limits::SEARCH).items, vec![format!("{root}/")]);
        assert_eq!(search_in(&format!("{root}/l"), "l", Limits::SEARCH).items, vec![p("l")]);
        assert_eq!(search_in(&format!("{root}/a.txt"), "*.txt", Limits::SEARCH).items, vec![p("a.txt")]);
        assert!(search_in(&format!("{root}/nope"), "*", Limits::SEARCH).items.is_empty());
        assert!(search_in(&root, "[", Limits::SEARCH).items.is_empty());
        assert!(search_in(&root, "*.TXT", Limits::SEARCH).items.is_empty());
    }

    #[test]
    fn results_are_bounded_to_the_first_in_walk_order() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..60 {
            write(&dir.path().join(format!("d{}/f{:02}", i % 3, i)), b"hit\nhit\nhit\n");
        }
        let root = root_of(&dir);
        let full = find_in(&root, "hit", Limits::FIND);
        assert_eq!((full.items.len(), full.truncated), (180, false));
        for items in [1, 2, 7, 50] {
            let cut = find_in(&root, "hit", Limits { items, bytes: usize::MAX });
            assert!(cut.truncated);
            assert_eq!(cut.items, full.items[..items], "items {items}");
        }
        let one = full.items[0].file.len() + 3;
        let cut = find_in(&root, "hit", Limits { items: usize::MAX, bytes: 4 * one });
        assert_eq!((cut.items.len(), cut.truncated), (4, true));

        let all = search_in(&root, "*", Limits::SEARCH);
        assert_eq!(all.items.len(), 64);
        for items in [1, 5, 33] {
            let cut = search_in(&root, "*", Limits { items, bytes: usize::MAX });
            assert_eq!((&cut.items[..], cut.truncated), (&all.items[..items], true));
        }
    }

    #[test]
    fn one_file_with_more_matches_than_the_bound_is_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("many.txt");
        write(&file, "hit\n".repeat(105).as_bytes());
        let root = root_of(&dir);
        // The file as the root, and inside a tree.
        for r in [file.to_str().unwrap().to_owned(), root] {
            let cut = find_in(&r, "hit", Limits { items: 100, bytes: usize::MAX });
            assert_eq!((cut.items.len(), cut.truncated), (100, true), "{r}");
            assert_eq!(cut.items[99].line, 100);
            let exact = find_in(&r, "hit", Limits { items: 105, bytes: usize::MAX });
            assert_eq!(
                (exact.items.len(), exact.truncated),
                (105, false),
                "{r}: exactly the bound is no cut"
            );
            let one = cut.items[0].file.len() + 3;
            let cut = find_in(&r, "hit", Limits { items: usize::MAX, bytes: 10 * one });
            assert_eq!((cut.items.len(), cut.truncated), (10, true), "{r}");
            let exact = find_in(&r, "hit", Limits { items: usize::MAX, bytes: 105 * one });
            assert_eq!((exact.items.len(), exact.truncated), (105, false), "{r}");
        }
    }

    #[test]
    fn raw_bytes_in_names_and_patterns() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join(OsStr::from_bytes(b"d\xff"));
        write(&sub.join(OsStr::from_bytes(b"f\xfe.txt")), b"a \xfe\xff b\nplain\n");
        let raw_root = [dir.path().as_os_str().as_bytes(), b"/d\xff"].concat();
        let fs_root = Path::new(OsStr::from_bytes(&raw_root));
        let shown = format!("{}/d\u{FFFD}", dir.path().display());
        let found = find(&raw_root, fs_root, b"\xfe\xff", Limits::FIND);
        assert_eq!(found.items.len(), 1, "{:?}", found.items);
        assert_eq!(&*found.items[0].file, format!("{shown}/f\u{FFFD}.txt"));
        assert_eq!((found.items[0].line, found.items[0].content.as_str()), (1, "a \u{FFFD}\u{FFFD} b"));
        assert!(find(&raw_root, fs_root, b"\xfe\xfe", Limits::FIND).items.is_empty());
        let found = search(&raw_root, fs_root, b"f\xfe.txt", Limits::SEARCH);
        assert_eq!(found.items, vec![format!("{shown}/f\u{FFFD}.txt")]);
        // The root itself matches by its raw base name.
        assert_eq!(search(&raw_root, fs_root, b"d\xff", Limits::SEARCH).items, vec![shown]);
    }

    /// A visitor that removes the directory `gone` while its parent is listed, and records
    /// what the walk then says about each directory.
    struct Vanishing {
        root: PathBuf,
        listings: Mutex<Vec<(Vec<u8>, bool, bool)>>,
    }

    impl walk::Visitor for Vanishing {
        type Local = ();
        type Carry = bool;

        fn local(&self) {}
        fn finish(&self, _: ()) {}
        fn beyond(&self, _: &[u8]) -> bool {
            false
        }
        fn listing(&self, _: &mut (), rel: &[u8], carry: bool, opened: bool) {
            self.listings.lock().unwrap().push((rel.to_vec(), carry, opened));
        }
        fn entry(&self, _: &mut (), dir_rel: &[u8], name: &[u8], kind: Kind) -> Option<bool> {
            if name == b"gone" {
                fs::remove_dir(self.root.join("gone")).unwrap();
            }
            (kind == Kind::Dir).then(|| join_rel(dir_rel, name) == b"gone")
        }
        fn reads_files(&self) -> bool {
            false
        }
        fn file(&self, _: &mut (), _: BorrowedFd<'_>, _: &[u8], _: &CStr) {}
    }

    #[test]
    fn a_directory_that_cannot_be_opened_is_reported_to_the_visitor() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("gone")).unwrap();
        fs::create_dir(dir.path().join("kept")).unwrap();
        for threads in [1, 2] {
            fs::create_dir_all(dir.path().join("gone")).unwrap();
            let v = Vanishing { root: dir.path().to_path_buf(), listings: Mutex::new(Vec::new()) };
            walk::walk(dir.path(), &v, false, threads);
            let mut got = v.listings.into_inner().unwrap();
            got.sort();
            assert_eq!(
                got,
                vec![
                    (b"".to_vec(), false, true),
                    (b"gone".to_vec(), true, false),
                    (b"kept".to_vec(), false, true)
                ]
            );
        }
        // A root that cannot be opened is one failed listing.
        let v = Vanishing { root: dir.path().join("none"), listings: Mutex::new(Vec::new()) };
        walk::walk(&dir.path().join("none"), &v, true, 2);
        assert_eq!(v.listings.into_inner().unwrap(), vec![(b"".to_vec(), true, false)]);
    }

    #[test]
    fn a_directory_that_cannot_be_listed_is_not_reported_by_search() {
        let job: Job<String> = Job::new(b"/r", Path::new("/r"), Limits::SEARCH);
        let searcher = Searcher { job: &job, glob: Glob::new(b"*") };
        let hit =
            |name: &str| Hit { key: Arc::from(name.as_bytes()), seq: 0, bytes: 1, value: name.to_owned() };
        let mut batch = Vec::new();
        searcher.listing(&mut batch, b"a", Some(hit("a")), false);
        searcher.listing(&mut batch, b"b", Some(hit("b")), true);
        searcher.listing(&mut batch, b"c", None, true);
        searcher.finish(batch);
        assert_eq!(job.collector.finish().items, vec!["b".to_owned()]);
    }

    #[test]
    fn large_flat_directories_are_shared_out_and_sorted_back() {
        // More files than one unit of work holds, so several threads read the same directory.
        let dir = tempfile::tempdir().unwrap();
        for i in 0..500 {
            let body = if i % 7 == 0 { format!("x\nhit {i}\n") } else { "nothing\n".to_owned() };
            write(&dir.path().join(format!("f{i:03}")), body.as_bytes());
        }
        let root = root_of(&dir);
        let found = find_in(&root, "hit", Limits::FIND);
        let want: Vec<(String, u64, String)> = (0..500)
            .filter(|i| i % 7 == 0)
            .map(|i| (format!("{root}/f{i:03}"), 2, format!("hit {i}")))
            .collect();
        let got: Vec<(String, u64, String)> =
            found.items.into_iter().map(|m| (m.file.to_string(), m.line, m.content)).collect();
        assert_eq!(got, want);
        let names = search_in(&root, "f*7", Limits::SEARCH).items;
        let want: Vec<String> = (0..500).filter(|i| i % 10 == 7).map(|i| format!("{root}/f{i:03}")).collect();
        assert_eq!(names, want);
    }
}
