//! The daemon's log file, rotated by size.
//!
//! Behaves like the reference daemon's rotating logger: when a write would take the file past
//! `max_size_mb`, the file is renamed to `<stem>-YYYY-MM-DDTHH-MM-SS.mmm<.ext>` (local time) and a
//! fresh one is started. Compressing that backup and pruning old ones happen on a background
//! thread, so a log call never waits on gzip or on a directory scan.

use std::ffi::{OsStr, OsString};
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, mpsc};
use std::thread;

use jiff::civil::DateTime;
use jiff::{SignedDuration, Span, Zoned};

use crate::config::LogFileConfig;

const MIB: u64 = 1024 * 1024;
const STAMP_FORMAT: &str = "%Y-%m-%dT%H-%M-%S%.3f";

/// A log file that rotates itself by size. Share it by reference (or in an `Arc`): writes go
/// through `&RotatingFile`, serialised by an internal lock, so each write lands whole.
pub struct RotatingFile {
    inner: Mutex<Inner>,
}

struct Inner {
    path: PathBuf,
    file: File,
    size: u64,
    limit: u64,
    backups: Backups,
    /// Started on the first rotation: most daemons never fill a file, and need no extra thread.
    mill: Option<mpsc::Sender<PathBuf>>,
    /// Set while rotation keeps failing, so the failure is reported once and not on every write.
    rotation_failing: bool,
    /// Stamp of the last backup made, so the next one sorts after it even when an older backup
    /// was pruned and its name became free again.
    last_stamp: Option<DateTime>,
}

/// Opens (or creates) the log file described by `cfg`, creating its directory if needed.
pub fn open(cfg: &LogFileConfig) -> io::Result<RotatingFile> {
    RotatingFile::open(cfg)
}

impl RotatingFile {
    /// Opens (or creates) the log file described by `cfg`, creating its directory if needed.
    pub fn open(cfg: &LogFileConfig) -> io::Result<Self> {
        Self::open_with_limit(cfg, cfg.max_size_mb.saturating_mul(MIB))
    }

    /// Like [`RotatingFile::open`] with the size limit in bytes, so tests can rotate small files.
    pub(crate) fn open_with_limit(cfg: &LogFileConfig, limit: u64) -> io::Result<Self> {
        let file = open_log(&cfg.path)?;
        let size = file.metadata()?.len();
        let inner = Inner {
            path: cfg.path.clone(),
            file,
            size,
            limit,
            backups: Backups::new(cfg),
            mill: None,
            rotation_failing: false,
            last_stamp: None,
        };
        Ok(Self { inner: Mutex::new(inner) })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves the file itself intact; losing the log for
        // the rest of the daemon's life would be worse than carrying on.
        toolbox_envelope::sync::lock(&self.inner)
    }
}

impl Write for &RotatingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.lock().write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.lock().file.flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RotatingFile {
    type Writer = &'a RotatingFile;

    fn make_writer(&'a self) -> Self::Writer {
        self
    }
}

impl Inner {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let len = buf.len() as u64;
        // An empty file is never rotated: a write bigger than the limit goes whole into a fresh
        // file rather than leaving an empty backup behind.
        if self.size > 0 && self.size.saturating_add(len) > self.limit {
            match self.rotate() {
                Ok(()) => self.rotation_failing = false,
                Err(e) => {
                    if !self.rotation_failing {
                        report(format_args!("cannot rotate {}: {e}", self.path.display()));
                    }
                    self.rotation_failing = true;
                }
            }
        }
        // All or nothing: a short write would let the caller's retry of the rest trigger a
        // rotation and split one log line across two files.
        self.file.write_all(buf)?;
        self.size += len;
        Ok(buf.len())
    }

    fn rotate(&mut self) -> io::Result<()> {
        let mut at = Zoned::now().datetime();
        if let Some(next) = self.last_stamp.and_then(|l| l.checked_add(SignedDuration::from_millis(1)).ok()) {
            at = at.max(next);
        }
        let backup = self.backups.free_name(at)?;
        self.last_stamp = self.backups.parse(backup.file_name().unwrap_or_default());
        let renamed = match fs::rename(&self.path, &backup) {
            Ok(()) => true,
            // Someone removed the file under us: there is nothing to keep, only a new file to start.
            Err(e) if e.kind() == io::ErrorKind::NotFound && !self.path.exists() => false,
            Err(e) => return Err(e),
        };
        // On failure the old handle stays in use (now under the backup's name), so nothing is lost,
        // and the next write retries.
        self.file = open_log(&self.path)?;
        self.size = 0;
        if renamed {
            self.send_to_mill(backup);
        }
        Ok(())
    }

    fn send_to_mill(&mut self, backup: PathBuf) {
        let backup = match &self.mill {
            Some(tx) => match tx.send(backup) {
                Ok(()) => return,
                // The thread is gone (it can only have panicked): start another.
                Err(mpsc::SendError(backup)) => backup,
            },
            None => backup,
        };
        let (tx, rx) = mpsc::channel::<PathBuf>();
        let backups = self.backups.clone();
        let spawned = thread::Builder::new().name("logfile-mill".into()).spawn(move || {
            // One thread handles rotations in order, so a prune never races a compression.
            for backup in rx {
                backups.mill(&backup);
            }
        });
        match spawned {
            Ok(_) => {
                let _ = tx.send(backup);
                self.mill = Some(tx);
            }
            // Without a thread, do the work here: a slow log call beats unbounded backups.
            Err(_) => self.backups.mill(&backup),
        }
    }
}

