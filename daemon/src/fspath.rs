//! File paths, once for every route that takes one (`/files`, `/git`, watch, uploads, and the
//! areas to come): Go's `filepath` Clean, Join, Abs, Base and Dir on raw bytes, the checks a
//! requested path must pass, and the extractors that take a path from the query string without
//! losing its bytes.
//!
//! Paths are bytes, not text: a Linux file name may be any bytes but `/` and NUL, and a client
//! that sends `%FF` in a path means the byte 0xFF. Every route therefore sees the same name,
//! whether it lists, reads, writes, watches or deletes it.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;

use crate::error::{ApiError, Code};

/// The longest path the kernel accepts (`PATH_MAX` less the NUL).
pub const MAX_PATH: usize = 4095;
/// The longest file name the kernel accepts (`NAME_MAX`).
pub const MAX_NAME: usize = 255;

/// Go's `filepath.Clean`: collapse slashes, drop `.`, resolve `..` lexically; `.` for nothing.
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

/// Go's `filepath.Join(base, rel)`: the joined path, cleaned (empty elements are skipped).
pub fn join(base: &[u8], rel: &[u8]) -> Vec<u8> {
    match (base.is_empty(), rel.is_empty()) {
        (true, true) => Vec::new(),
        (true, false) => clean(rel),
        (false, true) => clean(base),
        (false, false) => {
            let mut joined = base.to_vec();
            joined.push(b'/');
            joined.extend_from_slice(rel);
            clean(&joined)
        }
    }
}

/// Go's `filepath.Abs`: `path` against `cwd` when relative, cleaned.
pub fn abs(path: &[u8], cwd: &Path) -> PathBuf {
    let out = if path.starts_with(b"/") { clean(path) } else { join(cwd.as_os_str().as_bytes(), path) };
    PathBuf::from(OsString::from_vec(out))
}

/// Go's `filepath.Base`: the last element, trailing slashes ignored; `/` for the root and `.`
/// for nothing.
pub fn base(path: &[u8]) -> &[u8] {
    if path.is_empty() {
        return b".";
    }
    let mut end = path.len();
    while end > 0 && path[end - 1] == b'/' {
        end -= 1;
    }
    if end == 0 {
        return b"/";
    }
    let trimmed = &path[..end];
    match trimmed.iter().rposition(|b| *b == b'/') {
        Some(i) => &trimmed[i + 1..],
        None => trimmed,
    }
}

/// Go's `filepath.Dir`: everything before the last element, cleaned; `.` when there is no
/// slash, `/` for the root.
pub fn dir(path: &[u8]) -> Vec<u8> {
    match path.iter().rposition(|b| *b == b'/') {
        None => b".".to_vec(),
        Some(i) => clean(&path[..=i]),
    }
}

/// A path as an `OsStr`, without any conversion.
pub fn os(path: &[u8]) -> &OsStr {
    OsStr::from_bytes(path)
}

/// Bytes as text for messages and JSON: invalid UTF-8 replaced byte by byte (as Go's JSON
/// encoder does), so the client sees one U+FFFD per bad byte.
pub fn display(path: &[u8]) -> String {
    crate::text::lossy_per_byte(path)
}

/// Why a requested path is refused before it reaches the file system.
pub fn check(path: &[u8]) -> Result<(), ApiError> {
    let invalid = |why: &str| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            Code::InvalidFilePath,
            format!("invalid file path: {why}: {}", display(&path[..path.len().min(256)])),
        )
    };
    if path.contains(&0) {
        return Err(invalid("a path cannot contain a NUL byte"));
    }
    if path.len() > MAX_PATH {
        return Err(invalid(&format!("longer than {MAX_PATH} bytes")));
    }
    if path.split(|b| *b == b'/').any(|name| name.len() > MAX_NAME) {
        return Err(invalid(&format!("a file name is longer than {MAX_NAME} bytes")));
    }
    Ok(())
}

/// Whether a process can start in `dir`: it exists, is a directory, and may be entered.
pub fn usable_dir(dir: &Path) -> std::io::Result<()> {
    if !std::fs::metadata(dir)?.is_dir() {
        return Err(std::io::Error::from_raw_os_error(libc::ENOTDIR));
    }
    rustix::fs::access(dir, rustix::fs::Access::EXEC_OK).map_err(std::io::Error::from)
}

