//! The parallel directory walk behind `files` search and find, and the git status pre-pass.
//!
//! Why not a general-purpose walker: a search touches every entry of the tree once, so the cost
//! per entry is the whole cost. This walk lists each directory with `getdents64` into a
//! per-thread buffer and hands the visitor borrowed names, so an entry that is not a result
//! costs no allocation at all (allocation is slow under the static build's allocator, and
//! contended between threads); files are opened with `openat` on their directory's descriptor,
//! so the kernel resolves one name instead of the whole path. The type of an entry comes from
//! `d_type` (`fstatat` without following links when a file system leaves it unknown), which is
//! what `lstat` would say: symbolic links are never followed.
//!
//! Work is shared through one stack of units (a directory to list, or a slice of a listed
//! directory's regular files to read, so one huge directory still spreads over every thread).
//! The calling thread always works; helper threads are started when work is waiting and the
//! system gives them, and a helper that cannot be started just leaves its share to the others,
//! so a sandbox at its thread limit gets a sequential walk instead of a failure or a wait. The
//! order in which entries are visited is not the walk order: callers sort their results.

use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};

/// Regular files of one directory read together as one unit of work. Small enough that a
/// directory of a few hundred files is shared between threads, large enough that the shared
/// stack's lock is not taken per file.
const FILE_CHUNK: usize = 32;
/// `getdents64` buffer per thread.
const DENTS_BUF: usize = 32 * 1024;

/// What an entry is, as `lstat` would say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    /// A symbolic link, device, FIFO or socket.
    Other,
}

/// What a walk does at each entry. Methods run on several threads at once.
pub trait Visitor: Sync {
    /// State of one walking thread (buffers, a batch of results).
    type Local;
    /// What a directory entry hands on to the listing of that directory.
    type Carry: Send;

    fn local(&self) -> Self::Local;
    /// Called once per thread when the walk is over.
    fn finish(&self, local: Self::Local);
    /// Whether the subtree at `rel` (relative to the root, `/`-separated, empty for the root)
    /// may be left out: everything in it lies past the results already kept.
    fn beyond(&self, rel: &[u8]) -> bool;
    /// The directory at `rel` is about to be listed (`opened`), or could not be opened.
    fn listing(&self, local: &mut Self::Local, rel: &[u8], carry: Self::Carry, opened: bool);
    /// One entry of the directory `dir_rel`; a `Some` for a directory walks into it.
    fn entry(&self, local: &mut Self::Local, dir_rel: &[u8], name: &[u8], kind: Kind) -> Option<Self::Carry>;
    /// Whether regular files are handed to [`Visitor::file`].
    fn reads_files(&self) -> bool;
    /// One regular file of the directory `dir` (at `dir_rel`).
    fn file(&self, local: &mut Self::Local, dir: BorrowedFd<'_>, dir_rel: &[u8], name: &CStr);
}

/// Walks the directory `root` with `threads` threads at most (the calling thread included),
/// starting with `carry` for the root itself. Returns once every entry has been visited.
pub fn walk<V: Visitor>(root: &Path, visitor: &V, carry: V::Carry, threads: usize) {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c_root) = CString::new(root.as_os_str().as_bytes()) else { return };
    // The root may be a link when the caller's path made the kernel resolve it (a trailing
    // `/`); below it nothing is followed.
    let fd = unsafe { libc::open(c_root.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC) };
    if fd < 0 {
        let mut local = visitor.local();
        visitor.listing(&mut local, b"", carry, false);
        visitor.finish(local);
        return;
    }
    let shared = Shared {
        root: unsafe { OwnedFd::from_raw_fd(fd) },
        state: Mutex::new(State { units: vec![Unit::Dir { rel: Vec::new(), carry }], busy: 0 }),
        wake: Condvar::new(),
    };
    let shared = &shared;
    std::thread::scope(|s| {
        // Helpers start once there is work for them (a small tree never pays for a thread).
        let mut helpers = 0;
        let mut spawn = |waiting: usize| {
            while helpers + 1 < threads && helpers < waiting {
                let spawned = std::thread::Builder::new()
                    .name("files-walk".into())
                    .spawn_scoped(s, move || work(shared, visitor, &mut |_| {}));
                match spawned {
                    Ok(_) => helpers += 1,
                    // Out of threads (a pids limit): the threads already there do the work.
                    Err(_) => helpers = threads,
                }
            }
        };
        work(shared, visitor, &mut spawn);
    });
}