/// Where backups live, how they are named, and which of them to keep.
#[derive(Clone)]
struct Backups {
    dir: PathBuf,
    stem: OsString,
    ext: OsString,
    max_backups: usize,
    max_age_days: u64,
    compress: bool,
}

impl Backups {
    fn new(cfg: &LogFileConfig) -> Self {
        let path = &cfg.path;
        let mut ext = OsString::new();
        if let Some(e) = path.extension() {
            ext.push(".");
            ext.push(e);
        }
        Self {
            dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
            stem: path.file_stem().unwrap_or_default().to_owned(),
            ext,
            max_backups: cfg.max_backups,
            max_age_days: cfg.max_age_days,
            compress: cfg.compress,
        }
    }

    fn name(&self, at: DateTime) -> PathBuf {
        let mut name = self.stem.clone();
        name.push("-");
        name.push(at.strftime(STAMP_FORMAT).to_string());
        name.push(&self.ext);
        self.dir.join(name)
    }

    /// The backup name for `at`, moved on by a millisecond at a time past names already taken
    /// (plain or compressed): two rotations in one millisecond must not overwrite a backup, and
    /// keeping the pattern intact keeps the newer backup sorting after the older.
    fn free_name(&self, mut at: DateTime) -> io::Result<PathBuf> {
        for _ in 0..1000 {
            let path = self.name(at);
            if !path.exists() && !gz_path(&path).exists() {
                return Ok(path);
            }
            at = at.checked_add(SignedDuration::from_millis(1)).map_err(io::Error::other)?;
        }
        Err(io::Error::new(io::ErrorKind::AlreadyExists, "no free backup name"))
    }

    /// The time stamped in `file_name` if it is one of our backups, compressed or not.
    fn parse(&self, file_name: &OsStr) -> Option<DateTime> {
        let name = file_name.as_bytes();
        let name = name.strip_suffix(b".gz").unwrap_or(name);
        let stamp =
            name.strip_prefix(self.stem.as_bytes())?.strip_prefix(b"-")?.strip_suffix(self.ext.as_bytes())?;
        let stamp = std::str::from_utf8(stamp).ok()?;
        let at = DateTime::strptime(STAMP_FORMAT, stamp).ok()?;
        // strptime is lenient about widths; only names we would have produced count as backups.
        (at.strftime(STAMP_FORMAT).to_string() == stamp).then_some(at)
    }

    /// Post-rotation work for `backup`, off the writing thread. Errors go to stderr: the log
    /// file is the thing in trouble, and the next rotation tries again.
    fn mill(&self, backup: &Path) {
        if self.compress
            && let Err(e) = compress(backup)
        {
            report(format_args!("cannot compress {}: {e}", backup.display()));
        }
        if let Err(e) = self.prune() {
            report(format_args!("cannot prune backups in {}: {e}", self.dir.display()));
        }
    }

