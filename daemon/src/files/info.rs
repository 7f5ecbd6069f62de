//! Directory listings and file metadata (`GET /files`, `GET /files/info`): the walk, and the
//! Go renderings of modes and times the clients have always seen.

use std::ffi::OsString;
use std::fs::{self, Metadata};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};

/// One listed entry: its name, its path as reported (the requested spelling joined with the path
/// below the root), and the link-followed metadata.
#[derive(Debug)]
pub struct Entry {
    pub name: Vec<u8>,
    pub path: Vec<u8>,
    pub meta: Metadata,
}

/// Go's `FileMode.String()` for a raw `st_mode`: type/special letters in Go's fixed order
/// (`d`, `L`, `D`, `p`, `S`, `u`, `g`, `c`, `t`; `-` when none applies), then `rwxrwxrwx`.
pub fn mode_string(st_mode: u32) -> String {
    let fmt = st_mode & libc::S_IFMT;
    let letters = [
        ('d', fmt == libc::S_IFDIR),
        ('L', fmt == libc::S_IFLNK),
        ('D', fmt == libc::S_IFBLK || fmt == libc::S_IFCHR),
        ('p', fmt == libc::S_IFIFO),
        ('S', fmt == libc::S_IFSOCK),
        ('u', st_mode & libc::S_ISUID != 0),
        ('g', st_mode & libc::S_ISGID != 0),
        ('c', fmt == libc::S_IFCHR),
        ('t', st_mode & libc::S_ISVTX != 0),
    ];
    let mut out: String = letters.iter().filter(|(_, on)| *on).map(|(c, _)| *c).collect();
    if out.is_empty() {
        out.push('-');
    }
    for (i, c) in "rwxrwxrwx".chars().enumerate() {
        out.push(if st_mode & (1 << (8 - i)) != 0 { c } else { '-' });
    }
    out
}

/// Permission bits only, as `0644`: set-uid/gid/sticky never appear.
pub fn permissions(st_mode: u32) -> String {
    format!("{:04o}", st_mode & 0o777)
}

/// Go's `time.Time.String()` without a monotonic reading:
/// `2025-01-15 10:30:45.123456789 +0000 UTC` (fraction trimmed, absent when zero).
pub fn go_time_string(ts: Timestamp, tz: &TimeZone) -> String {
    let zoned = Zoned::new(ts, tz.clone());
    let mut out = zoned.strftime("%Y-%m-%d %H:%M:%S").to_string();
    let nanos = zoned.subsec_nanosecond();
    if nanos != 0 {
        out.push('.');
        out.push_str(format!("{nanos:09}").trim_end_matches('0'));
    }
    let secs = zoned.offset().seconds();
    let sign = if secs < 0 { '-' } else { '+' };
    let abs = secs.unsigned_abs();
    let numeric = format!("{sign}{:02}{:02}", abs / 3600, (abs % 3600) / 60);
    let info = tz.to_offset_info(ts);
    // Go prints the zone's abbreviation, or the numeric offset again when it has none.
    let abbrev = match info.abbreviation() {
        "" => numeric.clone(),
        a => a.to_string(),
    };
    out.push(' ');
    out.push_str(&numeric);
    out.push(' ');
    out.push_str(&abbrev);
    out
}

/// Lists `root` (spelled `requested` in the reported paths) `depth` levels deep, in lexical
/// pre-order. Symlinks are stat'ed through but never descended into; entries whose stat fails
/// are left out; unreadable subdirectories are listed without their contents. Only failing to
/// read the root itself is an error.
pub fn list_dir(root: &Path, requested: &[u8], depth: usize) -> io::Result<Vec<Entry>> {
    struct Frame {
        dir: PathBuf,
        rel: Vec<u8>,
        level: usize,
        entries: std::vec::IntoIter<(OsString, Option<fs::FileType>)>,
    }
    let mut out = Vec::new();
    let mut stack =
        vec![Frame { dir: root.to_path_buf(), rel: Vec::new(), level: 1, entries: read_sorted(root)? }];
    while let Some(frame) = stack.last_mut() {
        let Some((name, file_type)) = frame.entries.next() else {
            stack.pop();
            continue;
        };
        let full = frame.dir.join(&name);
        let rel = if frame.rel.is_empty() {
            name.as_bytes().to_vec()
        } else {
            [frame.rel.as_slice(), b"/", name.as_bytes()].concat()
        };
        let Ok(meta) = fs::metadata(&full) else { continue };
        out.push(Entry { name: name.as_bytes().to_vec(), path: crate::fspath::join(requested, &rel), meta });
        let level = frame.level;
        if level < depth
            && file_type.is_some_and(|t| t.is_dir())
            && let Ok(entries) = read_sorted(&full)
        {
            stack.push(Frame { dir: full, rel, level: level + 1, entries });
        }
    }
    Ok(out)
}

