//! `GET /files` (and `/files/`), `GET /files/info`: directory listings and file metadata.
//!
//! Also home of what the other `/files` routes share: the `FileInfo` rendering (Go's
//! `FileMode.String()` and `time.Time.String()` layouts the clients have always seen), the
//! raw-byte query [`Params`], Go's `filepath.Clean`, and the strict-Go-client check.

use std::ffi::{OsStr, OsString};
use std::fs::{self, Metadata};
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use axum::Json;
use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::fs_error;
use crate::error::ApiError;
use crate::state::AppState;
use crate::text::lossy_per_byte;
use crate::timefmt;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_files))
        .routes(routes!(file_info))
        // The reference registers the slash form too (clients call both); without this route
        // the router would answer it with a redirect.
        .route("/files/", axum::routing::get(list_files))
}

/// Metadata of one file, as the clients' `FileInfo` model requires it.
#[derive(Serialize, ToSchema, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct FileInfo {
    /// Base name (listings: the entry name).
    pub name: String,
    /// `st_size` of the link-followed target.
    pub size: u64,
    /// Go `FileMode.String()`, e.g. `drwxr-xr-x`.
    pub mode: String,
    /// Deprecated: Go `time.Time.String()` layout in the daemon's local zone.
    pub mod_time: String,
    /// RFC 3339 with nanoseconds, daemon's local zone.
    pub modified_at: String,
    pub is_dir: bool,
    /// Numeric uid as decimal text.
    pub owner: String,
    /// Numeric gid as decimal text.
    pub group: String,
    /// Permission bits as 4-digit octal, e.g. `0644`.
    pub permissions: String,
    /// Listings only: the listed directory joined (and cleaned) with the entry's relative path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

impl FileInfo {
    /// Renders `meta` (from a link-following stat) under `name`, times in `tz`.
    pub fn from_metadata(name: String, meta: &Metadata, tz: &TimeZone) -> Self {
        let mtime = Timestamp::new(meta.mtime(), meta.mtime_nsec() as i32).unwrap_or(Timestamp::UNIX_EPOCH);
        FileInfo {
            name,
            size: meta.size(),
            mode: mode_string(meta.mode()),
            mod_time: go_time_string(mtime, tz),
            modified_at: timefmt::format_rfc3339(mtime, tz),
            is_dir: meta.is_dir(),
            owner: meta.uid().to_string(),
            group: meta.gid().to_string(),
            permissions: permissions(meta.mode()),
            path: None,
        }
    }
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

/// Go's `filepath.Clean` on raw bytes: collapse slashes, drop `.`, resolve `..` lexically.
pub fn clean(path: &[u8]) -> Vec<u8> {
    if path.is_empty() {
        return b".".to_vec();
    }
    let rooted = path[0] == b'/';
    let mut parts: Vec<&[u8]> = Vec::new();
    for part in path.split(|b| *b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                if parts.last().is_some_and(|p| *p != b"..") {
                    parts.pop();
                } else if !rooted {
                    parts.push(part);
                }
            }
            _ => parts.push(part),
        }
    }
    let mut out = Vec::with_capacity(path.len());
    if rooted {
        out.push(b'/');
    }
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        out.extend_from_slice(p);
    }
    if out.is_empty() {
        out.push(b'.');
    }
    out
}

/// Go's `filepath.Join(base, rel)`: the joined path, cleaned.
pub fn clean_join(base: &[u8], rel: &[u8]) -> Vec<u8> {
    let mut joined = base.to_vec();
    if !joined.is_empty() {
        joined.push(b'/');
    }
    joined.extend_from_slice(rel);
    clean(&joined)
}

/// Go's `filepath.Abs`: `path` against `cwd` when relative, cleaned.
pub fn absolute(path: &Path, cwd: &Path) -> PathBuf {
    let bytes = path.as_os_str().as_bytes();
    let joined =
        if bytes.starts_with(b"/") { clean(bytes) } else { clean_join(cwd.as_os_str().as_bytes(), bytes) };
    PathBuf::from(OsString::from_vec(joined))
}

/// Base name as `os.Stat(path).Name()` gives it: trailing slashes removed, `/` for the root.
pub fn base_name(path: &[u8]) -> &[u8] {
    let mut end = path.len();
    while end > 1 && path[end - 1] == b'/' {
        end -= 1;
    }
    let trimmed = &path[..end];
    if trimmed == b"/" {
        return trimmed;
    }
    match trimmed.iter().rposition(|b| *b == b'/') {
        Some(i) => &trimmed[i + 1..],
        None => trimmed,
    }
}

