//! File operations behind `POST /files/folder`, `/files/move`, `/files/permissions`,
//! `/files/replace` and `DELETE /files`. Paths come in resolved; errors are [`FsError`]s.

use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::Path;

use super::error::FsError;
use crate::text::os_error_text;

/// An octal mode as Go's `strconv.ParseUint(s, 8, 32)` takes it (`755`, `0755`; no sign, no
/// `0o`).
pub fn parse_mode(text: &[u8]) -> Result<u32, FsError> {
    let invalid = || FsError::Refused("invalid mode format".into());
    if text.is_empty() || !text.iter().all(|b| (b'0'..=b'7').contains(b)) {
        return Err(invalid());
    }
    u32::from_str_radix(std::str::from_utf8(text).map_err(|_| invalid())?, 8).map_err(|_| invalid())
}

// ------------------------------------------------------------------------------------ folder

/// Creates `path` and its missing parents (`mkdir -p`) with `mode` (umask applies); an existing
/// directory is success.
pub fn make_dir(path: &Path, mode: u32) -> Result<(), FsError> {
    // Only the permission bits reach mkdir, as in Go (`os.FileMode(4755)` has no set-uid).
    fs::DirBuilder::new().recursive(true).mode(mode & 0o777).create(path).map_err(FsError::os(path))
}

// -------------------------------------------------------------------------------------- move

/// Renames `src` to `dst` (both absolute and clean), never overwriting; across file systems (or
/// whenever the rename fails) it copies and then deletes the source. `Some(why)` when the copy
/// succeeded but the source could not be removed.
pub fn move_path(src: &Path, dst: &Path) -> Result<Option<String>, FsError> {
    fs::metadata(src).map_err(FsError::os(src))?;
    let parent = dst.parent().unwrap_or(Path::new("/"));
    fs::metadata(parent).map_err(FsError::os(parent))?;
    if fs::metadata(dst).is_ok() {
        return Err(FsError::Exists);
    }
    if fs::rename(src, dst).is_ok() {
        return Ok(None);
    }
    // Copying a directory into its own subtree would never end (the reference loops until the
    // path is too long); rename refuses it with EINVAL, and so do we.
    if dst.starts_with(src) {
        return Err(FsError::Refused(format!("failed to move file: cannot move {} into itself", shown(src))));
    }
    copy_tree(src, dst).map_err(|e| FsError::Refused(format!("failed to move file: {e}")))?;
    let removed = match fs::symlink_metadata(src) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(src),
        Ok(_) => fs::remove_file(src),
        Err(e) => Err(e),
    };
    Ok(removed.err().map(|e| format!("failed to delete source: {}: {}", shown(src), os_error_text(&e))))
}

/// Copies `src` to `dst` following symlinks: directories recursively with their modes (umask
/// applies), regular files with theirs. Other file types are refused rather than read (a FIFO
/// would block forever).
fn copy_tree(src: &Path, dst: &Path) -> Result<(), String> {
    let err = |p: &Path, e: io::Error| format!("{}: {}", shown(p), os_error_text(&e));
    let meta = fs::metadata(src).map_err(|e| err(src, e))?;
    if meta.is_dir() {
        fs::DirBuilder::new().mode(meta.mode() & 0o7777).create(dst).map_err(|e| err(dst, e))?;
        let mut names: Vec<_> = fs::read_dir(src)
            .map_err(|e| err(src, e))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(|e| err(src, e))?;
        names.sort();
        for name in names {
            copy_tree(&src.join(&name), &dst.join(&name))?;
        }
        Ok(())
    } else if meta.is_file() {
        fs::copy(src, dst).map(drop).map_err(|e| err(src, e))
    } else {
        Err(format!("{}: not a regular file or directory", shown(src)))
    }
}

// ------------------------------------------------------------------------------- permissions

