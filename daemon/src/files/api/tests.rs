//! The `/files` routes in process: rejections, raw-byte names end to end, error mapping, and
//! what the OpenAPI document says.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use axum::Router;
use axum::http::Request;
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::*;
use crate::extract::decode;

// ------------------------------------------------------------------------------ helpers

fn state() -> AppState {
    let mut vars = std::collections::HashMap::new();
    vars.insert("DAYTONA_SANDBOX_ID".to_string(), "t".to_string());
    let cfg = crate::config::from_env(&vars).unwrap();
    let env = crate::env::ChildEnv::new([("HOME".into(), "/tmp".into())]);
    AppState::new(cfg, env, "/".into())
}

/// The area's routes as the server mounts them: with state and the error envelope.
fn app() -> Router {
    let (router, _) = routes().split_for_parts();
    router.with_state(state()).layer(axum::middleware::from_fn(crate::error::envelope_layer))
}

struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

async fn send(app: &Router, method: &str, uri: &str, body: impl Into<Body>) -> Answer {
    let req = Request::builder().method(method).uri(uri).body(body.into()).unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
    Answer { status, headers, body }
}

async fn call(app: &Router, method: &str, uri: &str) -> (u16, serde_json::Value) {
    let a = send(app, method, uri, Body::empty()).await;
    (a.status, a.json())
}