    /// Deletes backups beyond the newest `max_backups` and those older than `max_age_days`.
    /// Zero means no limit, as in the reference.
    fn prune(&self) -> io::Result<()> {
        let dir = if self.dir.as_os_str().is_empty() { Path::new(".") } else { &self.dir };
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            // The directory went away with everything in it: nothing left to prune.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let mut found = Vec::new();
        for entry in entries {
            let entry = entry?;
            if let Some(at) = self.parse(&entry.file_name()) {
                found.push((at, entry.path()));
            }
        }
        found.sort_by_key(|(at, _)| std::cmp::Reverse(*at));

        let cutoff = (self.max_age_days > 0)
            .then(|| {
                let days = Span::new().try_days(i64::try_from(self.max_age_days).ok()?).ok()?;
                Zoned::now().checked_sub(days).ok().map(|z| z.datetime())
            })
            .flatten();
        // A backup caught mid-compression has two files with the same stamp; they count once.
        let mut kept = 0;
        let mut previous = None;
        for (at, path) in found {
            if previous != Some(at) {
                kept += 1;
                previous = Some(at);
            }
            let too_many = self.max_backups > 0 && kept > self.max_backups;
            let too_old = cutoff.is_some_and(|cutoff| at < cutoff);
            if too_many || too_old {
                match fs::remove_file(&path) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
        }
        Ok(())
    }
}

fn gz_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".gz");
    PathBuf::from(name)
}

/// Gzips `path` to `path.gz` and removes the original only once the copy is complete, so a
/// failure or crash part way leaves the uncompressed backup in place.
fn compress(path: &Path) -> io::Result<()> {
    let gz = gz_path(path);
    let result = (|| {
        let mut src = File::open(path)?;
        let dst = OpenOptions::new().write(true).create(true).truncate(true).mode(0o644).open(&gz)?;
        let mut enc = flate2::write::GzEncoder::new(dst, flate2::Compression::default());
        io::copy(&mut src, &mut enc)?;
        enc.finish()?.sync_all()
    })();
    match result {
        Ok(()) => fs::remove_file(path),
        Err(e) => {
            let _ = fs::remove_file(&gz);
            Err(e)
        }
    }
}

fn open_log(path: &Path) -> io::Result<File> {
    let with_path = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        DirBuilder::new().recursive(true).mode(0o755).create(dir).map_err(with_path)?;
    }
    OpenOptions::new().append(true).create(true).mode(0o644).open(path).map_err(with_path)
}