/// Changes mode and/or ownership of `path` (following symlinks). The path is checked first, then
/// the mode applied, then the owner: a failing chown leaves the mode changed, as in the
/// reference.
pub fn set_permissions(
    path: &Path,
    mode: Option<&[u8]>,
    owner: Option<&str>,
    group: Option<&str>,
) -> Result<(), FsError> {
    fs::metadata(path).map_err(FsError::os(path))?;
    if let Some(mode) = mode {
        let mode = parse_mode(mode)? & 0o777;
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(FsError::os(path))?;
    }
    if owner.is_some() || group.is_some() {
        let uid = resolve_id(owner, Path::new("/etc/passwd"), "user not found")?;
        let gid = resolve_id(group, Path::new("/etc/group"), "group not found")?;
        std::os::unix::fs::chown(path, uid, gid).map_err(FsError::os(path))?;
    }
    Ok(())
}

/// An owner or group value: a decimal number first (`-1` = unchanged; other values are passed
/// to the kernel as they wrap into `uid_t`, as Go does), else a name looked up in `db`. The
/// daemon is a static binary without NSS, so the files are read directly.
fn resolve_id(value: Option<&str>, db: &Path, unknown: &str) -> Result<Option<u32>, FsError> {
    let Some(value) = value else { return Ok(None) };
    if let Ok(n) = value.parse::<i64>() {
        return Ok((n != -1).then_some(n as u32));
    }
    let text = fs::read_to_string(db).unwrap_or_default();
    lookup_id(&text, value).map(Some).ok_or_else(|| FsError::Refused(unknown.into()))
}

/// The numeric id (third field) of `name` in `/etc/passwd` or `/etc/group` text. Comments,
/// blank lines and NIS `+`/`-` entries are skipped.
pub fn lookup_id(db_text: &str, name: &str) -> Option<u32> {
    db_text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).find_map(|line| {
        let mut fields = line.split(':');
        let entry = fields.next()?;
        if entry != name || entry.starts_with(['+', '-']) {
            return None;
        }
        fields.nth(1)?.parse().ok()
    })
}

// ----------------------------------------------------------------------------------- replace

/// Rewrites `path` with every `pattern` replaced by `new`, streaming (bounded memory). The new
/// content goes to a temporary file next to the real file, which then replaces it by rename, so
/// readers never see a half-written file; mode and ownership are kept, and a symlinked path
/// keeps its link (the target is replaced). When that is not possible (directory not writable,
/// ownership cannot be kept, hard links, a bind-mounted file) the content is written in place.
/// Errors are texts in the reference's words (`open /x: no such file or directory`).
pub fn replace_in_file(path: &Path, pattern: &[u8], new: &[u8]) -> Result<(), String> {
    let op_err = |op: &str, e: &io::Error| format!("{op} {}: {}", shown(path), os_error_text(e));
    let meta = fs::metadata(path).map_err(|e| op_err("open", &e))?;
    if meta.is_dir() {
        return Err(format!("read {}: is a directory", shown(path)));
    }
    if !meta.is_file() {
        // FIFOs and devices would block or never end; the reference reads them anyway.
        return Err(format!("read {}: not a regular file", shown(path)));
    }
    let mut src = File::open(path).map_err(|e| op_err("open", &e))?;
    // Checked on the file itself: renaming over a read-only file would otherwise succeed where
    // writing it must fail.
    let mut dst = OpenOptions::new().write(true).open(path).map_err(|e| op_err("open", &e))?;
    let real = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());

    let staged = if meta.nlink() == 1 { stage_next_to(&real, &meta) } else { None };
    let Some(mut staged) = staged else {
        let mut tmp = tempfile::tempfile().map_err(|e| op_err("write", &e))?;
        stream_replace(&mut src, &mut tmp, pattern, new).map_err(|(op, e)| op_err(op, &e))?;
        return write_in_place(&mut tmp, &mut dst).map_err(|e| op_err("write", &e));
    };
    stream_replace(&mut src, staged.as_file_mut(), pattern, new).map_err(|(op, e)| op_err(op, &e))?;
    drop(src);
    match staged.persist(&real) {
        Ok(_) => Ok(()),
        // E.g. EBUSY for a bind-mounted file: fall back to writing in place.
        Err(persist) => {
            let mut tmp = persist.file;
            write_in_place(tmp.as_file_mut(), &mut dst).map_err(|e| op_err("write", &e))
        }
    }
}