/// Query parameters with their values as raw bytes (paths need not be UTF-8). The first value
/// of a repeated key wins; a pair with a malformed escape or a `;` is dropped, as Go does.
#[derive(Debug, Default, Clone)]
pub struct Params(Vec<(Vec<u8>, Vec<u8>)>);

impl Params {
    pub fn parse(query: &str) -> Self {
        let mut pairs = Vec::new();
        for pair in query.split('&') {
            if pair.is_empty() || pair.contains(';') {
                continue;
            }
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            if let (Some(k), Some(v)) = (unescape(k), unescape(v)) {
                pairs.push((k, v));
            }
        }
        Params(pairs)
    }

    /// The value of `key`, when present (possibly empty).
    pub fn get(&self, key: &str) -> Option<&[u8]> {
        self.0.iter().find(|(k, _)| k == key.as_bytes()).map(|(_, v)| v.as_slice())
    }

    /// A non-empty value of `key` as a path.
    pub fn path(&self, key: &str) -> Option<PathBuf> {
        self.get(key).filter(|v| !v.is_empty()).map(|v| PathBuf::from(OsStr::from_bytes(v)))
    }

    /// A non-empty value of `key` as text (invalid UTF-8 replaced per byte).
    pub fn text(&self, key: &str) -> Option<String> {
        self.get(key).filter(|v| !v.is_empty()).map(lossy_per_byte)
    }

    /// A required path: missing or empty is a 400 with `message`.
    pub fn require_path(&self, key: &str, message: &str) -> Result<PathBuf, ApiError> {
        self.path(key).ok_or_else(|| ApiError::bad_request(message))
    }
}

fn unescape(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = b.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(
                    u8::from_str_radix(hex, 16)
                        .ok()
                        .filter(|_| hex.bytes().all(|c| c.is_ascii_hexdigit()))?,
                );
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    Some(out)
}

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Params::parse(parts.uri.query().unwrap_or("")))
    }
}

/// Lists `root` (spelled `requested` in the reported paths) `depth` levels deep, in lexical
/// pre-order. Symlinks are stat'ed through but never descended into; entries whose stat fails
/// are left out; unreadable subdirectories are listed without their contents. Only failing to
/// read the root itself is an error.
pub fn list_dir(root: &Path, requested: &[u8], depth: usize, tz: &TimeZone) -> io::Result<Vec<FileInfo>> {
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
        let mut info = FileInfo::from_metadata(lossy_per_byte(name.as_bytes()), &meta, tz);
        info.path = Some(lossy_per_byte(&clean_join(requested, &rel)));
        out.push(info);
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

/// Parses the `depth` query value: absent or empty means 1.
pub fn parse_depth(value: Option<&[u8]>) -> Result<usize, ApiError> {
    let Some(raw) = value.filter(|v| !v.is_empty()) else { return Ok(1) };
    std::str::from_utf8(raw)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .filter(|d| *d >= 1)
        .map(|d| usize::try_from(d).unwrap_or(usize::MAX))
        .ok_or_else(|| ApiError::bad_request("depth must be an integer >= 1"))
}

/// Runs blocking file-system work off the async runtime.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(ApiError::internal)?
}

/// Lists a directory; with `depth` > 1 a flat, pre-order list of the whole subtree.
#[utoipa::path(get, path = "/files", tag = "files",
    params(("path" = Option<String>, Query, description = "directory to list; the work dir when empty"),
        ("depth" = Option<i64>, Query, description = "levels to list, >= 1 (default 1)")),
    responses((status = 200, body = Vec<FileInfo>),
        (status = 400, body = crate::openapi::ErrorResponse),
        (status = 403, body = crate::openapi::ErrorResponse),
        (status = 404, body = crate::openapi::ErrorResponse)))]
async fn list_files(params: Params, headers: HeaderMap) -> Result<Json<Vec<FileInfo>>, ApiError> {
    let depth = parse_depth(params.get("depth"))?;
    let requested = params.path("path").unwrap_or_else(|| PathBuf::from("."));
    let strict = crate::process::version::is_strict_go_client(&headers);
    let mut list = blocking(move || {
        let spelled = requested.as_os_str().as_bytes().to_vec();
        list_dir(&requested, &spelled, depth, &TimeZone::system()).map_err(|e| fs_error(&e, &requested))
    })
    .await?;
    if strict {
        list.iter_mut().for_each(|i| i.path = None);
    }
    Ok(Json(list))
}