struct Shared<C> {
    /// The root directory; units below it are opened relative to it.
    root: OwnedFd,
    state: Mutex<State<C>>,
    wake: Condvar,
}

struct State<C> {
    units: Vec<Unit<C>>,
    /// Threads processing a unit (which may push more).
    busy: usize,
}

enum Unit<C> {
    /// A directory to list, by its path relative to the root (empty for the root).
    Dir { rel: Vec<u8>, carry: C },
    /// Regular files of a listed directory: NUL-terminated names from `names[at..end]`.
    Files { dir: Arc<Listed>, at: usize, end: usize },
}

/// A listed directory whose regular files are still to be read.
struct Listed {
    fd: OwnedFd,
    rel: Vec<u8>,
    names: Vec<u8>,
}

/// One thread's loop: take units until none is left and no thread can make more. `spawn` is
/// told how many units wait besides the one taken.
fn work<V: Visitor>(shared: &Shared<V::Carry>, visitor: &V, spawn: &mut dyn FnMut(usize)) {
    let mut local = visitor.local();
    let mut dents = vec![0u8; DENTS_BUF];
    while let Some((unit, waiting)) = next(shared) {
        if waiting > 0 {
            spawn(waiting);
        }
        // Marks this thread idle again even if the visitor panics, so the others still end.
        let _busy = Busy(shared);
        match unit {
            Unit::Dir { rel, carry } => list(shared, visitor, &mut local, &mut dents, rel, carry),
            Unit::Files { dir, at, end } => read_files(visitor, &mut local, &dir, at, end),
        }
    }
    visitor.finish(local);
}

fn next<C>(shared: &Shared<C>) -> Option<(Unit<C>, usize)> {
    let mut state = toolbox_envelope::sync::lock(&shared.state);
    loop {
        if let Some(unit) = state.units.pop() {
            state.busy += 1;
            return Some((unit, state.units.len()));
        }
        if state.busy == 0 {
            return None;
        }
        state = shared.wake.wait(state).unwrap_or_else(|e| e.into_inner());
    }
}

struct Busy<'a, C>(&'a Shared<C>);

impl<C> Drop for Busy<'_, C> {
    fn drop(&mut self) {
        let mut state = toolbox_envelope::sync::lock(&self.0.state);
        state.busy -= 1;
        if state.busy == 0 && state.units.is_empty() {
            self.0.wake.notify_all();
        }
    }
}

fn push<C>(shared: &Shared<C>, units: impl Iterator<Item = Unit<C>>) {
    let mut state = toolbox_envelope::sync::lock(&shared.state);
    let before = state.units.len();
    state.units.extend(units);
    match state.units.len() - before {
        0 => {}
        1 => shared.wake.notify_one(),
        _ => shared.wake.notify_all(),
    }
}

/// Lists one directory: entries go to the visitor, subdirectories and slices of regular files
/// to the shared stack (files last, so they are taken first and the descriptor is soon closed).
fn list<V: Visitor>(
    shared: &Shared<V::Carry>,
    visitor: &V,
    local: &mut V::Local,
    dents: &mut [u8],
    rel: Vec<u8>,
    carry: V::Carry,
) {
    if visitor.beyond(&rel) {
        return;
    }
    let fd = if rel.is_empty() {
        open_at(shared.root.as_raw_fd(), c".", libc::O_DIRECTORY)
    } else {
        match CString::new(rel.clone()) {
            Ok(c) => open_at(shared.root.as_raw_fd(), &c, libc::O_DIRECTORY | libc::O_NOFOLLOW),
            Err(_) => None,
        }
    };
    let Some(fd) = fd else {
        visitor.listing(local, &rel, carry, false);
        return;
    };
    visitor.listing(local, &rel, carry, true);
    let reads_files = visitor.reads_files();
    let mut dirs = Vec::new();
    let mut names = Vec::new();
    let mut files = 0usize;
    // A read error ends the listing; what was read stands.
    while let Some(n) = getdents(fd.as_raw_fd(), dents) {
        let mut at = 0;
        while at < n {
            let rec = &dents[at..n];
            // The kernel writes whole records; a short or zero-length one would panic or loop.
            if rec.len() < 19 {
                break;
            }
            let reclen = usize::from(u16::from_ne_bytes([rec[16], rec[17]]));
            if reclen < 19 || reclen > rec.len() {
                break;
            }
            let d_type = rec[18];
            at += reclen;
            let Some(name) = rec.get(19..reclen).and_then(|r| CStr::from_bytes_until_nul(r).ok()) else {
                continue;
            };
            let bytes = name.to_bytes();
            if bytes == b"." || bytes == b".." {
                continue;
            }
            let kind = match d_type {
                libc::DT_REG => Kind::File,
                libc::DT_DIR => Kind::Dir,
                libc::DT_UNKNOWN => kind_at(fd.as_raw_fd(), name),
                _ => Kind::Other,
            };
            if let Some(carry) = visitor.entry(local, &rel, bytes, kind)
                && kind == Kind::Dir
            {
                let mut child = Vec::with_capacity(rel.len() + 1 + bytes.len());
                if !rel.is_empty() {
                    child.extend_from_slice(&rel);
                    child.push(b'/');
                }
                child.extend_from_slice(bytes);
                dirs.push(Unit::Dir { rel: child, carry });
            }
            if reads_files && kind == Kind::File {
                names.extend_from_slice(name.to_bytes_with_nul());
                files += 1;
            }
        }
    }
    let mut units = dirs;
    if files > 0 {
        let listed = Arc::new(Listed { fd, rel, names });
        let mut start = 0;
        let mut count = 0;
        for (i, &b) in listed.names.iter().enumerate() {
            if b == 0 {
                count += 1;
                if count == FILE_CHUNK {
                    units.push(Unit::Files { dir: listed.clone(), at: start, end: i + 1 });
                    start = i + 1;
                    count = 0;
                }
            }
        }
        if start < listed.names.len() {
            units.push(Unit::Files { dir: listed.clone(), at: start, end: listed.names.len() });
        }
    }
    push(shared, units.into_iter());
}