/// Percent-encodes every byte that is not unreserved (or `/`), so raw bytes reach the query.
fn q(path: &[u8]) -> String {
    path.iter()
        .map(|&b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn bytes_of(p: &Path) -> &[u8] {
    p.as_os_str().as_bytes()
}

// --------------------------------------------------------------------------- rejections

/// Every route that takes a path in its query, with what else it needs; `{}` is the path.
const PATH_ROUTES: &[(&str, &str)] = &[
    ("GET", "/files?path={}"),
    ("GET", "/files/?path={}"),
    ("GET", "/files/info?path={}"),
    ("GET", "/files/download?path={}"),
    ("HEAD", "/files/download?path={}"),
    ("POST", "/files/folder?path={}"),
    ("POST", "/files/move?source={}&destination=/tmp/x"),
    ("POST", "/files/move?source=/tmp/x&destination={}"),
    ("POST", "/files/permissions?path={}&mode=644"),
    ("DELETE", "/files?path={}"),
    ("DELETE", "/files/?path={}"),
    ("GET", "/files/find?path={}&pattern=x"),
    ("GET", "/files/search?path={}&pattern=x"),
    ("POST", "/files/upload-v2?path={}"),
    ("POST", "/files/upload?path={}"),
    ("GET", "/files/watch?path={}"),
];

#[tokio::test]
async fn invalid_paths_are_400_invalid_file_path_on_every_route() {
    let app = app();
    let long_name = "a".repeat(300);
    for bad in ["/tmp/a%00b", &format!("/tmp/{long_name}/x")] {
        for (method, template) in PATH_ROUTES {
            let uri = template.replace("{}", bad);
            let a = send(&app, method, &uri, "body").await;
            assert_eq!(a.status, 400, "{method} {uri}");
            if *method == "HEAD" {
                continue;
            }
            let v = a.json();
            assert_eq!(v["code"], "INVALID_FILE_PATH", "{method} {uri}: {v}");
            assert!(v["message"].as_str().unwrap().starts_with("invalid file path: "), "{v}");
        }
    }
    // The defect as filed: find and search answered 200 [] for a NUL in the path.
    let (status, v) = call(&app, "GET", "/files/find?path=/tmp%00x&pattern=a").await;
    assert_eq!((status, v["code"].as_str()), (400, Some("INVALID_FILE_PATH")));
    assert!(v["message"].as_str().unwrap().contains("NUL"), "{v}");
    let (status, _) = call(&app, "GET", "/files/search?path=/tmp%00x&pattern=*").await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn duplicate_and_missing_paths_are_400() {
    let app = app();
    for (method, template) in PATH_ROUTES {
        let uri = template.replace("{}", "/tmp&path=/etc&source=/a&destination=/b");
        let a = send(&app, method, &uri, Body::empty()).await;
        assert_eq!(a.status, 400, "{method} {uri}");
        if *method != "HEAD" {
            let v = a.json();
            assert_eq!(v["code"], "BAD_REQUEST", "{v}");
            assert!(v["message"].as_str().unwrap().contains("duplicate parameter"), "{method} {uri}: {v}");
        }
    }
    let path_required = "bad request: path is required";
    let both_required = "bad request: path and pattern are required";
    for (method, uri, message) in [
        ("GET", "/files/info", path_required),
        ("GET", "/files/info?path=", path_required),
        ("GET", "/files/download?other=1", path_required),
        ("POST", "/files/folder", path_required),
        ("POST", "/files/move?source=/a", "bad request: source and destination paths are required"),
        ("POST", "/files/permissions", path_required),
        ("DELETE", "/files", path_required),
        ("GET", "/files/find?pattern=x", both_required),
        ("GET", "/files/search?path=/tmp", both_required),
        ("POST", "/files/upload-v2", path_required),
        ("POST", "/files/upload", path_required),
        ("GET", "/files/watch", path_required),
    ] {
        let (status, v) = call(&app, method, uri).await;
        assert_eq!((status, v["message"].as_str()), (400, Some(message)), "{method} {uri}");
    }
    // Malformed escapes are refused too, not silently dropped.
    let (status, v) = call(&app, "GET", "/files/info?path=%G0").await;
    assert_eq!(status, 400);
    assert!(v["message"].as_str().unwrap().contains("malformed"), "{v}");
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
    assert_eq!((status, body["message"].as_str()), (400, Some("bad request: depth must be an integer >= 1")));
}

// ------------------------------------------------------------------------ raw-byte names

/// A file named with the bytes FF FE goes through every route under that name: created by each
/// upload, listed, stat'ed, downloaded, found, moved and deleted; nothing is ever written under
/// a U+FFFD spelling.
#[tokio::test]
async fn a_non_utf8_name_round_trips_through_every_route() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let name = b"\xff\xfe";
    let file = dir.join(OsStr::from_bytes(name));
    let raw = [bytes_of(dir), b"/", name].concat();
    let qp = q(&raw);
    let app = app();

    // upload-v2, raw body.
    let a = send(&app, "POST", &format!("/files/upload-v2?path={qp}"), "needle one\n").await;
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    let v = a.json();
    assert_eq!(v["name"], "\u{FFFD}\u{FFFD}");
    assert_eq!(v["path"], format!("{}/\u{FFFD}\u{FFFD}", dir.display()));
    assert_eq!(fs::read(&file).unwrap(), b"needle one\n");
    let names = || -> Vec<Vec<u8>> {
        let mut n: Vec<_> =
            fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().as_bytes().to_vec()).collect();
        n.sort();
        n
    };
    assert_eq!(names(), vec![name.to_vec()], "no U+FFFD twin");

    // Legacy upload, multipart.
    let mp = "--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n\r\nneedle two\n\r\n--B--\r\n";
    let req = Request::builder()
        .method("POST")
        .uri(format!("/files/upload?path={qp}"))
        .header("content-type", "multipart/form-data; boundary=B")
        .body(Body::from(mp))
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(fs::read(&file).unwrap(), b"needle two\n");
    assert_eq!(names(), vec![name.to_vec()]);

    // Bulk upload: the destination is a part body, raw bytes too.
    let mut mp = b"--B\r\nContent-Disposition: form-data; name=\"files[0].path\"\r\n\r\n".to_vec();
    mp.extend_from_slice(&raw);
    mp.extend_from_slice(b"\r\n--B\r\nContent-Disposition: form-data; name=\"files[0].file\"; filename=\"f\"\r\n\r\nneedle three\n\r\n--B--\r\n");
    let req = Request::builder()
        .method("POST")
        .uri("/files/bulk-upload")
        .header("content-type", "multipart/form-data; boundary=B")
        .body(Body::from(mp))
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(fs::read(&file).unwrap(), b"needle three\n");
    assert_eq!(names(), vec![name.to_vec()]);

    // Listing, info, download.
    let (status, v) = call(&app, "GET", &format!("/files?path={}", q(bytes_of(dir)))).await;
    assert_eq!(status, 200);
    assert_eq!(v[0]["name"], "\u{FFFD}\u{FFFD}");
    let (status, v) = call(&app, "GET", &format!("/files/info?path={qp}")).await;
    assert_eq!((status, v["name"].as_str(), v["size"].as_u64()), (200, Some("\u{FFFD}\u{FFFD}"), Some(13)));
    let a = send(&app, "GET", &format!("/files/download?path={qp}"), Body::empty()).await;
    assert_eq!((a.status, a.body.as_slice()), (200, &b"needle three\n"[..]));
    assert_eq!(
        a.headers["content-disposition"],
        "attachment; filename=\"__\"; filename*=utf-8''%EF%BF%BD%EF%BF%BD"
    );

    // Find and search, rooted at the file and at its directory; a raw-byte glob too.
    let shown = format!("{}/\u{FFFD}\u{FFFD}", dir.display());
    for root in [qp.clone(), q(bytes_of(dir))] {
        let (status, v) = call(&app, "GET", &format!("/files/find?path={root}&pattern=three")).await;
        assert_eq!(status, 200);
        assert_eq!(v[0]["file"], shown.as_str(), "{root}");
    }
    let (_, v) = call(&app, "GET", &format!("/files/search?path={}&pattern=%FF%FE", q(bytes_of(dir)))).await;
    assert_eq!(v["files"], serde_json::json!([shown]));

    // Permissions, move, delete.
    let (status, _) = call(&app, "POST", &format!("/files/permissions?path={qp}&mode=600")).await;
    assert_eq!(status, 200);
    assert_eq!(fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    let moved = [bytes_of(dir), b"/m\xfd"].concat();
    let (status, _) = call(&app, "POST", &format!("/files/move?source={qp}&destination={}", q(&moved))).await;
    assert_eq!(status, 200);
    assert_eq!(names(), vec![b"m\xfd".to_vec()]);
    let (status, _) = call(&app, "DELETE", &format!("/files?path={}", q(&moved))).await;
    assert_eq!(status, 204);
    assert!(names().is_empty());
}

#[tokio::test]
async fn a_file_that_cannot_be_read_is_file_read_failed() {
    let app = app();
    let (status, v) = call(&app, "GET", "/files/download?path=/proc/self/mem").await;
    assert_eq!((status, v["code"].as_str()), (500, Some("FILE_READ_FAILED")), "{v}");
    assert_eq!(v["message"], "failed to read file: read /proc/self/mem: input/output error");
}

// --------------------------------------------------------------------------- error mapping

#[test]
fn os_errors_are_classified() {
    let p = Path::new("/x");
    let e = os_error(&io::Error::from_raw_os_error(libc::ENOENT), p);
    assert_eq!((e.status, e.code), (StatusCode::NOT_FOUND, Some(Code::FileNotFound)));
    assert_eq!(e.message, "/x: no such file or directory");
    let e = os_error(&io::Error::from_raw_os_error(libc::EACCES), p);
    assert_eq!((e.status, e.code), (StatusCode::FORBIDDEN, Some(Code::FileAccessDenied)));
    let e = os_error(&io::Error::from_raw_os_error(libc::ENOTDIR), p);
    assert_eq!((e.status, e.code), (StatusCode::BAD_REQUEST, Some(Code::BadRequest)));
    let e = os_error(&io::Error::from_raw_os_error(libc::ENOENT), Path::new(OsStr::from_bytes(b"/\xff")));
    assert_eq!(e.message, "/\u{FFFD}: no such file or directory");

    let e = ApiError::from(FsError::Exists);
    assert_eq!(
        (e.status, e.message.as_str()),
        (StatusCode::CONFLICT, "conflict: destination already exists")
    );
    let e = ApiError::from(FsError::WrongKind("path must be a file".into()));
    assert_eq!((e.code, e.message.as_str()), (Some(Code::InvalidFilePath), "path must be a file"));
    let e = ApiError::from(FsError::Refused("invalid mode format".into()));
    assert_eq!((e.code, e.message.as_str()), (Some(Code::BadRequest), "bad request: invalid mode format"));
    let e = ApiError::from(FsError::Read { path: "/f".into(), err: io::Error::from_raw_os_error(libc::EIO) });
    assert_eq!((e.status, e.code), (StatusCode::INTERNAL_SERVER_ERROR, Some(Code::FileReadFailed)));
}

#[test]
fn depth_values() {
    assert_eq!(parse_depth(None).unwrap(), 1);
    assert_eq!(parse_depth(Some(b"")).unwrap(), 1);
    assert_eq!(parse_depth(Some(b"3")).unwrap(), 3);
    assert_eq!(parse_depth(Some(b"99999999999")).unwrap(), 99_999_999_999);
    for bad in [&b"0"[..], b"-1", b"x", b"1.5", b" 2", b"99999999999999999999"] {
        let e = parse_depth(Some(bad)).unwrap_err();
        assert_eq!(e.message, "bad request: depth must be an integer >= 1");
    }
}

#[test]
fn file_info_fields() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("f");
    fs::write(&f, "12345").unwrap();
    fs::set_permissions(&f, fs::Permissions::from_mode(0o640)).unwrap();
    let meta = fs::metadata(&f).unwrap();
    let info = FileInfo::from_metadata(b"f", &meta, &TimeZone::UTC);
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

#[test]
fn bulk_part_errors() {
    let os = |errno, op| bulk_error("/p", &BulkError::Os { op, err: io::Error::from_raw_os_error(errno) });
    let e = os(libc::ENOENT, "open");
    assert_eq!(
        (e.status, e.code, e.message.as_str()),
        (StatusCode::NOT_FOUND, Some(Code::FileNotFound), "file not found: /p")
    );
    let e = os(libc::EACCES, "open");
    assert_eq!((e.code, e.message.as_str()), (Some(Code::FileAccessDenied), "permission denied: /p"));
    let e = os(libc::EINVAL, "open");
    assert_eq!((e.code, e.message.as_str()), (Some(Code::InvalidFilePath), "invalid file path: /p"));
    let e = os(libc::ELOOP, "open");
    assert_eq!((e.status, e.code), (StatusCode::INTERNAL_SERVER_ERROR, Some(Code::FileReadFailed)));
    assert_eq!(e.message, "failed to open file: open /p: too many levels of symbolic links");
    let e = os(libc::EIO, "stat");
    assert_eq!(e.message, "failed to access file: stat /p: input/output error");
    let (_, item) = bulk_item("/a\0b".into());
    assert!(matches!(item, Err(BulkError::Invalid(ref m)) if m.contains("NUL")), "{item:?}");
    let (_, item) = bulk_item(format!("/{}", "n".repeat(256)));
    assert!(matches!(item, Err(BulkError::Invalid(_))), "{item:?}");
}

#[test]
fn bulk_request_validation() {
    let paths = |body: &[u8]| bulk_paths(decode::<FilesDownloadRequest>(body).map(Json));
    assert_eq!(paths(br#"{"paths":["a","b"]}"#).unwrap(), vec!["a", "b"]);
    for bad in [&b""[..], b"{}", br#"{"paths":[]}"#, br#"{"paths":null}"#, br#"{"paths":[1]}"#, b"[", b"[]"] {
        let e = paths(bad).unwrap_err();
        assert_eq!((e.status, e.code), (StatusCode::BAD_REQUEST, Some(Code::BadRequest)));
        assert_eq!(e.message, r#"bad request: request body must be {"paths": [ ... ]} and non-empty"#);
    }
    let e = bulk_paths(Err(crate::extract::Rejection::too_large(10))).unwrap_err();
    assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE);
}

/// The whole bulk answer: file parts, an empty file, error parts in the shared envelope.
#[tokio::test]
async fn bulk_framing_files_and_error_envelopes() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("a.txt"), b"hello").unwrap();
    fs::write(dir.path().join("empty.bin"), b"").unwrap();
    fs::create_dir(dir.path().join("sub")).unwrap();
    let p = |n: &str| format!("{}/{n}", dir.path().display());
    let app = app();
    let body =
        serde_json::json!({"paths": [p("a.txt"), p("empty.bin"), p("missing"), "", p("sub"), "/x\u{0}y"]});
    let a = send(&app, "POST", "/files/bulk-download", body.to_string()).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.headers["content-type"], "multipart/form-data; boundary=DAYTONA-FILE-BOUNDARY");
    let text = String::from_utf8_lossy(&a.body).into_owned();
    let b = download::BULK_BOUNDARY;
    let (pa, pe) = (p("a.txt"), p("empty.bin"));
    let enc = |s: &str| download::rfc5987_filename(s);
    let start = format!(
        "--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{pa}\"; filename*=utf-8''{}\r\n\
         Content-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello\
         \r\n--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{pe}\"; filename*=utf-8''{}\r\n\
         Content-Length: 0\r\nContent-Type: application/octet-stream\r\n\r\n",
        enc(&pa),
        enc(&pe)
    );
    assert!(text.starts_with(&start), "{text}");
    assert!(text.ends_with(&format!("\r\n--{b}--\r\n")), "{text}");
    let error = |path: &str| -> serde_json::Value {
        let head = format!(
            "filename*=utf-8''{}\r\nContent-Type: application/json; charset=utf-8\r\n\r\n",
            enc(path)
        );
        let at =
            text.find(&head).unwrap_or_else(|| panic!("no error part for {path:?}: {text}")) + head.len();
        let end = text[at..].find("\r\n--").unwrap();
        serde_json::from_str(&text[at..at + end]).unwrap()
    };
    let v = error(&p("missing"));
    let mut keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(keys, ["code", "message", "method", "path", "source", "statusCode", "timestamp"]);
    assert_eq!((v["statusCode"].as_u64(), v["code"].as_str()), (Some(404), Some("FILE_NOT_FOUND")));
    assert_eq!(v["message"], format!("file not found: {}", p("missing")));
    assert_eq!((v["path"].as_str(), v["method"].as_str()), (Some(p("missing").as_str()), Some("POST")));
    assert_eq!(v["source"], "DAYTONA_DAEMON");
    assert!(v["timestamp"].as_str().unwrap().ends_with('Z'), "{v}");
    let v = error("");
    assert_eq!((v["statusCode"].as_u64(), v["code"].as_str()), (Some(400), Some("INVALID_FILE_PATH")));
    assert_eq!(v["message"], "invalid file path: path is empty");
    let v = error(&p("sub"));
    assert_eq!(v["message"], format!("invalid file path: path points to a directory: {}", p("sub")));
    let v = error("/x\u{0}y");
    assert_eq!(v["code"], "INVALID_FILE_PATH");
    assert!(v["message"].as_str().unwrap().contains("NUL"), "{v}");

    let a = send(&app, "POST", "/files/bulk-download", r#"{"paths": []}"#).await;
    assert_eq!((a.status, a.json()["code"].as_str()), (400, Some("BAD_REQUEST")));
}

#[test]
fn watch_parameters_protocols_and_errors() {
    assert_eq!(parse_bool(None), Some(false));
    assert_eq!(parse_bool(Some(b"true")), Some(true));
    assert_eq!(parse_bool(Some(b"0")), Some(false));
    assert_eq!(parse_bool(Some(b"yes")), None);
    let offered = ["chat", " X-Daytona-SDK-Version~0.226.1"];
    assert_eq!(select_protocol(offered.into_iter()), Some("X-Daytona-SDK-Version~0.226.1"));
    assert_eq!(select_protocol(["chat"].into_iter()), None);

    let e = watch_error(notify::Error::path_not_found(), Path::new("/nope"));
    assert_eq!((e.status, e.code), (StatusCode::NOT_FOUND, Some(Code::FileNotFound)));
    let e = watch_error(notify::Error::io(io::Error::from_raw_os_error(libc::EACCES)), Path::new("/x"));
    assert_eq!((e.status, e.code), (StatusCode::FORBIDDEN, Some(Code::FileAccessDenied)));
    let e = watch_error(notify::Error::new(notify::ErrorKind::MaxFilesWatch), Path::new("/x"));
    assert_eq!(e.status, StatusCode::BAD_REQUEST);
    assert!(e.message.contains("max_user_watches"));
}

#[tokio::test]
async fn a_plain_request_to_watch_is_400_after_the_path_checks() {
    let tmp = tempfile::tempdir().unwrap();
    let app = app();
    let (status, v) = call(&app, "GET", &format!("/files/watch?path={}", tmp.path().display())).await;
    assert_eq!(status, 400);
    assert!(v["message"].as_str().unwrap().contains("WebSocket"), "{v}");
    let (status, v) = call(&app, "GET", &format!("/files/watch?path={}/missing", tmp.path().display())).await;
    assert_eq!((status, v["code"].as_str()), (404, Some("FILE_NOT_FOUND")));
}

// ------------------------------------------------------------------------------- OpenAPI

#[test]
fn the_document_tells_the_truth() {
    let (_, doc) = routes().split_for_parts();
    let doc = serde_json::to_value(&doc).unwrap();
    let op = |path: &str, method: &str| doc["paths"][path][method].clone();
    let param = |op: &serde_json::Value, name: &str| -> serde_json::Value {
        op["parameters"].as_array().unwrap().iter().find(|p| p["name"] == name).cloned().unwrap_or_default()
    };
    let all = [
        ("/files", "get"),
        ("/files", "delete"),
        ("/files/info", "get"),
        ("/files/folder", "post"),
        ("/files/move", "post"),
        ("/files/permissions", "post"),
        ("/files/replace", "post"),
        ("/files/find", "get"),
        ("/files/search", "get"),
        ("/files/download", "get"),
        ("/files/bulk-download", "post"),
        ("/files/bulk-upload", "post"),
        ("/files/upload-v2", "post"),
        ("/files/upload", "post"),
        ("/files/watch", "get"),
    ];
    for (path, method) in all {
        let o = op(path, method);
        assert!(o.is_object(), "{method} {path} missing from the document");
        assert!(o["responses"]["400"].is_object(), "{method} {path} does not document its 400");
    }
    for (path, method) in all.iter().filter(|(p, _)| {
        !["/files", "/files/replace", "/files/bulk-download", "/files/bulk-upload"].contains(p)
    }) {
        let o = op(path, method);
        let name = if *path == "/files/move" { "source" } else { "path" };
        assert_eq!(param(&o, name)["required"], true, "{method} {path}: `{name}` must be required");
    }
    assert_eq!(param(&op("/files", "delete"), "path")["required"], true);
    let list = op("/files", "get");
    assert_eq!(param(&list, "path")["required"], false);
    assert_eq!(param(&list, "depth")["schema"]["minimum"], 1, "{list}");
    assert_eq!(param(&op("/files/move", "post"), "destination")["required"], true);
    assert!(op("/files/move", "post")["responses"]["409"].is_object());
    for (path, method) in [
        ("/files/info", "get"),
        ("/files/download", "get"),
        ("/files", "delete"),
        ("/files/permissions", "post"),
        ("/files/watch", "get"),
        ("/files", "get"),
    ] {
        let o = op(path, method);
        assert!(o["responses"]["403"].is_object() && o["responses"]["404"].is_object(), "{method} {path}");
    }
    for path in ["/files/replace", "/files/bulk-download"] {
        assert!(op(path, "post")["responses"]["413"].is_object(), "{path} takes JSON: 413");
    }
    assert!(op("/files/download", "get")["responses"]["500"].is_object(), "FILE_READ_FAILED");
    assert_eq!(param(&op("/files/find", "get"), "pattern")["required"], true);
    // JSON bodies: what is required is not nullable either (null is refused like absence).
    let schema = |name: &str| doc["components"]["schemas"][name].clone();
    let replace = schema("ReplaceRequest");
    assert_eq!(replace["required"], serde_json::json!(["files", "pattern", "newValue"]), "{replace}");
    assert_eq!(replace["properties"]["files"]["type"], "array", "{replace}");
    assert_eq!(replace["properties"]["pattern"]["minLength"], 1, "{replace}");
    let bulk = schema("FilesDownloadRequest");
    assert_eq!(
        (bulk["required"].clone(), bulk["properties"]["paths"]["minItems"].clone()),
        (serde_json::json!(["paths"]), 1.into())
    );
}
