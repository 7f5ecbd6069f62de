//! Router tests of `/lsp` against the scripted language server the end-to-end suite uses
//! (`tests/harness/fake_lsp.py`: a script per project, every message logged): every error path,
//! the document sync, crashes, timeouts, oversized answers and the server limit.
//! The real servers (pylsp, pyright, typescript-language-server) are exercised end to end
//! through the official SDK in the Python suite.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::lsp::Lsp;
use crate::lsp::languages::Languages;
use crate::reaper::Reaper;
use crate::testing::TestApp;

const FAKE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/harness/fake_lsp.py");

struct Fixture {
    app: TestApp,
    dir: tempfile::TempDir,
}

impl Fixture {
    /// Routes where language `fake` runs the scripted server; `script` is what it answers (see
    /// the harness file), the same for every project of the fixture.
    fn new(script: Value, max_servers: &str, options: Option<lsp_bridge::Options>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let servers = json!({
            "fake": ["python3", FAKE],
            "ghost": ["no-such-language-server-xyz", "--stdio"],
        })
        .to_string();
        let vars = [("DAYTONA_LSP_SERVERS", servers.as_str()), ("DAYTONA_LSP_MAX_SERVERS", max_servers)];
        let app = TestApp::with(super::routes(), &vars, |state| {
            if let Some(options) = options {
                let lsp = Lsp::new(
                    Languages::new(state.config.lsp_servers.clone()),
                    state.config.lsp_max_servers,
                    state.env.clone(),
                    Reaper::global(),
                )
                .with_options(options);
                state.lsp = Arc::new(lsp);
            }
        });
        for project in [dir.path().join("proj"), dir.path().to_path_buf()] {
            std::fs::create_dir_all(project.join(".fake-lsp")).unwrap();
            std::fs::write(project.join(".fake-lsp/script.json"), script.to_string()).unwrap();
        }
        Fixture { app, dir }
    }