/// A temporary file beside `real` with its mode and owner, or `None` when either cannot be had.
fn stage_next_to(real: &Path, meta: &Metadata) -> Option<tempfile::NamedTempFile> {
    let dir = real.parent()?;
    let tmp = tempfile::Builder::new().prefix(".daytona-replace-").tempfile_in(dir).ok()?;
    let file = tmp.as_file();
    let own = file.metadata().ok()?;
    // Owner before mode: chown clears set-uid/set-gid bits.
    if (own.uid(), own.gid()) != (meta.uid(), meta.gid()) {
        std::os::unix::fs::fchown(file, Some(meta.uid()), Some(meta.gid())).ok()?;
    }
    file.set_permissions(fs::Permissions::from_mode(meta.mode() & 0o7777)).ok()?;
    Some(tmp)
}

fn write_in_place(content: &mut File, dst: &mut File) -> io::Result<()> {
    content.rewind()?;
    dst.set_len(0)?;
    io::copy(content, dst)?;
    Ok(())
}

/// Copies `src` to `dst` replacing every non-overlapping occurrence of `pattern` (left to right,
/// as Go's `strings.ReplaceAll`) with `new`. Errors say whether reading or writing failed.
pub fn stream_replace(
    src: &mut impl Read,
    dst: &mut impl Write,
    pattern: &[u8],
    new: &[u8],
) -> Result<(), (&'static str, io::Error)> {
    debug_assert!(!pattern.is_empty());
    let mut out = BufWriter::with_capacity(64 * 1024, dst);
    let mut buf: Vec<u8> = Vec::with_capacity(128 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = loop {
            match src.read(&mut chunk) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other.map_err(|e| ("read", e))?,
            }
        };
        let eof = n == 0;
        buf.extend_from_slice(&chunk[..n]);
        let mut start = 0;
        while let Some(i) = find(&buf[start..], pattern) {
            out.write_all(&buf[start..start + i]).map_err(|e| ("write", e))?;
            out.write_all(new).map_err(|e| ("write", e))?;
            start += i + pattern.len();
        }
        // A match starting in the last `pattern.len() - 1` bytes may continue in the next chunk.
        let keep = if eof { 0 } else { (pattern.len() - 1).min(buf.len() - start) };
        let upto = buf.len() - keep;
        out.write_all(&buf[start..upto]).map_err(|e| ("write", e))?;
        buf.drain(..upto);
        if eof {
            break;
        }
    }
    out.flush().map_err(|e| ("write", e))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.len() > haystack.len() {
        return None;
    }
    let last = haystack.len() - needle.len();
    let mut i = 0;
    while i <= last {
        i += haystack[i..=last].iter().position(|b| *b == needle[0])?;
        if haystack[i..].starts_with(needle) {
            return Some(i);
        }
        i += 1;
    }
    None
}

// ------------------------------------------------------------------------------------ delete

/// Deletes a file, or a directory tree with `recursive`. The existence check follows symlinks
/// (a dangling link is "not found"); the removal never does (a link to a directory is removed
/// itself).
pub fn delete_path(path: &Path, recursive: bool) -> Result<(), FsError> {
    let target = fs::metadata(path).map_err(FsError::os(path))?;
    let result = if recursive {
        match fs::symlink_metadata(path) {
            Ok(m) if m.is_dir() => fs::remove_dir_all(path),
            Ok(_) => fs::remove_file(path),
            Err(e) => Err(e),
        }
    } else if target.is_dir() {
        return Err(FsError::Refused("cannot delete directory without recursive flag".into()));
    } else {
        fs::remove_file(path)
    };
    result.map_err(FsError::os(path))
}