/// Entry names of `dir` in byte order, with their (not link-following) types.
fn read_sorted(dir: &Path) -> io::Result<std::vec::IntoIter<(OsString, Option<fs::FileType>)>> {
    let mut entries: Vec<_> = fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| {
            let t = e.file_type().ok();
            (e.file_name(), t)
        })
        .collect();
    entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    Ok(entries.into_iter())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn utc(s: &str) -> String {
        go_time_string(s.parse().unwrap(), &TimeZone::UTC)
    }

    #[test]
    fn mode_letters_in_go_order() {
        let cases = [
            (libc::S_IFREG | 0o644, "-rw-r--r--"),
            (libc::S_IFREG, "----------"),
            (libc::S_IFDIR | 0o755, "drwxr-xr-x"),
            (libc::S_IFDIR | 0o1777, "dtrwxrwxrwx"),
            (libc::S_IFDIR | 0o2755, "dgrwxr-xr-x"),
            (libc::S_IFCHR | 0o666, "Dcrw-rw-rw-"),
            (libc::S_IFBLK | 0o660, "Drw-rw----"),
            (libc::S_IFIFO | 0o644, "prw-r--r--"),
            (libc::S_IFSOCK | 0o755, "Srwxr-xr-x"),
            (libc::S_IFLNK | 0o777, "Lrwxrwxrwx"),
            (libc::S_IFREG | 0o4755, "urwxr-xr-x"),
            (libc::S_IFREG | 0o6755, "ugrwxr-xr-x"),
            (libc::S_IFREG | 0o7000, "ugt---------"),
            (libc::S_IFCHR | 0o7620, "Dugctrw--w----"),
        ];
        for (mode, want) in cases {
            assert_eq!(mode_string(mode), want, "{mode:o}");
        }
    }

    #[test]
    fn permission_bits_only() {
        assert_eq!(permissions(libc::S_IFREG | 0o644), "0644");
        assert_eq!(permissions(libc::S_IFDIR | 0o1777), "0777");
        assert_eq!(permissions(libc::S_IFREG | 0o4755), "0755");
        assert_eq!(permissions(0o7), "0007");
        assert_eq!(permissions(0), "0000");
    }

    #[test]
    fn go_time_layout() {
        assert_eq!(utc("2025-01-15T10:30:45.123456789Z"), "2025-01-15 10:30:45.123456789 +0000 UTC");
        assert_eq!(utc("2025-01-15T10:30:45.1Z"), "2025-01-15 10:30:45.1 +0000 UTC");
        assert_eq!(utc("2025-01-15T10:30:45Z"), "2025-01-15 10:30:45 +0000 UTC");
        let ts: Timestamp = "2025-01-15T10:30:45.5Z".parse().unwrap();
        let ny = TimeZone::get("America/New_York");
        if let Ok(ny) = ny {
            assert_eq!(go_time_string(ts, &ny), "2025-01-15 05:30:45.5 -0500 EST");
        }
        let india = TimeZone::fixed(jiff::tz::Offset::from_seconds(5 * 3600 + 1800).unwrap());
        let s = go_time_string(ts, &india);
        assert!(s.starts_with("2025-01-15 16:00:45.5 +0530 "), "{s}");
    }

    fn names(list: &[Entry]) -> Vec<&str> {
        list.iter().map(|i| std::str::from_utf8(&i.path).unwrap()).collect()
    }

    #[test]
    fn depth_walk_order_and_symlinks() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        fs::create_dir_all(root.join("b/sub/deep")).unwrap();
        fs::write(root.join("b/sub/deep/x"), "").unwrap();
        fs::write(root.join("b/a.txt"), "hi").unwrap();
        fs::write(root.join("a"), "").unwrap();
        fs::write(root.join("B"), "").unwrap();
        fs::create_dir(root.join("c")).unwrap();
        fs::write(root.join("c/in-c"), "").unwrap();
        symlink(root.join("c"), root.join("link-to-c")).unwrap();
        symlink(root.join("missing"), root.join("dangling")).unwrap();

        let one = list_dir(root, b"/r/", 1).unwrap();
        assert_eq!(names(&one), ["/r/B", "/r/a", "/r/b", "/r/c", "/r/link-to-c"]);
        let link = one.iter().find(|i| i.name == b"link-to-c").unwrap();
        assert!(link.meta.is_dir(), "listing stats through links");

        let two = list_dir(root, b".", 2).unwrap();
        assert_eq!(names(&two), ["B", "a", "b", "b/a.txt", "b/sub", "c", "c/in-c", "link-to-c"]);
        let all = list_dir(root, b"x/..", 10).unwrap();
        assert_eq!(
            names(&all),
            ["B", "a", "b", "b/a.txt", "b/sub", "b/sub/deep", "b/sub/deep/x", "c", "c/in-c", "link-to-c"]
        );
        assert_eq!(all[3].name, b"a.txt");
        assert_eq!(all[3].meta.len(), 2);

        // A root that is a symlink is walked through; paths keep the requested spelling.
        let via_link = list_dir(&root.join("link-to-c"), b"L", 3).unwrap();
        assert_eq!(names(&via_link), ["L/in-c"]);

        assert_eq!(list_dir(&root.join("nope"), b"", 1).unwrap_err().kind(), io::ErrorKind::NotFound);
        assert!(list_dir(&root.join("a"), b"", 1).is_err());
        assert!(list_dir(&root.join("c/in-c"), b"", 2).is_err());
    }

    #[test]
    fn raw_names_survive_the_walk() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join(std::ffi::OsStr::from_bytes(b"\xff\xfe")), "").unwrap();
        let list = list_dir(tmp.path(), b"d\xfd", 1).unwrap();
        assert_eq!(
            (list[0].name.as_slice(), list[0].path.as_slice()),
            (&b"\xff\xfe"[..], &b"d\xfd/\xff\xfe"[..])
        );
    }
}
