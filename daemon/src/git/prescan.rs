//! A quick pass over the index file and the work tree that finds which paths *might* have a
//! status, so libgit2 only has to look at those.
//!
//! libgit2's status reads and verifies the whole index, walks every tree of HEAD and `lstat`s
//! every file, several times slower than `git status`. Most of that is spent proving that
//! unchanged files are unchanged. This pass does that proof the way git does, from the index's
//! stat cache and its cache-tree, and returns the rest as candidates; libgit2 then computes the
//! real status of the candidates (and only of them), so every reported status is still
//! libgit2's. The pass must never miss a path libgit2 would report: whenever it meets something
//! it does not fully understand it answers [`Prescan::Unsure`] and the caller scans everything.

use std::collections::{HashMap, HashSet};
use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::walk::{self, Kind};

/// What the pass found.
#[derive(Debug, PartialEq, Eq)]
pub enum Prescan {
    /// The paths that may have a status, as literal path-list entries (`dir/` stands for
    /// everything below `dir`), and whether the index may differ from HEAD anywhere (when it
    /// does, the index side needs a full comparison).
    Candidates { paths: Vec<Vec<u8>>, staged_unknown: bool },
    /// Something this pass does not model (an index format detail, a case-insensitive
    /// repository...): scan everything.
    Unsure,
}

/// The fields of one index entry the pass needs.
struct Entry {
    path: Vec<u8>,
    ctime: (u32, u32),
    mtime: (u32, u32),
    ino: u32,
    mode: u32,
    uid: u32,
    gid: u32,
    size: u32,
    /// Assume-valid, a merge stage, or an extended flag (skip-worktree, intent-to-add).
    special: bool,
}

/// A parsed index: entries in index order and the root of its cache-tree when valid.
struct Index {
    entries: Vec<Entry>,
    root_tree: Option<[u8; 20]>,
}

const GITLINK: u32 = 0o160000;
/// Threads of the work-tree walk at most (git's preload-index uses up to 20).
const MAX_THREADS: usize = 8;

/// Runs the pass for the work tree `root` whose git directory is `git_dir`. `head_tree` is the
/// id of HEAD's tree (None: unborn HEAD), `ignore_case` the repository's core.ignorecase.
pub fn prescan(root: &Path, git_dir: &Path, head_tree: Option<[u8; 20]>, ignore_case: bool) -> Prescan {
    if ignore_case {
        return Prescan::Unsure;
    }
    let Some(head_tree) = head_tree else {
        return Prescan::Unsure;
    };
    let index_path = git_dir.join("index");
    let Ok(index_meta) = std::fs::metadata(&index_path) else {
        return Prescan::Unsure;
    };
    let Ok(bytes) = std::fs::read(&index_path) else {
        return Prescan::Unsure;
    };
    let Some(index) = parse(&bytes) else {
        return Prescan::Unsure;
    };
    // The index file's own modification time: an entry modified at or after it may have
    // changed without its size or time changing ("racily clean"), so it is a candidate.
    let index_mtime = (index_meta.mtime(), index_meta.mtime_nsec());
    let mut tracked: HashMap<&[u8], usize> = HashMap::with_capacity(index.entries.len());
    let mut dirs: HashSet<&[u8]> = HashSet::new();
    for (i, e) in index.entries.iter().enumerate() {
        tracked.insert(&e.path, i);
        let mut p: &[u8] = &e.path;
        while let Some(slash) = p.iter().rposition(|&b| b == b'/') {
            p = &p[..slash];
            if !dirs.insert(p) {
                break;
            }
        }
    }
    let pass = Pass {
        entries: &index.entries,
        tracked,
        dirs,
        index_mtime,
        clean: index.entries.iter().map(|_| AtomicBool::new(false)).collect(),
        found: Mutex::new(Vec::new()),
        root_unreadable: AtomicBool::new(false),
    };
    // As `git status` spreads its stat calls over threads, so does this walk (helpers start
    // only when a tree has enough directories to share).
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(MAX_THREADS);
    walk::walk(root, &pass, (), threads);
    if pass.root_unreadable.load(Ordering::Relaxed) {
        return Prescan::Unsure;
    }
    let mut paths = pass.found.into_inner().unwrap_or_else(|p| p.into_inner());
    // Every entry the walk did not prove unchanged: modified, deleted, below a directory that
    // is gone or unreadable, special, a submodule or a symbolic link.
    for (e, clean) in index.entries.iter().zip(&pass.clean) {
        if !clean.load(Ordering::Relaxed) {
            push_both(&mut paths, &e.path);
        }
    }
    // When most files are candidates anyway (a fresh checkout whose files all look racily
    // clean, say), one full scan costs less than a long path list.
    if paths.len() > index.entries.len() {
        return Prescan::Unsure;
    }
    // libgit2 matches directory and submodule candidates as patterns even with pathspec
    // matching off: a name it would read as a glob, a comment or a negation, or whose trailing
    // space it would strip, could drop a path a full status reports. Those scan everything.
    if paths.iter().any(|p| reads_as_pattern(p)) {
        return Prescan::Unsure;
    }
    let staged_unknown = index.root_tree != Some(head_tree);
    Prescan::Candidates { paths, staged_unknown }
}

