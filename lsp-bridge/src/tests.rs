//! The client against a scripted fake server over in-memory pipes. The fake frames messages by
//! hand (strictly `Content-Length: N\r\n\r\n`), independently of the client's own reader.

use std::path::Path;
use std::time::{Duration, Instant};

use lsp_types::notification::{
    DidChangeTextDocument, DidCloseTextDocument, DidOpenTextDocument, Initialized,
};
use lsp_types::request::{Completion, Initialize, Shutdown};
use lsp_types::*;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, DuplexStream, duplex};

use crate::{Client, Error, Options, file_uri};

/// The most any single wait in these tests may take before the test fails instead of hanging.
const WAIT: Duration = Duration::from_secs(5);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

struct Fake {
    rd: BufReader<DuplexStream>,
    wr: DuplexStream,
}

impl Fake {
    /// The next message the client sent.
    async fn recv(&mut self) -> Value {
        tokio::time::timeout(WAIT, self.try_recv())
            .await
            .expect("the client sent nothing")
            .expect("the client closed")
    }

    /// The next message, or `None` when the client closed its output.
    async fn try_recv(&mut self) -> Option<Value> {
        let mut length = None;
        loop {
            let mut line = String::new();
            if self.rd.read_line(&mut line).await.unwrap() == 0 {
                return None;
            }
            if line == "\r\n" {
                break;
            }
            let value = line.strip_prefix("Content-Length: ").expect("only Content-Length is sent");
            length = Some(value.strip_suffix("\r\n").unwrap().parse::<usize>().unwrap());
        }
        let mut body = vec![0; length.expect("a Content-Length header")];
        self.rd.read_exact(&mut body).await.unwrap();
        Some(serde_json::from_slice(&body).unwrap())
    }

    async fn send(&mut self, msg: Value) {
        let body = serde_json::to_vec(&msg).unwrap();
        self.send_body(&body).await;
    }

    async fn send_body(&mut self, body: &[u8]) {
        self.send_raw(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes()).await;
        self.send_raw(body).await;
    }

    async fn send_raw(&mut self, bytes: &[u8]) {
        self.wr.write_all(bytes).await.unwrap();
    }

    async fn reply(&mut self, id: &Value, result: Value) {
        self.send(json!({"jsonrpc": "2.0", "id": id, "result": result})).await;
    }
}

/// A client wired to a fake server; also returns the writing end of the server's stderr.
fn start(opts: Options) -> (Client, Fake, DuplexStream) {
    start_with(opts, 1 << 20, 1 << 20)
}

fn start_with(opts: Options, to_server_cap: usize, stderr_cap: usize) -> (Client, Fake, DuplexStream) {
    let (client_in, server_out) = duplex(1 << 20);
    let (client_out, server_in) = duplex(to_server_cap);
    let (stderr_in, stderr_out) = duplex(stderr_cap);
    let client = Client::new(client_in, client_out, Some(stderr_in), opts);
    (client, Fake { rd: BufReader::new(server_in), wr: server_out }, stderr_out)
}

async fn within<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(WAIT, f).await.expect("took too long")
}

fn spawn_raw(
    client: &Client,
    method: &str,
    params: Value,
    timeout: Duration,
) -> tokio::task::JoinHandle<Result<Value, Error>> {
    let (client, method) = (client.clone(), method.to_owned());
    tokio::spawn(async move { client.request_raw(&method, params, timeout).await })
}

fn doc(path: &str) -> TextDocumentIdentifier {
    TextDocumentIdentifier { uri: file_uri(Path::new(path)) }
}

