//! Router tests of `/lsp` against a scripted language server (`testdata/fake_server.py`): every
//! error path, the document sync, crashes, timeouts, oversized answers and the server limit.
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

const FAKE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/lsp/testdata/fake_server.py");

struct Fixture {
    app: TestApp,
    dir: tempfile::TempDir,
}

impl Fixture {
    /// Routes where language `fake` runs the scripted server in `mode`, logging to `log`.
    fn new(mode: &str, max_servers: &str, options: Option<lsp_bridge::Options>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let servers = json!({
            "fake": ["python3", FAKE, mode, log.to_str().unwrap()],
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
        std::fs::create_dir(dir.path().join("proj")).unwrap();
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

    fn log(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("log"))
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
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
    let f = Fixture::new("normal", "16", None);
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

#[tokio::test]
async fn documents_follow_the_disk_and_answers_are_normalised() {
    let f = Fixture::new("normal", "16", None);
    let p = f.project();
    assert_eq!(f.start(&p).await.status, StatusCode::OK);
    let pid = f.pid(&p);
    assert_eq!(f.start(&p).await.status, StatusCode::OK, "start is idempotent");
    assert_eq!(f.pid(&p), pid, "the second start kept the running server");
    let file = f.file("app.tsx", "alpha\nbeta\n");
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

    // Edited on disk after did-open: the next answer is about the new text.
    std::fs::write(&file, "alpha\ngamma\n").unwrap();
    assert_eq!(labels(&f.complete(&file).await.json()), ["gamma"]);
    // Unchanged since: nothing is sent again; a second did-open of an open file is no error.
    assert_eq!(f.post("did-open", body.clone()).await.status, StatusCode::OK);
    assert_eq!(labels(&f.complete(&file).await.json()), ["gamma"]);
    // A relative path is the project's file, as the SDKs document.
    let relative = f
        .post(
            "completions",
            json!({"languageId": "fake", "pathToProject": p, "uri": "file://app.tsx",
        "position": {"line": 0, "character": 0}}),
        )
        .await;
    assert_eq!(labels(&relative.json()), ["gamma"]);
    // A file never opened is opened on the way.
    let other = f.file("other.py", "delta\n");
    assert_eq!(labels(&f.complete(&other).await.json()), ["delta"]);

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

    let name = file.file_name().unwrap().to_str().unwrap();
    let log: Vec<String> = f.log().into_iter().map(|l| l.replace(&uri(&file), name)).collect();
    let seen: Vec<&str> = log.iter().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(
        seen,
        ["initialize", "didOpen", "didChange", "didOpen", "didClose", "shutdown", "exit"],
        "{log:?}"
    );
    // The server's language names the document: only TypeScript's variants go by extension.
    assert_eq!(log[1], "didOpen 1 fake app.tsx", "{log:?}");
    assert_eq!(log[2], "didChange 2 app.tsx", "{log:?}");
    assert!(log[3].contains("other.py"), "{log:?}");
    let a = f.complete(&file).await;
    a.envelope(StatusCode::BAD_REQUEST, "LSP_SERVER_NOT_INITIALIZED");
}

#[tokio::test]
async fn a_killed_server_is_reported_then_started_again() {
    let f = Fixture::new("normal", "16", None);
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
    assert_eq!(labels(&f.complete(&file).await.json()), ["one"]);
}

#[tokio::test]
async fn a_crash_during_initialize_is_502_with_its_stderr() {
    let f = Fixture::new("crash-on-initialize", "16", None);
    let msg = f.start(&f.project()).await.envelope(StatusCode::BAD_GATEWAY, "LSP_SERVER_FAILED");
    assert!(msg.contains("exited with code 3") && msg.contains("cannot find my runtime"), "{msg}");
    assert_eq!(f.app.state.lsp.running(), 0);
    f.complete(&f.file("a.py", "x")).await.envelope(StatusCode::BAD_REQUEST, "LSP_SERVER_NOT_INITIALIZED");
}

#[tokio::test]
async fn an_unanswered_request_is_408_and_the_server_stays() {
    let options = lsp_bridge::Options { request_timeout: Duration::from_millis(300), ..Default::default() };
    let f = Fixture::new("silent-completion", "16", Some(options));
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
    let f = Fixture::new("huge-completion", "16", Some(options));
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
    let f = Fixture::new("normal", "1", None);
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
    let f = Fixture::new("normal", "16", None);
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
    assert_eq!(f.log().iter().filter(|l| *l == "exit").count(), 2, "both were asked to exit: {:?}", f.log());
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