/// A path in a message, byte for byte (invalid UTF-8 as one U+FFFD per byte).
fn shown(path: &Path) -> String {
    crate::fspath::display(path.as_os_str().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A short name for an error, to compare in assertions.
    fn why(e: FsError) -> String {
        match e {
            FsError::Refused(t) | FsError::WrongKind(t) => t,
            FsError::Os { err, .. } => format!("os: {:?}", err.kind()),
            FsError::Read { err, .. } => format!("read: {:?}", err.kind()),
            FsError::Exists => "exists".into(),
        }
    }

    #[test]
    fn modes() {
        assert_eq!(parse_mode(b"755").unwrap(), 0o755);
        assert_eq!(parse_mode(b"0755").unwrap(), 0o755);
        assert_eq!(parse_mode(b"4755").unwrap(), 0o4755);
        assert_eq!(parse_mode(b"37777777777").unwrap(), u32::MAX);
        for bad in [&b""[..], b"+755", b"-1", b"0o755", b"8", b"75 5", b"777777777777"] {
            assert_eq!(why(parse_mode(bad).unwrap_err()), "invalid mode format", "{bad:?}");
        }
    }

    const PASSWD: &str = "# users\nroot:x:0:0:root:/root:/bin/bash\n\n+nis::::::\ndaytona:x:1000:1000::/home/daytona:/bin/sh\n1000:x:1234:1234::/:/bin/sh\nbroken:x\n";
    const GROUP: &str = "root:x:0:\nusers:x:100:daytona,alice\ndaytona:x:1000:\n";

    #[test]
    fn passwd_and_group_lookup() {
        assert_eq!(lookup_id(PASSWD, "root"), Some(0));
        assert_eq!(lookup_id(PASSWD, "daytona"), Some(1000));
        assert_eq!(lookup_id(PASSWD, "nobody"), None);
        assert_eq!(lookup_id(PASSWD, "broken"), None);
        assert_eq!(lookup_id(PASSWD, "+nis"), None);
        assert_eq!(lookup_id(PASSWD, "# users"), None);
        assert_eq!(lookup_id(GROUP, "users"), Some(100));
        assert_eq!(lookup_id(GROUP, "daytona"), Some(1000));
        assert_eq!(lookup_id(GROUP, "alice"), None);
    }

    #[test]
    fn ids_numbers_first() {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("passwd");
        fs::write(&db, PASSWD).unwrap();
        assert_eq!(resolve_id(None, &db, "user not found").unwrap(), None);
        assert_eq!(resolve_id(Some("-1"), &db, "user not found").unwrap(), None);
        assert_eq!(resolve_id(Some("42"), &db, "user not found").unwrap(), Some(42));
        // A user literally named `1000` is unreachable by name (pitfall 44).
        assert_eq!(resolve_id(Some("1000"), &db, "user not found").unwrap(), Some(1000));
        assert_eq!(resolve_id(Some("daytona"), &db, "user not found").unwrap(), Some(1000));
        let e = resolve_id(Some("ghost"), &db, "user not found").unwrap_err();
        assert_eq!(why(e), "user not found");
        let e = resolve_id(Some("ghost"), &tmp.path().join("missing"), "group not found").unwrap_err();
        assert_eq!(why(e), "group not found");
    }

    fn replaced(input: &[u8], pattern: &str, new: &str) -> Vec<u8> {
        let mut out = Vec::new();
        stream_replace(&mut &input[..], &mut out, pattern.as_bytes(), new.as_bytes()).unwrap();
        out
    }

    #[test]
    fn literal_replace_all() {
        assert_eq!(replaced(b"a.b.c", ".", "::"), b"a::b::c");
        assert_eq!(replaced(b"aaaa", "aa", "b"), b"bb");
        assert_eq!(replaced(b"aaa", "aa", "b"), b"ba");
        assert_eq!(replaced(b"x(y)*", "(y)*", ""), b"x");
        assert_eq!(replaced(b"", "a", "b"), b"");
        assert_eq!(replaced(b"abc", "abcd", "x"), b"abc");
        assert_eq!(replaced(b"\xff\x00x\xff", "\u{0}x", "y"), b"\xffy\xff");
        // Matches straddling the 64 KiB read chunks.
        let mut big = vec![b'.'; 200_000];
        for pos in [65_535, 131_071, 199_990] {
            big[pos..pos + 5].copy_from_slice(b"NEEDL");
        }
        let out = replaced(&big, "NEEDL", "n");
        assert_eq!(out.len(), 200_000 - 3 * 4);
        assert_eq!(out.iter().filter(|b| **b == b'n').count(), 3);
        assert!(!out.windows(5).any(|w| w == b"NEEDL"));
    }

    #[test]
    fn replace_keeps_mode_and_links() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("f.txt");
        fs::write(&f, "hello world, hello").unwrap();
        fs::set_permissions(&f, fs::Permissions::from_mode(0o640)).unwrap();
        let link = tmp.path().join("link");
        symlink(&f, &link).unwrap();
        replace_in_file(&link, b"hello", b"bye").unwrap();
        assert_eq!(fs::read_to_string(&f).unwrap(), "bye world, bye");
        assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link stays a link");
        assert_eq!(fs::metadata(&f).unwrap().mode() & 0o7777, 0o640);
        // No temporary files left behind.
        let mut names: Vec<_> = fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        names.sort();
        assert_eq!(names, ["f.txt", "link"]);

        // Hard links are edited in place, so both names still share the content.
        let hard = tmp.path().join("hard");
        fs::hard_link(&f, &hard).unwrap();
        replace_in_file(&hard, b"bye", b"ciao").unwrap();
        assert_eq!(fs::read_to_string(&f).unwrap(), "ciao world, ciao");

        let e = replace_in_file(&tmp.path().join("nope"), b"a", b"b").unwrap_err();
        assert_eq!(e, format!("open {}/nope: no such file or directory", tmp.path().display()));
        let e = replace_in_file(tmp.path(), b"a", b"b").unwrap_err();
        assert_eq!(e, format!("read {}: is a directory", tmp.path().display()));
    }

    #[test]
    fn delete_rules() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("d");
        fs::create_dir_all(d.join("sub")).unwrap();
        fs::write(d.join("sub/f"), "").unwrap();
        let link = tmp.path().join("link");
        symlink(&d, &link).unwrap();
        let dangling = tmp.path().join("dangling");
        symlink(tmp.path().join("missing"), &dangling).unwrap();

        let e = delete_path(&d, false).unwrap_err();
        assert_eq!(why(e), "cannot delete directory without recursive flag");
        assert_eq!(
            why(delete_path(&link, false).unwrap_err()),
            "cannot delete directory without recursive flag"
        );
        delete_path(&link, true).unwrap();
        assert!(fs::symlink_metadata(&link).is_err());
        assert!(d.join("sub/f").exists(), "only the link went");
        assert_eq!(why(delete_path(&dangling, true).unwrap_err()), "os: NotFound");
        delete_path(&d.join("sub/f"), false).unwrap();
        delete_path(&d, true).unwrap();
        assert!(!d.exists());
    }

    #[test]
    fn move_rules() {
        let tmp = tempfile::tempdir().unwrap();
        let a = tmp.path().join("a");
        fs::create_dir(&a).unwrap();
        fs::write(a.join("f"), "x").unwrap();
        let b = tmp.path().join("b");
        fs::write(&b, "").unwrap();
        assert_eq!(why(move_path(&a, &b).unwrap_err()), "exists");
        assert_eq!(
            why(move_path(&tmp.path().join("none"), &tmp.path().join("c")).unwrap_err()),
            "os: NotFound"
        );
        assert_eq!(why(move_path(&a, &tmp.path().join("no/c")).unwrap_err()), "os: NotFound");
        let e = why(move_path(&a, &a.join("inner")).unwrap_err());
        assert!(e.starts_with("failed to move file: cannot move ") && e.ends_with(" into itself"), "{e}");
        assert_eq!(move_path(&a, &tmp.path().join("c")).unwrap(), None);
        assert_eq!(fs::read_to_string(tmp.path().join("c/f")).unwrap(), "x");
    }

    #[test]
    fn copy_fallback_keeps_modes() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        fs::create_dir_all(src.join("sub")).unwrap();
        fs::write(src.join("sub/run.sh"), "#!/bin/sh").unwrap();
        fs::set_permissions(src.join("sub/run.sh"), fs::Permissions::from_mode(0o751)).unwrap();
        symlink(src.join("sub/run.sh"), src.join("ln")).unwrap();
        let dst = tmp.path().join("dst");
        copy_tree(&src, &dst).unwrap();
        assert_eq!(fs::metadata(dst.join("sub/run.sh")).unwrap().mode() & 0o777, 0o751);
        assert!(fs::symlink_metadata(dst.join("ln")).unwrap().is_file(), "links are followed");
    }
}