#[tokio::test]
async fn typed_initialize_completion_and_shutdown() {
    let (client, mut fake, _stderr) = start(Options::default());

    let c = client.clone();
    let init = tokio::spawn(async move {
        c.request::<Initialize>(InitializeParams { process_id: Some(42), ..Default::default() }).await
    });
    let req = fake.recv().await;
    assert_eq!(req["jsonrpc"], "2.0");
    assert_eq!(req["method"], "initialize");
    assert_eq!(req["params"]["processId"], 42);
    let first_id = req["id"].as_i64().expect("numeric id");
    fake.reply(
        &req["id"],
        json!({"capabilities": {"completionProvider": {"triggerCharacters": ["."]}}, "serverInfo": {"name": "fake"}}),
    )
    .await;
    let result = within(init).await.unwrap().unwrap();
    assert_eq!(result.server_info.unwrap().name, "fake");
    assert_eq!(result.capabilities.completion_provider.unwrap().trigger_characters.unwrap(), vec!["."]);

    client.notify::<Initialized>(InitializedParams {}).unwrap();
    let note = fake.recv().await;
    assert_eq!(note["method"], "initialized");
    assert!(note.get("id").is_none(), "a notification has no id: {note}");

    let c = client.clone();
    let completion = tokio::spawn(async move {
        c.request::<Completion>(CompletionParams {
            text_document_position: TextDocumentPositionParams {
                text_document: doc("/proj/a b.py"),
                position: Position { line: 3, character: 7 },
            },
            work_done_progress_params: Default::default(),
            partial_result_params: Default::default(),
            context: Some(CompletionContext {
                trigger_kind: CompletionTriggerKind::TRIGGER_CHARACTER,
                trigger_character: Some(".".into()),
            }),
        })
        .await
    });
    let req = fake.recv().await;
    assert_eq!(req["method"], "textDocument/completion");
    assert!(req["id"].as_i64().unwrap() > first_id, "ids increase");
    assert_eq!(req["params"]["textDocument"]["uri"], "file:///proj/a%20b.py");
    assert_eq!(req["params"]["position"], json!({"line": 3, "character": 7}));
    assert_eq!(req["params"]["context"], json!({"triggerKind": 2, "triggerCharacter": "."}));
    fake.reply(&req["id"], json!({"isIncomplete": true, "items": [{"label": "foo", "kind": 3}]})).await;
    match within(completion).await.unwrap().unwrap() {
        Some(CompletionResponse::List(list)) => {
            assert!(list.is_incomplete);
            assert_eq!(list.items[0].label, "foo");
            assert_eq!(list.items[0].kind, Some(CompletionItemKind::FUNCTION));
        }
        other => panic!("unexpected completion answer {other:?}"),
    }

    // `shutdown` has no params: none are sent (not `"params": null`), and `null` decodes as `()`.
    let c = client.clone();
    let shutdown = tokio::spawn(async move { c.request::<Shutdown>(()).await });
    let req = fake.recv().await;
    assert_eq!(req["method"], "shutdown");
    assert!(req.get("params").is_none(), "{req}");
    fake.reply(&req["id"], Value::Null).await;
    within(shutdown).await.unwrap().unwrap();
}

#[tokio::test]
async fn server_requests_are_answered_and_notifications_ignored() {
    let (client, mut fake, _stderr) = start(Options::default());
    let pending = spawn_raw(&client, "custom/slow", json!({"x": 1}), WAIT);
    let req = fake.recv().await;

    fake.send(
        json!({"jsonrpc": "2.0", "method": "window/logMessage", "params": {"type": 3, "message": "hi"}}),
    )
    .await;
    fake.send(json!({"jsonrpc": "2.0", "method": "$/progress", "params": {"token": "t", "value": {"kind": "begin"}}}))
        .await;
    fake.send(json!({"jsonrpc": "2.0", "method": "textDocument/publishDiagnostics", "params": {"uri": "file:///a", "diagnostics": []}}))
        .await;
    let configuration = json!({"items": [{"section": "python"}, {"section": "pylsp"}, {}]});
    fake.send(
        json!({"jsonrpc": "2.0", "id": 7, "method": "workspace/configuration", "params": configuration}),
    )
    .await;
    fake.send(json!({"jsonrpc": "2.0", "id": "s1", "method": "custom/unknown", "params": {}})).await;
    fake.send(json!({"jsonrpc": "2.0", "id": 8, "method": "window/workDoneProgress/create", "params": {"token": "t"}}))
        .await;
    fake.send(json!({"jsonrpc": "2.0", "id": 9, "method": "client/registerCapability", "params": {"registrations": []}}))
        .await;
    fake.send(json!({"jsonrpc": "2.0", "id": 10, "method": "workspace/applyEdit", "params": {"edit": {}}}))
        .await;
    fake.send(json!({"jsonrpc": "2.0", "id": 11, "method": "workspace/workspaceFolders"})).await;

    let answer = fake.recv().await;
    assert_eq!(answer, json!({"jsonrpc": "2.0", "id": 7, "result": [null, null, null]}));
    let answer = fake.recv().await;
    assert_eq!(answer["id"], "s1");
    assert_eq!(answer["error"]["code"], -32601);
    assert!(answer.get("result").is_none());
    assert_eq!(fake.recv().await, json!({"jsonrpc": "2.0", "id": 8, "result": null}));
    assert_eq!(fake.recv().await, json!({"jsonrpc": "2.0", "id": 9, "result": null}));
    assert_eq!(fake.recv().await, json!({"jsonrpc": "2.0", "id": 10, "result": {"applied": false}}));
    assert_eq!(fake.recv().await, json!({"jsonrpc": "2.0", "id": 11, "result": null}));

    assert!(!pending.is_finished(), "notifications must not complete a request");
    fake.reply(&req["id"], json!("done")).await;
    assert_eq!(within(pending).await.unwrap().unwrap(), json!("done"));
}