fn read_files<V: Visitor>(visitor: &V, local: &mut V::Local, dir: &Listed, at: usize, end: usize) {
    let fd = dir.fd.as_fd();
    for name in dir.names[at..end].split_inclusive(|&b| b == 0) {
        let Ok(name) = CStr::from_bytes_with_nul(name) else { continue };
        visitor.file(local, fd, &dir.rel, name);
    }
}

use std::os::fd::AsFd;

/// Opens `name` below the directory `dir` for reading.
fn open_at(dir: RawFd, name: &CStr, flags: libc::c_int) -> Option<OwnedFd> {
    let fd = unsafe { libc::openat(dir, name.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC | flags) };
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens the regular file `name` of the directory `dir` for reading, without following a link
/// (one that replaced the file since the listing fails to open), taking a terminal, or waiting
/// for a writer (a FIFO that replaced the file would otherwise block the open for ever;
/// O_NONBLOCK changes nothing for a regular file).
pub fn open_file(dir: BorrowedFd<'_>, name: &CStr) -> Option<std::fs::File> {
    open_at(dir.as_raw_fd(), name, libc::O_NOFOLLOW | libc::O_NOCTTY | libc::O_NONBLOCK)
        .map(std::fs::File::from)
}

/// Reads the next records of a directory into `buf`: their length, `None` at the end or on
/// an error.
fn getdents(fd: RawFd, buf: &mut [u8]) -> Option<usize> {
    loop {
        let n = unsafe { libc::syscall(libc::SYS_getdents64, fd, buf.as_mut_ptr(), buf.len()) };
        match n {
            n if n > 0 => return Some(n as usize),
            0 => return None,
            _ if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted => continue,
            _ => return None,
        }
    }
}

/// The type of `name` in `dir` when the listing did not say: `lstat`'s answer, `Other` when it
/// fails (the entry went away).
fn kind_at(dir: RawFd, name: &CStr) -> Kind {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    let rc = unsafe { libc::fstatat(dir, name.as_ptr(), st.as_mut_ptr(), libc::AT_SYMLINK_NOFOLLOW) };
    if rc != 0 {
        return Kind::Other;
    }
    match unsafe { st.assume_init() }.st_mode & libc::S_IFMT {
        libc::S_IFREG => Kind::File,
        libc::S_IFDIR => Kind::Dir,
        _ => Kind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_without_d_type_come_from_lstat() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), b"x").unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("d"), dir.path().join("l")).unwrap();
        let c = CString::new(dir.path().as_os_str().as_encoded_bytes()).unwrap();
        let fd = open_at(libc::AT_FDCWD, &c, libc::O_DIRECTORY).unwrap();
        let kind = |name: &CStr| kind_at(fd.as_raw_fd(), name);
        assert_eq!(
            (kind(c"f"), kind(c"d"), kind(c"l"), kind(c"missing")),
            (Kind::File, Kind::Dir, Kind::Other, Kind::Other)
        );
    }
}