/// The answer for a working directory (`what`, e.g. `cwd`) a process cannot start in: 404
/// `FILE_NOT_FOUND` when it is missing, 403 `FILE_ACCESS_DENIED` when it cannot be entered,
/// 400 otherwise (not a directory, a link loop, …), each naming it.
pub fn dir_error(what: &str, dir: &Path, error: &std::io::Error) -> ApiError {
    let detail =
        format!("{what} {}: {}", display(dir.as_os_str().as_bytes()), crate::text::os_error_text(error));
    match error.kind() {
        std::io::ErrorKind::NotFound => ApiError::new(StatusCode::NOT_FOUND, Code::FileNotFound, detail),
        std::io::ErrorKind::PermissionDenied => {
            ApiError::new(StatusCode::FORBIDDEN, Code::FileAccessDenied, detail)
        }
        _ => ApiError::bad_request(detail),
    }
}

/// A requested path that passed [`check`]: as the client spelled it (for answers that echo
/// it) and made absolute against the daemon's working directory (for the file system).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePath {
    pub raw: Vec<u8>,
    pub abs: PathBuf,
}

impl FilePath {
    /// Checks `raw` and resolves it against `work_dir`; an empty path is refused with
    /// `missing` (routes word it their own way).
    pub fn parse(raw: &[u8], work_dir: &Path, missing: &str) -> Result<FilePath, ApiError> {
        if raw.is_empty() {
            return Err(ApiError::bad_request(missing));
        }
        check(raw)?;
        Ok(FilePath { raw: raw.to_vec(), abs: abs(raw, work_dir) })
    }

    /// The same for a path that came as text (a JSON field).
    pub fn parse_str(raw: &str, work_dir: &Path, missing: &str) -> Result<FilePath, ApiError> {
        Self::parse(raw.as_bytes(), work_dir, missing)
    }

    /// The path as the client spelled it, for messages.
    pub fn shown(&self) -> String {
        display(&self.raw)
    }
}

/// What a state must offer for paths to be resolved: the daemon's working directory.
pub trait WorkDir {
    fn work_dir(&self) -> &Path;
}

/// The `path` query parameter, required, as a [`FilePath`].
impl<S: WorkDir + Send + Sync> FromRequestParts<S> for FilePath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let query = RawQuery::parse(parts.uri.query().unwrap_or(""))?;
        query.file_path("path", state.work_dir(), "path is required")
    }
}

/// Query parameters with their values as raw bytes (paths need not be UTF-8). A repeated key
/// is refused, as the typed [`crate::extract::Query`] does; a malformed escape is a 400.
#[derive(Debug, Default, Clone)]
pub struct RawQuery(Vec<(Vec<u8>, Vec<u8>)>);

impl RawQuery {
    pub fn parse(query: &str) -> Result<Self, ApiError> {
        let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        // A set, not a scan of `pairs`: a long query of distinct keys must stay linear.
        let mut seen = std::collections::HashSet::new();
        for pair in query.split('&') {
            if pair.is_empty() {
                continue;
            }
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let (Some(k), Some(v)) = (unescape(k), unescape(v)) else {
                return Err(ApiError::bad_request(format!("invalid query: malformed escape in {pair:?}")));
            };
            if !seen.insert(k.clone()) {
                return Err(ApiError::bad_request(format!(
                    "invalid query: duplicate parameter `{}`",
                    display(&k)
                )));
            }
            pairs.push((k, v));
        }
        Ok(RawQuery(pairs))
    }

    /// The value of `key`, when present (possibly empty).
    pub fn get(&self, key: &str) -> Option<&[u8]> {
        self.0.iter().find(|(k, _)| k == key.as_bytes()).map(|(_, v)| v.as_slice())
    }

    /// A non-empty value of `key` as text (invalid UTF-8 replaced per byte).
    pub fn text(&self, key: &str) -> Option<String> {
        self.get(key).filter(|v| !v.is_empty()).map(display)
    }