#[tokio::test]
async fn concurrent_requests_answered_out_of_order() {
    let (client, mut fake, _stderr) = start(Options::default());
    let tasks: Vec<_> = (0..3).map(|n| spawn_raw(&client, "custom/echo", json!({"n": n}), WAIT)).collect();
    let mut requests = Vec::new();
    for _ in 0..3 {
        requests.push(fake.recv().await);
    }
    let mut ids: Vec<i64> = requests.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 3, "distinct ids");
    for req in requests.iter().rev() {
        fake.reply(&req["id"], json!(req["params"]["n"].as_i64().unwrap() * 10)).await;
    }
    for (n, task) in tasks.into_iter().enumerate() {
        assert_eq!(within(task).await.unwrap().unwrap(), json!(n * 10));
    }
}

#[tokio::test]
async fn timeout_sends_cancel_and_a_late_answer_is_dropped() {
    let (client, mut fake, _stderr) = start(Options::default());
    let slow = spawn_raw(&client, "custom/slow", Value::Null, ms(100));
    let req = fake.recv().await;
    assert!(req.get("params").is_none());
    let cancel = fake.recv().await;
    assert_eq!(cancel["method"], "$/cancelRequest");
    assert_eq!(cancel["params"]["id"], req["id"]);
    assert!(cancel.get("id").is_none());
    match within(slow).await.unwrap() {
        Err(Error::Timeout { method, after }) => {
            assert_eq!(method, "custom/slow");
            assert_eq!(after, ms(100));
        }
        other => panic!("{other:?}"),
    }

    fake.reply(&req["id"], json!("late")).await;
    let next = spawn_raw(&client, "custom/next", Value::Null, WAIT);
    let req2 = fake.recv().await;
    assert_ne!(req2["id"], req["id"]);
    fake.reply(&req2["id"], json!("fresh")).await;
    assert_eq!(within(next).await.unwrap().unwrap(), json!("fresh"));
    assert!(format!("{client:?}").contains("pending: 0"), "{client:?}");
}

#[tokio::test]
async fn a_dropped_request_future_is_cancelled_and_forgotten() {
    let (client, mut fake, _stderr) = start(Options::default());
    let gave_up = tokio::time::timeout(ms(50), client.request_raw("custom/slow", Value::Null, WAIT)).await;
    assert!(gave_up.is_err());
    let req = fake.recv().await;
    let cancel = fake.recv().await;
    assert_eq!(cancel["method"], "$/cancelRequest");
    assert_eq!(cancel["params"]["id"], req["id"]);
    assert!(format!("{client:?}").contains("pending: 0"), "{client:?}");
}