    fn project(&self) -> String {
        self.dir.path().join("proj").to_str().unwrap().to_string()
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join("proj").join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// What the server received, in order (the harness logs every message of the project).
    fn log(&self) -> Vec<Value> {
        let log = self.dir.path().join("proj/.fake-lsp/log.jsonl");
        std::fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn methods(&self) -> Vec<String> {
        self.log().iter().filter_map(|m| m["method"].as_str().map(String::from)).collect()
    }

    async fn post(&self, route: &str, body: Value) -> crate::testing::Answer {
        self.app.send("POST", &format!("/lsp/{route}"), body.to_string()).await
    }

    async fn start(&self, project: &str) -> crate::testing::Answer {
        self.post("start", json!({"languageId": "fake", "pathToProject": project})).await
    }

    async fn complete(&self, file: &Path) -> crate::testing::Answer {
        self.post(
            "completions",
            json!({"languageId": "fake", "pathToProject": self.project(), "uri": uri(file),
                   "position": {"line": 0, "character": 0}}),
        )
        .await
    }

    fn pid(&self, project: &str) -> u32 {
        self.app.state.lsp.server("fake", project).unwrap().pid()
    }
}

fn uri(file: &Path) -> String {
    format!("file://{}", file.display())
}

fn labels(v: &Value) -> Vec<String> {
    v["items"].as_array().unwrap().iter().map(|i| i["label"].as_str().unwrap().to_string()).collect()
}

fn alive(pid: u32) -> bool {
    // A zombie is gone as far as anyone can tell; /proc keeps it until reaped.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| s.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')))
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..100 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} did not happen within 5 s");
}

#[tokio::test]
async fn bad_requests_name_what_is_wrong() {
    let f = Fixture::new(json!({}), "16", None);
    let p = f.project();
    let a = f.post("start", json!({"pathToProject": p})).await;
    assert!(a.envelope(StatusCode::BAD_REQUEST, "INVALID_REQUEST_BODY").contains("languageId is required"));
    let a = f.post("start", json!({"languageId": "fake"})).await;
    assert!(
        a.envelope(StatusCode::BAD_REQUEST, "INVALID_REQUEST_BODY").contains("pathToProject is required")
    );
    let a = f.post("start", json!({"languageId": "py thon", "pathToProject": p})).await;
    assert!(a.envelope(StatusCode::BAD_REQUEST, "BAD_REQUEST").contains("invalid language id"));
    let a = f.post("start", json!({"languageId": "cobol", "pathToProject": p})).await;
    let msg = a.envelope(StatusCode::BAD_REQUEST, "LSP_LANGUAGE_UNSUPPORTED");
    assert!(
        msg.contains("\"cobol\"") && msg.contains("fake, ghost, javascript, python, typescript"),
        "{msg}"
    );
    let a = f.post("start", json!({"languageId": "ghost", "pathToProject": p})).await;
    let msg = a.envelope(StatusCode::BAD_REQUEST, "LSP_SERVER_MISSING");
    assert!(msg.contains("ghost") && msg.contains("no-such-language-server-xyz --stdio"), "{msg}");
    let missing = format!("{p}/nope");
    let a = f.post("start", json!({"languageId": "fake", "pathToProject": missing})).await;
    assert!(a.envelope(StatusCode::NOT_FOUND, "FILE_NOT_FOUND").contains("nope"));
    let file = f.file("a.py", "x\n");
    let a = f.post("start", json!({"languageId": "fake", "pathToProject": file})).await;
    assert!(a.envelope(StatusCode::BAD_REQUEST, "BAD_REQUEST").contains("not a directory"));
    let a = f.complete(&file).await;
    let msg = a.envelope(StatusCode::BAD_REQUEST, "LSP_SERVER_NOT_INITIALIZED");
    assert!(msg.contains("call start first"), "{msg}");
    let a = f.app.get(&format!("/lsp/document-symbols?languageId=fake&pathToProject={p}")).await;
    assert!(a.envelope(StatusCode::BAD_REQUEST, "BAD_REQUEST").contains("uri is required"));
    let a = f.app.get(&format!("/lsp/workspacesymbols?languageId=fake&pathToProject={p}")).await;
    assert!(a.envelope(StatusCode::BAD_REQUEST, "BAD_REQUEST").contains("query is required"));
    // Nothing was started by any of that, and stopping what does not run is fine.
    assert_eq!(f.app.state.lsp.running(), 0);
    assert_eq!(
        f.post("stop", json!({"languageId": "fake", "pathToProject": p})).await.status,
        StatusCode::OK
    );
    assert!(f.log().is_empty(), "{:?}", f.log());
}

/// The server's answers in this test: a completion list with extras to drop, an outline, and no
/// workspace/symbol (MethodNotFound, as pylsp answers).
fn answers() -> Value {
    let range =
        |a: u32, b: u32| json!({"start": {"line": a, "character": 0}, "end": {"line": b, "character": 1}});
    json!({
        "textDocument/completion": {"result": {"isIncomplete": true, "items": [{
            "label": "beta", "kind": 6, "documentation": "plain words",
            "textEdit": {"newText": "dropped", "range": range(0, 0)}}]}},
        "textDocument/documentSymbol": {"result": [{
            "name": "Outer", "kind": 5, "range": range(0, 9), "selectionRange": range(0, 0),
            "children": [{"name": "inner", "kind": 6, "range": range(1, 2), "selectionRange": range(1, 1)}]}]},
        "workspace/symbol": {"error": {"code": -32601, "message": "Method Not Found: workspace/symbol"}},
    })
}

/// The document notifications the server received, as (method, version, text or "").
fn sync_log(f: &Fixture) -> Vec<(String, i64, String)> {
    f.log()
        .iter()
        .filter(|m| m["method"].as_str().is_some_and(|m| m.starts_with("textDocument/did")))
        .map(|m| {
            let p = &m["params"];
            let text =
                p["textDocument"]["text"].as_str().or(p["contentChanges"][0]["text"].as_str()).unwrap_or("");
            let method = m["method"].as_str().unwrap().trim_start_matches("textDocument/").to_string();
            (method, p["textDocument"]["version"].as_i64().unwrap_or(0), text.to_string())
        })
        .collect()
}

#[tokio::test]
async fn documents_follow_the_disk_and_answers_are_normalised() {
    let f = Fixture::new(answers(), "16", None);
    let p = f.project();
    assert_eq!(f.start(&p).await.status, StatusCode::OK);
    let pid = f.pid(&p);
    assert_eq!(f.start(&p).await.status, StatusCode::OK, "start is idempotent");
    assert_eq!(f.pid(&p), pid, "the second start kept the running server");
    let file = f.file("app.py", "alpha\nbeta\n");
    let body = json!({"languageId": "fake", "pathToProject": p, "uri": uri(&file)});
    let a = f.post("did-open", body.clone()).await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);

    let a = f.complete(&file).await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    let v = a.json();
    assert_eq!(labels(&v), ["beta"]);
    assert_eq!(v["isIncomplete"], true);
    let item = &v["items"][0];
    assert_eq!(item["kind"], 6);
    assert_eq!(item["documentation"], json!({"kind": "plaintext", "value": "plain words"}));
    assert!(item.get("textEdit").is_none(), "{item}");