/// Metadata of one file or directory (symlinks followed).
#[utoipa::path(get, path = "/files/info", tag = "files",
    params(("path" = String, Query, description = "file or directory")),
    responses((status = 200, body = FileInfo),
        (status = 400, body = crate::openapi::ErrorResponse),
        (status = 403, body = crate::openapi::ErrorResponse),
        (status = 404, body = crate::openapi::ErrorResponse)))]
async fn file_info(params: Params) -> Result<Json<FileInfo>, ApiError> {
    let path = params.require_path("path", "path is required")?;
    blocking(move || {
        let meta = fs::metadata(&path).map_err(|e| fs_error(&e, &path))?;
        let name = lossy_per_byte(base_name(path.as_os_str().as_bytes()));
        Ok(Json(FileInfo::from_metadata(name, &meta, &TimeZone::system())))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};
    use tower::ServiceExt;

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

    #[test]
    fn clean_like_go() {
        let cases = [
            ("", "."),
            (".", "."),
            ("/", "/"),
            ("//a//b/", "/a/b"),
            ("a/./b", "a/b"),
            ("a/../b", "b"),
            ("../a", "../a"),
            ("a/../..", ".."),
            ("/../a", "/a"),
            ("x/../y/a", "y/a"),
        ];
        for (input, want) in cases {
            assert_eq!(clean(input.as_bytes()), want.as_bytes(), "{input}");
        }
        assert_eq!(clean_join(b".", b"a"), b"a");
        assert_eq!(clean_join(b"/tmp/", b"a"), b"/tmp/a");
        assert_eq!(clean_join(b"x/../y", b"a"), b"y/a");
        assert_eq!(absolute(Path::new("b/../c"), Path::new("/w")), Path::new("/w/c"));
        assert_eq!(absolute(Path::new("/x/"), Path::new("/w")), Path::new("/x"));
    }

    #[test]
    fn base_names() {
        for (p, want) in [("/", "/"), ("//", "/"), (".", "."), ("a/b/", "b"), ("a", "a"), ("/x/y", "y")] {
            assert_eq!(base_name(p.as_bytes()), want.as_bytes(), "{p}");
        }
    }

    #[test]
    fn query_params() {
        let p = Params::parse("path=%2Ftmp%2Fa+b&path=second&x&bad=%zz&raw=%FF%41&semi=a;b");
        assert_eq!(p.get("path"), Some(&b"/tmp/a b"[..]));
        assert_eq!(p.get("x"), Some(&b""[..]));
        assert_eq!(p.path("x"), None);
        assert_eq!(p.get("bad"), None);
        assert_eq!(p.get("raw"), Some(&b"\xffA"[..]));
        assert_eq!(p.get("semi"), None);
        assert_eq!(p.text("raw").as_deref(), Some("\u{FFFD}A"));
        assert_eq!(
            p.require_path("nope", "path is required").unwrap_err().message,
            "bad request: path is required"
        );
    }

    #[test]
    fn depth_values() {
        assert_eq!(parse_depth(None).unwrap(), 1);
        assert_eq!(parse_depth(Some(b"")).unwrap(), 1);
        assert_eq!(parse_depth(Some(b"3")).unwrap(), 3);
        for bad in [&b"0"[..], b"-1", b"x", b"1.5", b" 2", b"99999999999999999999"] {
            let e = parse_depth(Some(bad)).unwrap_err();
            assert_eq!(e.message, "bad request: depth must be an integer >= 1");
        }
    }

    fn names(list: &[FileInfo]) -> Vec<&str> {
        list.iter().map(|i| i.path.as_deref().unwrap()).collect()
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
        let tz = TimeZone::UTC;

        let one = list_dir(root, b"/r/", 1, &tz).unwrap();
        assert_eq!(names(&one), ["/r/B", "/r/a", "/r/b", "/r/c", "/r/link-to-c"]);
        let link = one.iter().find(|i| i.name == "link-to-c").unwrap();
        assert!(link.is_dir, "listing stats through links");

        let two = list_dir(root, b".", 2, &tz).unwrap();
        assert_eq!(names(&two), ["B", "a", "b", "b/a.txt", "b/sub", "c", "c/in-c", "link-to-c"]);
        let all = list_dir(root, b"x/..", 10, &tz).unwrap();
        assert_eq!(
            names(&all),
            ["B", "a", "b", "b/a.txt", "b/sub", "b/sub/deep", "b/sub/deep/x", "c", "c/in-c", "link-to-c"]
        );
        assert_eq!(all[3].name, "a.txt");
        assert_eq!(all[3].size, 2);

        // A root that is a symlink is walked through; paths keep the requested spelling.
        let via_link = list_dir(&root.join("link-to-c"), b"L", 3, &tz).unwrap();
        assert_eq!(names(&via_link), ["L/in-c"]);

        assert_eq!(list_dir(&root.join("nope"), b"", 1, &tz).unwrap_err().kind(), io::ErrorKind::NotFound);
        assert!(list_dir(&root.join("a"), b"", 1, &tz).is_err());
        assert!(list_dir(&root.join("c/in-c"), b"", 2, &tz).is_err());
    }

    #[test]
    fn file_info_fields() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("f");
        fs::write(&f, "12345").unwrap();
        fs::set_permissions(&f, fs::Permissions::from_mode(0o640)).unwrap();
        let meta = fs::metadata(&f).unwrap();
        let info = FileInfo::from_metadata("f".into(), &meta, &TimeZone::UTC);
        assert_eq!((info.size, info.mode.as_str(), info.permissions.as_str()), (5, "-rw-r-----", "0640"));
        assert_eq!(info.owner, meta.uid().to_string());
        assert_eq!(info.group, meta.gid().to_string());
        assert!(!info.is_dir);
        let ts: Timestamp = info.modified_at.parse().unwrap();
        assert_eq!(ts.as_second(), meta.mtime());
        let v = serde_json::to_value(&info).unwrap();
        let mut keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            ["group", "isDir", "modTime", "mode", "modifiedAt", "name", "owner", "permissions", "size"]
        );
    }

    fn app() -> axum::Router {
        let mut vars = std::collections::HashMap::new();
        vars.insert("DAYTONA_SANDBOX_ID".to_string(), "t".to_string());
        let cfg = crate::config::from_env(&vars).unwrap();
        let env = crate::env::ChildEnv::new([("HOME".into(), "/tmp".into())]);
        crate::server::router(AppState::new(cfg, env, "/".into())).0
    }

    async fn call(app: &axum::Router, method: &str, uri: &str) -> (u16, serde_json::Value) {
        use http_body_util::BodyExt;
        let req =
            axum::http::Request::builder().method(method).uri(uri).body(axum::body::Body::empty()).unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        let status = res.status().as_u16();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
    }

    #[tokio::test]
    async fn both_slash_forms_are_routes() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("a"), "").unwrap();
        fs::write(tmp.path().join("b"), "").unwrap();
        let dir = tmp.path().display();
        let app = app();
        for route in ["/files", "/files/"] {
            let (status, body) = call(&app, "GET", &format!("{route}?path={dir}")).await;
            assert_eq!(status, 200, "{route}");
            assert_eq!(body.as_array().unwrap().len(), 2);
            assert_eq!(body[0]["path"], format!("{dir}/a"));
        }
        assert_eq!(call(&app, "DELETE", &format!("/files?path={dir}/a")).await.0, 204);
        assert_eq!(call(&app, "DELETE", &format!("/files/?path={dir}/b")).await.0, 204);
        let (status, body) = call(&app, "DELETE", &format!("/files/?path={dir}/b")).await;
        assert_eq!((status, body["code"].as_str()), (404, Some("FILE_NOT_FOUND")));
        let (status, body) = call(&app, "GET", "/files?depth=0").await;
        assert_eq!(
            (status, body["message"].as_str()),
            (400, Some("bad request: depth must be an integer >= 1"))
        );
        let (status, body) = call(&app, "GET", "/files/info").await;
        assert_eq!((status, body["message"].as_str()), (400, Some("bad request: path is required")));
        let (status, body) = call(&app, "GET", "/swagger/doc.json").await;
        assert_eq!(status, 200);
        for (path, method) in [
            ("/files", "get"),
            ("/files", "delete"),
            ("/files/info", "get"),
            ("/files/folder", "post"),
            ("/files/move", "post"),
            ("/files/permissions", "post"),
            ("/files/replace", "post"),
        ] {
            assert!(body["paths"][path].get(method).is_some(), "{method} {path} missing from the document");
        }
    }
}