#[tokio::test]
async fn error_responses_and_undecodable_results() {
    let (client, mut fake, _stderr) = start(Options::default());
    let failing = spawn_raw(&client, "textDocument/hover", json!({}), WAIT);
    let req = fake.recv().await;
    fake.send(json!({"jsonrpc": "2.0", "id": req["id"], "error": {"code": -32603, "message": "boom"}})).await;
    match within(failing).await.unwrap() {
        Err(Error::Server { method, code, message }) => {
            assert_eq!((method.as_str(), code, message.as_str()), ("textDocument/hover", -32603, "boom"));
        }
        other => panic!("{other:?}"),
    }

    let c = client.clone();
    let init = tokio::spawn(async move { c.request::<Initialize>(InitializeParams::default()).await });
    let req = fake.recv().await;
    fake.reply(&req["id"], json!("not an InitializeResult")).await;
    match within(init).await.unwrap() {
        Err(Error::Decode { method, .. }) => assert_eq!(method, "initialize"),
        other => panic!("{other:?}"),
    }
    assert!(!client.is_closed());
}

fn small_limit() -> Options {
    Options { max_message_bytes: 1024, ..Options::default() }
}

#[tokio::test]
async fn oversized_response_with_its_id_up_front_fails_that_request() {
    let (client, mut fake, _stderr) = start(small_limit());
    let big = spawn_raw(&client, "workspace/symbol", json!({"query": ""}), WAIT);
    let other = spawn_raw(&client, "custom/other", Value::Null, WAIT);
    let req = fake.recv().await;
    let req_other = fake.recv().await;
    let body = format!(r#"{{"jsonrpc":"2.0","id":{},"result":"{}"}}"#, req["id"], "x".repeat(50_000));
    fake.send_body(body.as_bytes()).await;
    match within(big).await.unwrap() {
        Err(Error::ResponseTooLarge { method, size, limit }) => {
            assert_eq!((method.as_str(), size, limit), ("workspace/symbol", body.len(), 1024));
        }
        other => panic!("{other:?}"),
    }
    // The stream is still in sync: the other request and a new one work.
    fake.reply(&req_other["id"], json!(1)).await;
    assert_eq!(within(other).await.unwrap().unwrap(), json!(1));
    let next = spawn_raw(&client, "custom/next", Value::Null, WAIT);
    let req = fake.recv().await;
    fake.reply(&req["id"], json!(2)).await;
    assert_eq!(within(next).await.unwrap().unwrap(), json!(2));
    assert!(!client.is_closed());
}

#[tokio::test]
async fn oversized_response_without_a_visible_id_and_one_request_in_flight() {
    let (client, mut fake, _stderr) = start(small_limit());
    let started = Instant::now();
    let big = spawn_raw(&client, "custom/big", Value::Null, WAIT);
    let req = fake.recv().await;
    // The id comes after the result, as some servers serialise it.
    let body = format!(r#"{{"jsonrpc":"2.0","result":"{}","id":{}}}"#, "x".repeat(50_000), req["id"]);
    fake.send_body(body.as_bytes()).await;
    assert!(matches!(within(big).await.unwrap(), Err(Error::ResponseTooLarge { .. })));
    assert!(started.elapsed() < WAIT / 2, "failed at once, not at the timeout");
}

#[tokio::test]
async fn oversized_response_without_a_visible_id_is_reported_by_the_timeout() {
    let (client, mut fake, _stderr) = start(small_limit());
    let first = spawn_raw(&client, "custom/first", Value::Null, ms(1000));
    let req1 = fake.recv().await;
    let second = spawn_raw(&client, "custom/second", Value::Null, WAIT);
    let req2 = fake.recv().await;
    let body = format!(r#"{{"jsonrpc":"2.0","result":"{}","id":{}}}"#, "x".repeat(50_000), req1["id"]);
    fake.send_body(body.as_bytes()).await;
    fake.reply(&req2["id"], json!("two")).await;
    assert_eq!(within(second).await.unwrap().unwrap(), json!("two"));
    match within(first).await.unwrap() {
        Err(Error::ResponseTooLarge { method, size, limit }) => {
            assert_eq!((method.as_str(), size, limit), ("custom/first", body.len(), 1024));
        }
        other => panic!("{other:?}"),
    }
    // The discarded response was claimed once: the next timeout is a plain timeout.
    let third = spawn_raw(&client, "custom/third", Value::Null, ms(100));
    assert!(matches!(within(third).await.unwrap(), Err(Error::Timeout { .. })));
}

#[tokio::test]
async fn oversized_server_notification_fails_nothing() {
    let (client, mut fake, _stderr) = start(small_limit());
    let waiting = spawn_raw(&client, "custom/wait", Value::Null, WAIT);
    let req = fake.recv().await;
    let body = format!(
        r#"{{"jsonrpc":"2.0","method":"textDocument/publishDiagnostics","params":{{"uri":"file:///a","diagnostics":[{}]}}}}"#,
        vec![
            r#"{"range":{"start":{"line":0,"character":0},"end":{"line":0,"character":1}},"message":"m"}"#;
            200
        ]
        .join(",")
    );
    assert!(body.len() > 1024);
    fake.send_body(body.as_bytes()).await;
    fake.reply(&req["id"], json!("ok")).await;
    assert_eq!(within(waiting).await.unwrap().unwrap(), json!("ok"));
}

#[tokio::test]
async fn eof_mid_request_fails_with_closed_and_the_stderr_tail() {
    let (client, mut fake, mut stderr) = start(Options::default());
    let waiting = spawn_raw(&client, "initialize", json!({}), WAIT);
    fake.recv().await;
    stderr
        .write_all(b"Traceback (most recent call last):\n  ...\nValueError: broken config\n\n")
        .await
        .unwrap();
    drop(stderr);
    drop(fake);
    match within(waiting).await.unwrap() {
        Err(Error::Closed { stderr }) => {
            assert!(stderr.ends_with("ValueError: broken config"), "{stderr:?}");
            assert!(stderr.starts_with("Traceback"), "{stderr:?}");
        }
        other => panic!("{other:?}"),
    }
    within(client.closed()).await;
    assert!(client.is_closed());
    assert!(matches!(client.notify::<Initialized>(InitializedParams {}), Err(Error::Closed { .. })));
    let started = Instant::now();
    let late = client.request_raw("custom/after", Value::Null, WAIT).await;
    assert!(
        matches!(late, Err(Error::Closed { ref stderr }) if stderr.contains("broken config")),
        "{late:?}"
    );
    assert!(started.elapsed() < ms(500));
    assert_eq!(client.stderr_tail(13), "broken config");
}

#[tokio::test]
async fn eof_with_stderr_still_open_does_not_hang() {
    let (client, fake, mut stderr) = start(Options::default());
    stderr.write_all(b"still running\n").await.unwrap();
    tokio::time::sleep(ms(50)).await;
    drop(fake);
    within(client.closed()).await;
    let err = client.request_raw("x", Value::Null, WAIT).await.unwrap_err();
    assert!(matches!(err, Error::Closed { ref stderr } if stderr == "still running"), "{err:?}");
    assert!(err.to_string().contains("still running"), "{err}");
}

#[tokio::test]
async fn malformed_frames_close_the_transport() {
    for bad in [
        &b"Content-Length: abc\r\n\r\n{}"[..],
        b"Content-Length: 3\r\n\r\nxyz",
        b"hello, this is not a header\r\n\r\n",
        b"Content-Type: application/json\r\n\r\n{}",
    ] {
        let (client, mut fake, _stderr) = start(Options::default());
        let waiting = spawn_raw(&client, "custom/x", Value::Null, WAIT);
        fake.recv().await;
        fake.send_raw(bad).await;
        let got = within(waiting).await.unwrap();
        assert!(matches!(got, Err(Error::Closed { .. })), "{:?} gave {got:?}", String::from_utf8_lossy(bad));
        within(client.closed()).await;
        // The client stops writing once closed: the fake sees its input end.
        assert!(within(fake.try_recv()).await.is_none());
    }
}

#[tokio::test]
async fn odd_but_valid_json_is_ignored_without_closing() {
    let (client, mut fake, _stderr) = start(Options::default());
    let waiting = spawn_raw(&client, "custom/x", Value::Null, WAIT);
    let req = fake.recv().await;
    for odd in [
        json!([]),
        json!(42),
        json!(null),
        json!({"jsonrpc": "2.0"}),
        json!({"id": null, "error": {"code": -32700, "message": "parse error"}}),
        json!({"id": {"a": 1}, "result": 1}),
        json!({"id": "abc", "result": 1}),
        json!({"id": 99999, "error": "not an object"}),
        json!({"method": 5, "params": []}),
    ] {
        fake.send(odd).await;
    }
    // Header names in any case, a Content-Type, a stray line end between frames.
    let body = format!(r#"{{"jsonrpc":"2.0","id":{},"result":"answered"}}"#, req["id"]);
    let head = format!(
        "\r\ncontent-length: {}\r\nContent-type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n",
        body.len()
    );
    fake.send_raw(head.as_bytes()).await;
    fake.send_raw(body.as_bytes()).await;
    assert_eq!(within(waiting).await.unwrap().unwrap(), json!("answered"));
    assert!(!client.is_closed());
}

#[tokio::test]
async fn stderr_ring_is_bounded_and_drained_continuously() {
    let opts = Options { stderr_bytes: 100, ..Options::default() };
    // A 64-byte pipe: writing 1 MiB only finishes if the client keeps reading.
    let (client, _fake, mut stderr) = start_with(opts, 1 << 20, 64);
    let mut all = Vec::new();
    for i in 0..60_000 {
        all.extend_from_slice(format!("line {i}\n").as_bytes());
    }
    within(stderr.write_all(&all)).await.unwrap();
    within(async {
        while !client.stderr_tail(100).ends_with("line 59999") {
            tokio::time::sleep(ms(5)).await;
        }
    })
    .await;
    let tail = client.stderr_tail(usize::MAX);
    assert!(tail.len() <= 100, "{} bytes kept", tail.len());
    let expected = String::from_utf8_lossy(&all[all.len() - 100..]).trim().to_owned();
    assert_eq!(tail, expected);
    assert_eq!(client.stderr_tail(11), "line 59999");
    assert_eq!(client.stderr_tail(0), "");
}

#[test]
fn ring_keeps_the_last_bytes_and_never_cuts_a_character_in_half() {
    let mut ring = crate::client::Ring::new(8);
    ring.push(b"abc");
    ring.push(b"defgh");
    assert_eq!(ring.tail(100), "abcdefgh");
    ring.push(b"ij");
    assert_eq!(ring.tail(100), "cdefghij");
    ring.push(b"0123456789abcdef");
    assert_eq!(ring.len(), 8);
    assert_eq!(ring.tail(100), "89abcdef");
    ring.push("é日".as_bytes());
    assert_eq!(ring.len(), 8);
    assert_eq!(ring.tail(4), "日");
    assert_eq!(ring.tail(2), "", "only the tail of a character: dropped, not U+FFFD");
    let mut none = crate::client::Ring::new(0);
    none.push(b"abc");
    assert_eq!((none.len(), none.tail(10).as_str()), (0, ""));
}

#[tokio::test]
async fn notifications_and_requests_reach_the_server_in_call_order() {
    let (client, mut fake, _stderr) = start(Options::default());
    let uri = file_uri(Path::new("/proj/m.py"));
    let c = client.clone();
    let u = uri.clone();
    let session = tokio::spawn(async move {
        c.notify::<DidOpenTextDocument>(DidOpenTextDocumentParams {
            text_document: TextDocumentItem::new(u.clone(), "python".into(), 1, "x = 1\n".into()),
        })?;
        for version in 2..=30 {
            c.notify::<DidChangeTextDocument>(DidChangeTextDocumentParams {
                text_document: VersionedTextDocumentIdentifier::new(u.clone(), version),
                content_changes: vec![TextDocumentContentChangeEvent {
                    range: None,
                    range_length: None,
                    text: format!("x = {version}\n"),
                }],
            })?;
        }
        let answer = c
            .request_raw("textDocument/documentSymbol", json!({"textDocument": {"uri": u.as_str()}}), WAIT)
            .await;
        c.notify::<DidCloseTextDocument>(DidCloseTextDocumentParams {
            text_document: TextDocumentIdentifier::new(u),
        })?;
        answer
    });
    let open = fake.recv().await;
    assert_eq!(open["method"], "textDocument/didOpen");
    assert_eq!(open["params"]["textDocument"]["uri"], uri.as_str());
    for version in 2..=30 {
        let change = fake.recv().await;
        assert_eq!(change["method"], "textDocument/didChange");
        assert_eq!(change["params"]["textDocument"]["version"], version);
    }
    let req = fake.recv().await;
    assert_eq!(req["method"], "textDocument/documentSymbol");
    fake.reply(&req["id"], json!([])).await;
    assert_eq!(fake.recv().await["method"], "textDocument/didClose");
    assert_eq!(within(session).await.unwrap().unwrap(), json!([]));
}

#[tokio::test]
async fn dropping_every_handle_ends_the_connection() {
    let (client, mut fake, mut stderr) = start(Options::default());
    let other = client.clone();
    drop(client);
    other.notify_raw("custom/still-here", Value::Null).unwrap();
    assert_eq!(fake.recv().await["method"], "custom/still-here");
    drop(other);
    // The server's input ends, and its output and stderr are no longer read.
    assert!(within(fake.try_recv()).await.is_none());
    within(async {
        while fake.wr.write_all(b"Content-Length: 2\r\n\r\n{}").await.is_ok() {
            tokio::time::sleep(ms(5)).await;
        }
    })
    .await;
    within(async {
        while stderr.write_all(b"x").await.is_ok() {
            tokio::time::sleep(ms(5)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn a_server_that_stops_reading_makes_sends_fail_instead_of_queueing_forever() {
    // 1 MiB is the smallest queue bound; the pipe to the server holds 1 KiB.
    let (client, mut fake, _stderr) = start_with(small_limit(), 1024, 1024);
    let chunk = "y".repeat(2048);
    let mut sent = 0;
    let refused = loop {
        match client.notify_raw("custom/fill", json!({"text": chunk})) {
            Ok(()) => sent += 1,
            Err(e) => break e,
        }
        assert!(sent < 2000, "the queue never filled");
    };
    assert!(matches!(refused, Error::Io(ref m) if m.contains("not reading")), "{refused:?}");
    assert!(sent >= 400, "the queue took {sent} messages");
    // Once the server reads again, everything queued arrives in order and sending works again.
    for _ in 0..sent {
        assert_eq!(fake.recv().await["method"], "custom/fill");
    }
    client.notify_raw("custom/after", Value::Null).unwrap();
    assert_eq!(fake.recv().await["method"], "custom/after");
}

#[tokio::test]
async fn a_failed_write_closes_the_transport() {
    let (client, fake, _stderr) = start(Options::default());
    let Fake { rd, wr: _keep_output_open } = fake;
    drop(rd);
    let waiting = spawn_raw(&client, "custom/x", Value::Null, WAIT);
    assert!(matches!(within(waiting).await.unwrap(), Err(Error::Closed { .. })));
    assert!(client.is_closed());
}

#[tokio::test]
async fn an_oversized_late_answer_is_not_pinned_on_the_next_request() {
    let (client, mut fake, _stderr) = start(small_limit());
    let abandoned = spawn_raw(&client, "custom/slow", Value::Null, ms(50));
    let req1 = fake.recv().await;
    assert_eq!(fake.recv().await["method"], "$/cancelRequest");
    assert!(matches!(within(abandoned).await.unwrap(), Err(Error::Timeout { .. })));

    let current = spawn_raw(&client, "custom/current", Value::Null, WAIT);
    let req2 = fake.recv().await;
    // The late, oversized answer to the abandoned request, its id out of sight.
    let body = format!(r#"{{"jsonrpc":"2.0","result":"{}","id":{}}}"#, "x".repeat(50_000), req1["id"]);
    fake.send_body(body.as_bytes()).await;
    fake.reply(&req2["id"], json!("mine")).await;
    assert_eq!(within(current).await.unwrap().unwrap(), json!("mine"));

    // Once the server answered the cancelled request, a lone request gets the quick verdict again.
    fake.send(json!({"jsonrpc": "2.0", "id": req1["id"], "error": {"code": -32800, "message": "cancelled"}}))
        .await;
    let big = spawn_raw(&client, "custom/big", Value::Null, WAIT);
    let req3 = fake.recv().await;
    let body = format!(r#"{{"jsonrpc":"2.0","result":"{}","id":{}}}"#, "x".repeat(50_000), req3["id"]);
    fake.send_body(body.as_bytes()).await;
    assert!(matches!(within(big).await.unwrap(), Err(Error::ResponseTooLarge { .. })));
}