/// Problems with the log file itself can only go to stderr; a failure there is ignored rather than
/// allowed to panic.
fn report(msg: std::fmt::Arguments<'_>) {
    let _ = writeln!(io::stderr(), "logfile: {msg}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    fn config(path: PathBuf) -> LogFileConfig {
        LogFileConfig { path, max_size_mb: 1, max_backups: 100, max_age_days: 0, compress: false }
    }

    /// Backups of `cfg.path` in its directory, oldest first, with their names.
    fn backups(cfg: &LogFileConfig) -> Vec<PathBuf> {
        let b = Backups::new(cfg);
        let mut found: Vec<_> = fs::read_dir(&b.dir)
            .unwrap()
            .map(|e| e.unwrap())
            .filter_map(|e| b.parse(&e.file_name()).map(|at| (at, e.path())))
            .collect();
        found.sort();
        found.into_iter().map(|(_, p)| p).collect()
    }

    /// Polls for the mill thread's work instead of sleeping a fixed time.
    fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            thread::sleep(Duration::from_millis(5));
        }
    }

    fn mode_of(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    /// The process umask, read without changing it (`umask(2)` can only set it).
    fn umask() -> u32 {
        let status = fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find_map(|l| l.strip_prefix("Umask:")).unwrap();
        u32::from_str_radix(line.trim(), 8).unwrap()
    }

    fn write(file: &RotatingFile, data: &[u8]) {
        let mut w = file;
        assert_eq!(w.write(data).unwrap(), data.len());
    }

    #[test]
    fn appends_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path().join("d.log"));
        let file = open(&cfg).unwrap();
        write(&file, b"one\n");
        drop(file);
        let file = open(&cfg).unwrap();
        write(&file, b"two\n");
        assert_eq!(fs::read(&cfg.path).unwrap(), b"one\ntwo\n");
        assert_eq!(mode_of(&cfg.path), 0o644 & !umask());
    }

    #[test]
    fn reopened_file_counts_existing_size_towards_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path().join("d.log"));
        fs::write(&cfg.path, b"0123456789").unwrap();
        let file = RotatingFile::open_with_limit(&cfg, 12).unwrap();
        write(&file, b"abc");
        assert_eq!(fs::read(&cfg.path).unwrap(), b"abc");
        assert_eq!(fs::read(&backups(&cfg)[0]).unwrap(), b"0123456789");
    }

    #[test]
    fn creates_parent_directory() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path().join("a/b/d.log"));
        let file = open(&cfg).unwrap();
        write(&file, b"x");
        assert_eq!(fs::read(&cfg.path).unwrap(), b"x");
        assert_eq!(mode_of(&dir.path().join("a/b")), 0o755 & !umask());
    }

    #[test]
    fn open_fails_when_the_path_is_unusable() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("plain"), b"").unwrap();
        let err = open(&config(dir.path().join("plain/d.log"))).err().expect("open must fail");
        assert!(err.to_string().contains("plain/d.log"), "{err}");
    }

    #[test]
    fn rotates_at_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path().join("daytona-daemon.log"));
        let file = RotatingFile::open_with_limit(&cfg, 10).unwrap();
        write(&file, b"12345");
        write(&file, b"67890");
        assert!(backups(&cfg).is_empty(), "exactly at the limit is not over it");
        write(&file, b"abc");

        let found = backups(&cfg);
        assert_eq!(found.len(), 1);
        assert_eq!(fs::read(&found[0]).unwrap(), b"1234567890");
        assert_eq!(fs::read(&cfg.path).unwrap(), b"abc");

        let name = found[0].file_name().unwrap().to_str().unwrap();
        let stamp = name.strip_prefix("daytona-daemon-").unwrap().strip_suffix(".log").unwrap();
        assert_eq!(stamp.len(), "2026-11-28T16-04-31.123".len(), "{name}");
        let at = DateTime::strptime(STAMP_FORMAT, stamp).unwrap();
        let age = Zoned::now().datetime().duration_since(at);
        assert!(age.abs() < SignedDuration::from_secs(60), "stamp not local now: {name}");
    }

    #[test]
    fn backup_name_for_a_file_without_extension() {
        let cfg = config(PathBuf::from("/var/log/daemon"));
        let at = DateTime::constant(2026, 11, 28, 16, 4, 31, 123_000_000);
        let b = Backups::new(&cfg);
        assert_eq!(b.name(at), Path::new("/var/log/daemon-2026-11-28T16-04-31.123"));
        assert_eq!(b.parse(OsStr::new("daemon-2026-11-28T16-04-31.123.gz")), Some(at));
    }

    #[test]
    fn parse_accepts_only_our_names() {
        let b = Backups::new(&config(PathBuf::from("/tmp/daytona-daemon.log")));
        let at = DateTime::constant(2026, 11, 28, 16, 4, 31, 123_000_000);
        assert_eq!(b.name(at), Path::new("/tmp/daytona-daemon-2026-11-28T16-04-31.123.log"));
        for ok in
            ["daytona-daemon-2026-11-28T16-04-31.123.log", "daytona-daemon-2026-11-28T16-04-31.123.log.gz"]
        {
            assert_eq!(b.parse(OsStr::new(ok)), Some(at), "{ok}");
        }
        for not in [
            "daytona-daemon.log",
            "daytona-daemon-2026-11-28T16-04-31.log",
            "daytona-daemon-2026-11-28T16-04-31.123.txt",
            "daytona-daemon-2026-11-28T16-04-31.123.log.bak",
            "other-2026-11-28T16-04-31.123.log",
            "daytona-daemon-2026-11-28T16-04-31.1234.log",
        ] {
            assert_eq!(b.parse(OsStr::new(not)), None, "{not}");
        }
    }

    #[test]
    fn oversized_write_goes_whole_into_a_fresh_file() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path().join("d.log"));
        let file = RotatingFile::open_with_limit(&cfg, 10).unwrap();
        let big = [b'x'; 25];

        write(&file, &big);
        assert!(backups(&cfg).is_empty(), "an empty file is not rotated");
        assert_eq!(fs::read(&cfg.path).unwrap(), big);

        write(&file, b"small");
        write(&file, &big);
        let found = backups(&cfg);
        assert_eq!(found.len(), 2);
        assert_eq!(fs::read(&found[0]).unwrap(), big);
        assert_eq!(fs::read(&found[1]).unwrap(), b"small");
        assert_eq!(fs::read(&cfg.path).unwrap(), big);
    }

    #[test]
    fn compresses_backups_in_the_background() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = LogFileConfig { compress: true, ..config(dir.path().join("d.log")) };
        let file = RotatingFile::open_with_limit(&cfg, 100).unwrap();
        let data: Vec<u8> = (0..100u8).collect();
        write(&file, &data);
        write(&file, b"next");

        wait_until("compression", || {
            let found = backups(&cfg);
            found.len() == 1 && found[0].extension() == Some(OsStr::new("gz"))
        });
        let gz = &backups(&cfg)[0];
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(File::open(gz).unwrap()).read_to_end(&mut plain).unwrap();
        assert_eq!(plain, data);
        assert!(gz.to_str().unwrap().ends_with(".log.gz"), "{}", gz.display());
        assert_eq!(fs::read(&cfg.path).unwrap(), b"next");
    }

    #[test]
    fn prunes_to_max_backups_and_leaves_other_files_alone() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = LogFileConfig { max_backups: 2, ..config(dir.path().join("d.log")) };
        let unrelated = ["d.log.old", "other-2026-11-28T16-04-31.123.log", "d-notastamp.log"];
        for name in unrelated {
            fs::write(dir.path().join(name), b"keep").unwrap();
        }
        let file = RotatingFile::open_with_limit(&cfg, 4).unwrap();
        for i in 0..6 {
            write(&file, format!("log{i}").as_bytes());
        }

        wait_until("pruning", || backups(&cfg).len() == 2);
        let kept: Vec<_> = backups(&cfg).iter().map(|p| fs::read(p).unwrap()).collect();
        assert_eq!(kept, [b"log3", b"log4"]);
        assert_eq!(fs::read(&cfg.path).unwrap(), b"log5");
        for name in unrelated {
            assert!(dir.path().join(name).exists(), "{name} was touched");
        }
    }

    #[test]
    fn prunes_backups_older_than_max_age() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = LogFileConfig { max_age_days: 7, ..config(dir.path().join("d.log")) };
        let b = Backups::new(&cfg);
        let now = Zoned::now().datetime();
        let old = b.name(now.checked_sub(Span::new().days(8)).unwrap());
        let recent = b.name(now.checked_sub(Span::new().days(6)).unwrap());
        fs::write(&old, b"old").unwrap();
        fs::write(gz_path(&recent), b"recent").unwrap();

        let file = RotatingFile::open_with_limit(&cfg, 1).unwrap();
        write(&file, b"a");
        write(&file, b"b");

        wait_until("age pruning", || !old.exists());
        assert!(gz_path(&recent).exists());
        assert_eq!(backups(&cfg).len(), 2);
    }

    #[test]
    fn quick_rotations_never_overwrite_a_backup() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path().join("d.log"));
        let file = RotatingFile::open_with_limit(&cfg, 1).unwrap();
        let n = 20;
        for i in 0..n {
            write(&file, format!("{i}").as_bytes());
        }
        let kept: Vec<_> =
            backups(&cfg).iter().map(|p| String::from_utf8(fs::read(p).unwrap()).unwrap()).collect();
        let expected: Vec<_> = (0..n - 1).map(|i| i.to_string()).collect();
        assert_eq!(kept, expected);
    }

    #[test]
    fn taken_names_are_skipped_compressed_or_not() {
        let dir = tempfile::tempdir().unwrap();
        let b = Backups::new(&config(dir.path().join("d.log")));
        let at = DateTime::constant(2026, 11, 28, 16, 4, 31, 999_000_000);
        fs::write(b.name(at), b"").unwrap();
        let next = at.checked_add(SignedDuration::from_millis(1)).unwrap();
        fs::write(gz_path(&b.name(next)), b"").unwrap();
        let free = b.free_name(at).unwrap();
        assert_eq!(free, dir.path().join("d-2026-11-28T16-04-32.001.log"));
    }

    #[test]
    fn failed_rotation_keeps_writing_to_the_current_file() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path().join("d.log"));
        let file = RotatingFile::open_with_limit(&cfg, 1).unwrap();
        write(&file, b"a");
        // Point the backups at a directory that does not exist, so the rename fails.
        file.lock().backups.dir = dir.path().join("missing");
        write(&file, b"b");
        write(&file, b"c");
        assert_eq!(fs::read(&cfg.path).unwrap(), b"abc");
    }

    #[test]
    fn recovers_when_the_file_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path().join("d.log"));
        let file = RotatingFile::open_with_limit(&cfg, 1).unwrap();
        write(&file, b"a");
        fs::remove_file(&cfg.path).unwrap();
        write(&file, b"b");
        assert_eq!(fs::read(&cfg.path).unwrap(), b"b");
        assert!(backups(&cfg).is_empty());
    }

    #[test]
    fn works_as_a_tracing_writer() {
        use tracing_subscriber::layer::SubscriberExt;

        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path().join("d.log"));
        let file = Arc::new(open(&cfg).unwrap());
        // Both the owned file and an Arc of it are accepted.
        let _owned =
            tracing_subscriber::fmt::layer::<tracing_subscriber::Registry>().with_writer(open(&cfg).unwrap());
        let layer = tracing_subscriber::fmt::layer().with_ansi(false).with_writer(file.clone());
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || tracing::info!("hello from tracing"));
        let text = fs::read_to_string(&cfg.path).unwrap();
        assert!(text.contains("hello from tracing"), "{text}");
    }
}