/// Whether libgit2's pathspec parser would read `path` as something other than itself.
fn reads_as_pattern(path: &[u8]) -> bool {
    let bare = path.strip_suffix(b"/").unwrap_or(path);
    path.iter().any(|b| matches!(b, b'*' | b'?' | b'[' | b'\\'))
        || matches!(path.first(), Some(b'#' | b'!'))
        || bare.last().is_some_and(|b| b.is_ascii_whitespace())
}

/// The tracked paths whose file may differ from the index: gone, of another kind, with other
/// stat data, modified at or after the index was written, or special (see [`Entry`]).
///
/// Each file is looked up relative to its directory, opened once for all its entries (index
/// entries are sorted, so a directory's files are adjacent): the kernel then resolves one name
/// instead of the whole path each time.
/// The stat data of `name` in the directory `dir`, not following a final
/// symbolic link; None when it cannot be had.
fn lstat_at(dir: BorrowedFd<'_>, name: &CStr) -> Option<libc::stat> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `name` is NUL-terminated, `dir` an open descriptor, and `st` is written in full
    // by a successful call before it is read.
    let rc =
        unsafe { libc::fstatat(dir.as_raw_fd(), name.as_ptr(), st.as_mut_ptr(), libc::AT_SYMLINK_NOFOLLOW) };
    // SAFETY: rc == 0 means the kernel filled `st`.
    (rc == 0).then(|| unsafe { st.assume_init() })
}

/// A path both as a file and as a directory, so a file that became a directory (or the
/// reverse) is matched whatever libgit2 finds there.
fn push_both(paths: &mut Vec<Vec<u8>>, p: &[u8]) {
    paths.push(p.to_vec());
    let mut dir = p.to_vec();
    dir.push(b'/');
    paths.push(dir);
}

/// Whether the file's stat data is what the index recorded (the fields libgit2 compares, at
/// the 32-bit width the index stores; the executable bit only for regular files).
fn stat_matches(e: &Entry, m: &libc::stat) -> bool {
    let mode = m.st_mode;
    let kind_ok = match mode & libc::S_IFMT {
        libc::S_IFREG => e.mode & 0o170000 == 0o100000 && (e.mode & 0o100 == 0) == (mode & 0o100 == 0),
        libc::S_IFLNK => e.mode == 0o120000,
        _ => false,
    };
    kind_ok
        && e.mtime == (m.st_mtime as u32, m.st_mtime_nsec as u32)
        && e.ctime == (m.st_ctime as u32, m.st_ctime_nsec as u32)
        && e.ino == m.st_ino as u32
        && e.uid == m.st_uid
        && e.gid == m.st_gid
        && e.size == m.st_size as u32
}

/// Whether the entry was modified at or after the index was written.
fn racy(e: &Entry, index_mtime: (i64, i64)) -> bool {
    let (s, ns) = (i64::from(e.mtime.0), i64::from(e.mtime.1));
    (s, ns) >= index_mtime
}

/// The walk over the work tree: it lists the directories that hold tracked files, proves
/// tracked regular files unchanged from their stat data (`clean`), and collects every name that
/// is neither tracked nor a directory holding tracked files (an untracked file or directory,
/// ignored or not: libgit2 decides).
struct Pass<'a> {
    entries: &'a [Entry],
    /// Tracked paths and their entry's index.
    tracked: HashMap<&'a [u8], usize>,
    /// Directories holding tracked files.
    dirs: HashSet<&'a [u8]>,
    index_mtime: (i64, i64),
    clean: Vec<AtomicBool>,
    found: Mutex<Vec<Vec<u8>>>,
    root_unreadable: AtomicBool,
}