    // Edited on disk after did-open: the full new text goes before the next request.
    std::fs::write(&file, "alpha\ngamma\n").unwrap();
    assert_eq!(f.complete(&file).await.status, StatusCode::OK);
    // Unchanged since: nothing is sent again; a second did-open of an open file is no error.
    assert_eq!(f.post("did-open", body.clone()).await.status, StatusCode::OK);
    assert_eq!(f.complete(&file).await.status, StatusCode::OK);
    // A relative path is the project's file, as the SDKs document.
    let relative = json!({"languageId": "fake", "pathToProject": p, "uri": "file://app.py",
        "position": {"line": 0, "character": 0}});
    assert_eq!(f.post("completions", relative).await.status, StatusCode::OK);
    // A file never opened is opened on the way.
    let other = f.file("other.py", "delta\n");
    assert_eq!(f.complete(&other).await.status, StatusCode::OK);

    let a = f
        .app
        .get(&format!("/lsp/document-symbols?languageId=fake&pathToProject={p}&uri={}", uri(&file)))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    let v = a.json();
    let names: Vec<(&str, i64)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s["kind"].as_i64().unwrap()))
        .collect();
    assert_eq!(names, [("Outer", 5), ("inner", 6)], "the outline is flattened, parents first");
    assert_eq!(v[1]["location"]["uri"], uri(&file));
    assert_eq!(v[1]["location"]["range"]["start"], json!({"line": 1, "character": 0}));

    let a = f.app.get(&format!("/lsp/workspacesymbols?query=x&languageId=fake&pathToProject={p}")).await;
    assert!(
        a.envelope(StatusCode::BAD_REQUEST, "LSP_REQUEST_FAILED")
            .contains("does not support workspace/symbol")
    );

    assert_eq!(f.post("did-close", body.clone()).await.status, StatusCode::OK);
    assert_eq!(f.post("did-close", body.clone()).await.status, StatusCode::OK, "closing twice is fine");
    assert_eq!(
        f.post("stop", json!({"languageId": "fake", "pathToProject": p})).await.status,
        StatusCode::OK
    );
    eventually("the server exit", || !alive(pid)).await;

    let s = |m: &str, v: i64, t: &str| (m.to_string(), v, t.to_string());
    assert_eq!(
        sync_log(&f),
        [
            s("didOpen", 1, "alpha\nbeta\n"),
            s("didChange", 2, "alpha\ngamma\n"),
            s("didOpen", 1, "delta\n"),
            s("didClose", 0, ""),
        ]
    );
    let opened = f.log().into_iter().find(|m| m["method"] == "textDocument/didOpen").unwrap();
    assert_eq!(
        opened["params"]["textDocument"]["languageId"], "fake",
        "the server's language names the document"
    );
    let methods = f.methods();
    let tail: Vec<&str> = methods.iter().rev().take(2).rev().map(String::as_str).collect();
    assert_eq!(tail, ["shutdown", "exit"], "{methods:?}");
    assert_eq!(methods[0], "initialize");
    let a = f.complete(&file).await;
    a.envelope(StatusCode::BAD_REQUEST, "LSP_SERVER_NOT_INITIALIZED");
}

#[tokio::test]
async fn a_killed_server_is_reported_then_started_again() {
    let f = Fixture::new(json!({}), "16", None);
    let p = f.project();
    let file = f.file("a.py", "one\n");
    assert_eq!(f.start(&p).await.status, StatusCode::OK);
    let pid = f.pid(&p);
    // SAFETY: plain syscall on a child this test started.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    eventually("the server exit", || !alive(pid)).await;
    let msg = f.complete(&file).await.envelope(StatusCode::BAD_REQUEST, "LSP_SERVER_NOT_INITIALIZED");
    assert!(msg.contains("killed by signal 9") && msg.contains("call start"), "{msg}");
    assert_eq!(f.app.state.lsp.running(), 0);
    assert_eq!(f.start(&p).await.status, StatusCode::OK);
    assert_ne!(f.pid(&p), pid);
    let a = f.complete(&file).await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    assert_eq!(a.json(), json!({"isIncomplete": false, "items": []}), "a null answer is an empty list");
}