    /// A required path parameter, checked and resolved.
    pub fn file_path(&self, key: &str, work_dir: &Path, missing: &str) -> Result<FilePath, ApiError> {
        FilePath::parse(self.get(key).unwrap_or_default(), work_dir, missing)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RawQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        RawQuery::parse(parts.uri.query().unwrap_or(""))
    }
}

/// Percent-decoding to bytes (`+` is a space, as in forms); `None` for a malformed escape.
fn unescape(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = b.get(i + 1..i + 3)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_like_go() {
        for (input, want) in [
            ("", "."),
            ("/", "/"),
            ("//a//b/", "/a/b"),
            ("a/./b/..", "a"),
            ("../../x", "../../x"),
            ("/../x", "/x"),
            ("a/../..", ".."),
            ("./", "."),
        ] {
            assert_eq!(clean(input.as_bytes()), want.as_bytes(), "{input:?}");
        }
    }

    #[test]
    fn join_abs_base_dir_like_go() {
        assert_eq!(join(b"/a", b"../b"), b"/b");
        assert_eq!(join(b"", b"x/"), b"x");
        assert_eq!(join(b"a", b""), b"a");
        assert_eq!(abs(b"x/../y", Path::new("/w")), PathBuf::from("/w/y"));
        assert_eq!(abs(b"/x/", Path::new("/w")), PathBuf::from("/x"));
        for (p, b) in [("/a/b/", "b"), ("/", "/"), ("", "."), ("c", "c"), ("//", "/")] {
            assert_eq!(base(p.as_bytes()), b.as_bytes(), "{p:?}");
        }
        for (p, d) in [("/a/b", "/a"), ("/a", "/"), ("a", "."), ("a/b/", "a/b"), ("//x", "/")] {
            assert_eq!(dir(p.as_bytes()), d.as_bytes(), "{p:?}");
        }
    }

    #[test]
    fn usable_dirs_and_their_errors() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(usable_dir(tmp.path()).is_ok());
        let file = tmp.path().join("f");
        std::fs::write(&file, "").unwrap();
        let e = usable_dir(&file).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOTDIR));
        assert_eq!(dir_error("cwd", &file, &e).status, StatusCode::BAD_REQUEST);
        let missing = tmp.path().join("missing");
        let e = usable_dir(&missing).unwrap_err();
        let api = dir_error("cwd", &missing, &e);
        assert_eq!((api.status, api.code), (StatusCode::NOT_FOUND, Some(Code::FileNotFound)));
        assert!(api.message.contains("missing: no such file or directory"), "{}", api.message);
        assert_eq!(usable_dir(&file.join("below")).unwrap_err().raw_os_error(), Some(libc::ENOTDIR));
    }

    #[test]
    fn raw_bytes_survive() {
        let q = RawQuery::parse("path=%FF%FEname&x=a+b").unwrap();
        assert_eq!(q.get("path").unwrap(), b"\xff\xfename");
        assert_eq!(q.text("x").unwrap(), "a b");
        let p = q.file_path("path", Path::new("/w"), "path is required").unwrap();
        assert_eq!(p.abs.as_os_str().as_bytes(), b"/w/\xff\xfename");
        assert_eq!(p.shown(), "\u{fffd}\u{fffd}name");
    }

    #[test]
    fn bad_paths_are_400s_naming_the_problem() {
        let w = Path::new("/w");
        let e = FilePath::parse(b"", w, "path is required").unwrap_err();
        assert_eq!(
            (e.status, e.message.as_str()),
            (StatusCode::BAD_REQUEST, "bad request: path is required")
        );
        let e = FilePath::parse(b"/tmp\0x", w, "m").unwrap_err();
        assert_eq!(e.code, Some(Code::InvalidFilePath));
        assert!(e.message.contains("NUL"), "{}", e.message);
        let long = vec![b'a'; 300];
        assert!(FilePath::parse(&long, w, "m").unwrap_err().message.contains("file name is longer"));
        let deep = b"a/".repeat(2100);
        assert!(FilePath::parse(&deep, w, "m").unwrap_err().message.contains("longer than 4095"));
        assert!(RawQuery::parse("path=a&path=b").unwrap_err().message.contains("duplicate"));
        assert!(RawQuery::parse("path=%G1").unwrap_err().message.contains("malformed"));
    }
}