/// One walking thread's path buffer and findings.
struct Local {
    path: Vec<u8>,
    found: Vec<Vec<u8>>,
}

impl Local {
    fn join(&mut self, dir_rel: &[u8], name: &[u8]) -> &[u8] {
        self.path.clear();
        if !dir_rel.is_empty() {
            self.path.extend_from_slice(dir_rel);
            self.path.push(b'/');
        }
        self.path.extend_from_slice(name);
        &self.path
    }
}

impl walk::Visitor for Pass<'_> {
    type Local = Local;
    type Carry = ();

    fn local(&self) -> Local {
        Local { path: Vec::new(), found: Vec::new() }
    }

    fn finish(&self, local: Local) {
        toolbox_envelope::sync::lock(&self.found).extend(local.found);
    }

    fn beyond(&self, _rel: &[u8]) -> bool {
        false
    }

    fn listing(&self, local: &mut Local, rel: &[u8], _carry: (), opened: bool) {
        if opened {
            return;
        }
        if rel.is_empty() {
            self.root_unreadable.store(true, Ordering::Relaxed);
        } else {
            // A directory that vanished or could not be opened (out of descriptors, say): its
            // entries stay unproven, and libgit2 looks at everything below it.
            let mut dir = rel.to_vec();
            dir.push(b'/');
            local.found.push(dir);
        }
    }

    fn entry(&self, local: &mut Local, dir_rel: &[u8], name: &[u8], kind: Kind) -> Option<()> {
        if name == b".git" {
            // The repository's own directory is not part of the work tree; anywhere else let
            // libgit2 judge what a `.git` means.
            if !dir_rel.is_empty() {
                let path = local.join(dir_rel, name).to_vec();
                push_both(&mut local.found, &path);
            }
            return None;
        }
        let path = local.join(dir_rel, name);
        if self.dirs.contains(path) {
            if kind == Kind::Dir {
                return Some(());
            }
            // Tracked files below what is now a file or a symbolic link.
            let path = path.to_vec();
            push_both(&mut local.found, &path);
        } else if !self.tracked.contains_key(path) {
            let mut path = path.to_vec();
            if kind == Kind::Dir {
                path.push(b'/');
            }
            local.found.push(path);
        }
        // A tracked regular file is checked in `file`; any other tracked kind stays unproven.
        None
    }

    fn reads_files(&self) -> bool {
        true
    }

    fn file(&self, local: &mut Local, dir: BorrowedFd<'_>, dir_rel: &[u8], name: &CStr) {
        let path = local.join(dir_rel, name.to_bytes());
        let Some(&i) = self.tracked.get(path) else { return };
        let e = &self.entries[i];
        if e.special || e.mode == GITLINK {
            return;
        }
        if let Some(st) = lstat_at(dir, name)
            && stat_matches(e, &st)
            && !racy(e, self.index_mtime)
        {
            self.clean[i].store(true, Ordering::Relaxed);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// index file

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Parses an index file (versions 2 to 4, SHA-1). None for anything else, for a split or
/// sparse index, or for a required extension this parser does not know. The trailing checksum
/// is not verified (git does not verify it either when reading).
fn parse(b: &[u8]) -> Option<Index> {
    if b.get(..4)? != b"DIRC" {
        return None;
    }
    let version = be32(b, 4)?;
    if !(2..=4).contains(&version) {
        return None;
    }
    let count = be32(b, 8)? as usize;
    let end = b.len().checked_sub(20)?;
    let mut at = 12;
    let mut entries = Vec::with_capacity(count.min(b.len() / 62));
    let mut prev: Vec<u8> = Vec::new();
    for _ in 0..count {
        let f = |i: usize| be32(b, at + 4 * i);
        let flags = u16::from_be_bytes(b.get(at + 60..at + 62)?.try_into().ok()?);
        let extended = flags & 0x4000 != 0;
        if extended && version < 3 {
            return None;
        }
        let special = flags & 0x8000 != 0 || flags & 0x3000 != 0 || extended;
        let mut p = at + 62 + if extended { 2 } else { 0 };
        let path = if version == 4 {
            // A varint of bytes to drop from the previous path, then the rest NUL-terminated.
            let mut strip: usize = 0;
            loop {
                let c = *b.get(p)?;
                p += 1;
                // Checked: a crafted index must be refused, not overflow.
                strip = strip.checked_mul(128)?.checked_add(usize::from(c & 0x7f))?;
                if c & 0x80 == 0 {
                    break;
                }
                strip = strip.checked_add(1)?;
            }
            let nul = b.get(p..end)?.iter().position(|&c| c == 0)?;
            let mut path = prev.get(..prev.len().checked_sub(strip)?)?.to_vec();
            path.extend_from_slice(&b[p..p + nul]);
            p += nul + 1;
            path
        } else {
            let nul = b.get(p..end)?.iter().position(|&c| c == 0)?;
            let path = b[p..p + nul].to_vec();
            // Entries are padded with 1 to 8 NULs to a multiple of 8 bytes.
            let len = p + nul - at;
            p = at + (len + 8) / 8 * 8;
            path
        };
        if p > end || path.is_empty() {
            return None;
        }
        entries.push(Entry {
            ctime: (f(0)?, f(1)?),
            mtime: (f(2)?, f(3)?),
            ino: f(5)?,
            mode: f(6)?,
            uid: f(7)?,
            gid: f(8)?,
            size: f(9)?,
            special,
            path: path.clone(),
        });
        prev = path;
        at = p;
    }
    let mut root_tree = None;
    while at + 8 <= end {
        let sig = b.get(at..at + 4)?;
        let len = be32(b, at + 4)? as usize;
        let data = b.get(at + 8..(at + 8).checked_add(len)?)?;
        if at + 8 + len > end {
            return None;
        }
        match sig {
            b"TREE" => root_tree = cache_tree_root(data),
            // Split and sparse indexes keep entries elsewhere or collapsed.
            b"link" | b"sdir" => return None,
            // Lower-case signatures are required extensions: one this parser does not know
            // changes the meaning of the entries.
            s if s[0].is_ascii_lowercase() => return None,
            _ => {}
        }
        at += 8 + len;
    }
    if at != end {
        return None;
    }
    Some(Index { entries, root_tree })
}

/// The id of the work tree's root in a cache-tree extension, when valid (entry count >= 0).
fn cache_tree_root(data: &[u8]) -> Option<[u8; 20]> {
    // Root record: "" NUL, "<entry count> <subtrees>\n", then the id when the count is valid.
    if *data.first()? != 0 {
        return None;
    }
    let nl = data.iter().position(|&c| c == b'\n')?;
    let head = std::str::from_utf8(&data[1..nl]).ok()?;
    let count: i64 = head.split(' ').next()?.parse().ok()?;
    if count < 0 {
        return None;
    }
    data.get(nl + 1..nl + 21)?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use git2::{Repository, Signature, Status, StatusOptions};

    #[test]
    fn names_libgit2_would_read_as_patterns_are_left_to_the_full_scan() {
        for p in [&b"x[1]/"[..], b"a*b", b"q?", b"back\\slash", b"#lib", b"!neg/", b"lib /", b"tab\t"] {
            assert!(reads_as_pattern(p), "{}", String::from_utf8_lossy(p));
        }
        for p in [&b"src/main.rs"[..], b"dir/", b"a#b", b"a!b", b"space in/name"] {
            assert!(!reads_as_pattern(p), "{}", String::from_utf8_lossy(p));
        }
    }

    #[test]
    fn a_varint_that_would_overflow_is_refused() {
        // A v4 index whose first entry's prefix length never ends within usize.
        let mut entry = vec![0u8; 62];
        entry.extend_from_slice(&[0xff; 12]);
        entry.push(0x7f);
        entry.extend_from_slice(b"name\0");
        let mut b = b"DIRC".to_vec();
        b.extend_from_slice(&4u32.to_be_bytes());
        b.extend_from_slice(&1u32.to_be_bytes());
        b.extend_from_slice(&entry);
        b.extend_from_slice(&[0u8; 20]);
        assert!(parse(&b).is_none());
    }

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn commit_all(repo: &Repository) {
        let mut index = repo.index().unwrap();
        index.add_all(["*"], git2::IndexAddOption::DEFAULT, None).unwrap();
        index.write().unwrap();
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        let sig = Signature::now("T", "t@example.com").unwrap();
        let parent = repo.head().ok().map(|h| h.peel_to_commit().unwrap());
        let parents: Vec<_> = parent.iter().collect();
        repo.commit(Some("HEAD"), &sig, &sig, "c", &tree, &parents).unwrap();
    }

    fn head_tree(repo: &Repository) -> Option<[u8; 20]> {
        Some(repo.head().ok()?.peel_to_tree().ok()?.id().as_bytes().try_into().unwrap())
    }

    /// Every path libgit2's full status reports must be a candidate (or, for index-only
    /// changes, be reported as possible through `staged_unknown`).
    fn assert_covers(repo: &Repository) -> Vec<Vec<u8>> {
        let root = repo.workdir().unwrap();
        let Prescan::Candidates { paths, staged_unknown } =
            prescan(root, repo.path(), head_tree(repo), false)
        else {
            panic!("unexpectedly unsure");
        };
        let mut opts = StatusOptions::new();
        opts.include_untracked(true).recurse_untracked_dirs(true);
        for e in repo.statuses(Some(&mut opts)).unwrap().iter() {
            let p = e.path_bytes();
            let covered = paths.iter().any(|c| c.as_slice() == p || (c.ends_with(b"/") && p.starts_with(c)));
            let index_only = !e.status().intersects(
                Status::WT_NEW
                    | Status::WT_MODIFIED
                    | Status::WT_DELETED
                    | Status::WT_TYPECHANGE
                    | Status::WT_RENAMED,
            );
            assert!(
                covered || (staged_unknown && index_only),
                "{} ({:?}) missed; candidates {paths:?}",
                String::from_utf8_lossy(p),
                e.status()
            );
        }
        paths
    }

    #[test]
    fn clean_tree_has_no_candidates_and_changes_are_all_found() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let repo = Repository::init(root).unwrap();
        for i in 0..30 {
            write(root, &format!("d{}/s{}/f{i}.txt", i % 3, i % 2), &format!("file {i}\n"));
        }
        write(root, "top.txt", "top\n");
        write(root, "link-target/x.txt", "x\n");
        write(root, ".gitignore", "*.log\n");
        commit_all(&repo);
        // Files written before the index must not look racily clean.
        std::thread::sleep(std::time::Duration::from_millis(20));
        let mut index = repo.index().unwrap();
        index.read(true).unwrap();
        index.write().unwrap();
        assert_eq!(assert_covers(&repo), Vec::<Vec<u8>>::new(), "a clean tree needs no libgit2 scan");

        // Same size, written right after the index: only the racy check can catch it.
        write(root, "d0/s0/f0.txt", "FILE 0\n");
        std::fs::remove_file(root.join("d1/s1/f1.txt")).unwrap();
        write(root, "d2/s0/new.txt", "untracked in a tracked dir\n");
        write(root, "fresh/deep/new.txt", "untracked in a new dir\n");
        write(root, "d0/debug.log", "ignored\n");
        std::fs::remove_file(root.join("top.txt")).unwrap();
        write(root, "top.txt/inside.txt", "a file became a directory\n");
        std::fs::remove_dir_all(root.join("link-target")).unwrap();
        write(root, "elsewhere/x.txt", "x\n");
        std::os::unix::fs::symlink("elsewhere", root.join("link-target")).unwrap();
        let paths = assert_covers(&repo);
        assert!(paths.contains(&b"d0/s0/f0.txt".to_vec()), "{paths:?}");
        assert!(paths.contains(&b"fresh/".to_vec()), "{paths:?}");

        // Staged changes: the cache-tree no longer matches HEAD.
        let mut index = repo.index().unwrap();
        index.add_path(Path::new("d2/s0/new.txt")).unwrap();
        index.remove_path(Path::new("d0/s1/f3.txt")).unwrap();
        index.write().unwrap();
        assert_covers(&repo);
    }

    #[test]
    fn index_versions_parse_alike() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let repo = Repository::init(root).unwrap();
        for i in 0..20 {
            write(root, &format!("a/b{}/file-with-a-long-name-{i}.txt", i % 4), "x\n");
        }
        commit_all(&repo);
        let v2 = parse(&std::fs::read(repo.path().join("index")).unwrap()).unwrap();
        let mut index = repo.index().unwrap();
        index.set_version(4).unwrap();
        index.write().unwrap();
        let v4 = parse(&std::fs::read(repo.path().join("index")).unwrap()).unwrap();
        let names = |i: &Index| i.entries.iter().map(|e| e.path.clone()).collect::<Vec<_>>();
        assert_eq!(names(&v2), names(&v4));
        assert_eq!(v2.entries.len(), 20);
        assert!(parse(b"DIRC\0\0\0\x09").is_none(), "unknown version");
        assert!(parse(b"not an index at all, just bytes").is_none());
    }
}