#[tokio::test]
async fn a_crash_during_initialize_is_502_with_its_stderr() {
    let f = Fixture::new(json!({"initialize": {"exit": 3}}), "16", None);
    let msg = f.start(&f.project()).await.envelope(StatusCode::BAD_GATEWAY, "LSP_SERVER_FAILED");
    assert!(
        msg.contains("exited with code 3") && msg.contains("fake-lsp: exiting with 3 on initialize"),
        "{msg}"
    );
    assert_eq!(f.app.state.lsp.running(), 0);
    f.complete(&f.file("a.py", "x")).await.envelope(StatusCode::BAD_REQUEST, "LSP_SERVER_NOT_INITIALIZED");
}

#[tokio::test]
async fn an_unanswered_request_is_408_and_the_server_stays() {
    let options = lsp_bridge::Options { request_timeout: Duration::from_millis(300), ..Default::default() };
    let f = Fixture::new(json!({"textDocument/completion": {"hang": true}}), "16", Some(options));
    let p = f.project();
    let file = f.file("a.py", "x\n");
    assert_eq!(f.start(&p).await.status, StatusCode::OK);
    let msg = f.complete(&file).await.envelope(StatusCode::REQUEST_TIMEOUT, "REQUEST_TIMEOUT");
    assert!(msg.contains("textDocument/completion"), "{msg}");
    let a = f
        .app
        .get(&format!("/lsp/document-symbols?languageId=fake&pathToProject={p}&uri={}", uri(&file)))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
}

#[tokio::test]
async fn an_oversized_answer_is_refused_and_the_next_one_served() {
    let options = lsp_bridge::Options { max_message_bytes: 64 << 10, ..Default::default() };
    let f = Fixture::new(json!({"textDocument/completion": {"big": 200000}}), "16", Some(options));
    let p = f.project();
    let file = f.file("a.py", "x\n");
    assert_eq!(f.start(&p).await.status, StatusCode::OK);
    let msg = f.complete(&file).await.envelope(StatusCode::BAD_REQUEST, "LSP_RESPONSE_TOO_LARGE");
    assert!(msg.contains("65536"), "{msg}");
    let a = f
        .app
        .get(&format!("/lsp/document-symbols?languageId=fake&pathToProject={p}&uri={}", uri(&file)))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
}

#[tokio::test]
async fn the_server_limit_is_429_until_one_stops() {
    let f = Fixture::new(json!({}), "1", None);
    let a = f.project();
    let b = f.dir.path().to_str().unwrap().to_string();
    assert_eq!(f.start(&a).await.status, StatusCode::OK);
    let msg = f.start(&b).await.envelope(StatusCode::TOO_MANY_REQUESTS, "TOO_MANY_REQUESTS");
    assert!(msg.contains("DAYTONA_LSP_MAX_SERVERS"), "{msg}");
    // The running one is not affected by the refusal.
    assert_eq!(f.start(&a).await.status, StatusCode::OK);
    assert_eq!(
        f.post("stop", json!({"languageId": "fake", "pathToProject": a})).await.status,
        StatusCode::OK
    );
    assert_eq!(f.start(&b).await.status, StatusCode::OK);
}

#[tokio::test]
async fn shutdown_stops_every_server() {
    let f = Fixture::new(json!({}), "16", None);
    let a = f.project();
    let b = f.dir.path().to_str().unwrap().to_string();
    assert_eq!(f.start(&a).await.status, StatusCode::OK);
    assert_eq!(f.start(&b).await.status, StatusCode::OK);
    let pids = [f.pid(&a), f.pid(&b)];
    f.app.state.lsp.shutdown().await;
    for pid in pids {
        eventually("the server exit", || !alive(pid)).await;
    }
    assert_eq!(f.app.state.lsp.running(), 0);
    for project in [f.dir.path().join("proj"), f.dir.path().to_path_buf()] {
        let log = std::fs::read_to_string(project.join(".fake-lsp/log.jsonl")).unwrap();
        assert!(log.contains("\"method\": \"exit\""), "not asked to exit: {log}");
    }
}

#[test]
fn server_uris_come_back_as_the_clients_write_them() {
    use super::client_uri;
    assert_eq!(client_uri("file:///p/my%20file.py"), "file:///p/my file.py");
    assert_eq!(client_uri("file:///p/%C3%A9%40x%2Fy"), "file:///p/é@x/y");
    assert_eq!(client_uri("file:///p/plain.py"), "file:///p/plain.py");
    // Not UTF-8 once decoded, a NUL, a broken escape, or not a file URI: left alone.
    assert_eq!(client_uri("file:///p/%FF"), "file:///p/%FF");
    assert_eq!(client_uri("file:///p/%00"), "file:///p/%00");
    assert_eq!(client_uri("file:///p/100%"), "file:///p/100%");
    assert_eq!(client_uri("untitled:Untitled-1"), "untitled:Untitled-1");
}
