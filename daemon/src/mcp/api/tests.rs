//! `/mcp` in process: the tool table against the real OpenAPI document, and MCP requests over
//! the SDK's Streamable HTTP transport, one-shot, into the toolbox routes.

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use super::routes;
use crate::env::ChildEnv;
use crate::error::envelope_layer;
use crate::mcp::service::{MAX_OUTPUT, Toolbox};
use crate::mcp::tools::TOOLS;
use crate::state::AppState;

/// The areas the tools drive, assembled as the server assembles them, with their document.
fn inner() -> (Router, utoipa::openapi::OpenApi, tempfile::TempDir) {
    let home = tempfile::tempdir().unwrap();
    let vars = [("DAYTONA_SANDBOX_ID".to_string(), "test".to_string())].into_iter().collect();
    let config = crate::config::from_env(&vars).unwrap();
    let env = ChildEnv::new([
        ("HOME".into(), home.path().into()),
        ("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()),
    ]);
    let state = AppState::new(config, env, home.path().to_path_buf());
    let (router, doc) = OpenApiRouter::with_openapi(crate::openapi::ApiDoc::openapi())
        .merge(crate::system::api::routes())
        .merge(crate::process::api::routes())
        .merge(crate::files::routes())
        .merge(crate::git::routes())
        .merge(crate::lsp::api::routes())
        .merge(crate::computeruse::api::routes())
        .split_for_parts();
    let router = router.with_state(state).layer(axum::middleware::from_fn(envelope_layer));
    (router, doc, home)
}

struct Mcp {
    app: Router,
    home: tempfile::TempDir,
    next_id: std::cell::Cell<u64>,
}

impl Mcp {
    fn new() -> Self {
        let (inner, doc, home) = inner();
        Mcp {
            app: routes(inner, {
                let doc = std::sync::Arc::new(doc);
                move || doc.clone()
            }),
            home,
            next_id: 1.into(),
        }
    }

    async fn post(&self, body: Value) -> (StatusCode, Value) {
        let req = Request::post("/mcp")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "application/json, text/event-stream")
            .header(header::HOST, "sandbox.example:2280")
            .header("mcp-protocol-version", "2025-11-25")
            .body(Body::from(body.to_string()))
            .unwrap();
        let res = self.app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, value)
    }

    /// A JSON-RPC request; its whole response object.
    async fn rpc(&self, method: &str, params: Value) -> Value {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let (status, v) =
            self.post(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        assert_eq!(v["id"], id, "{v}");
        v
    }

    async fn initialize(&self) -> Value {
        let v = self
            .rpc(
                "initialize",
                json!({"protocolVersion": "2025-11-25", "capabilities": {},
                    "clientInfo": {"name": "test", "version": "1"}}),
            )
            .await;
        let (status, _) = self.post(json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        v["result"].clone()
    }

    async fn call(&self, name: &str, arguments: Value) -> Value {
        self.rpc("tools/call", json!({"name": name, "arguments": arguments})).await["result"].clone()
    }
}

fn text(result: &Value) -> &str {
    result["content"][0]["text"].as_str().unwrap_or_else(|| panic!("no text: {result}"))
}

#[test]
fn every_tool_matches_an_operation_of_the_document() {
    let (inner, doc, _home) = inner();
    let doc = serde_json::to_value(&doc).unwrap();
    let (toolbox, errors) = Toolbox::new(inner, &doc, MAX_OUTPUT);
    assert_eq!(errors, Vec::<String>::new());
    assert_eq!(toolbox.tools().len(), TOOLS.len());
    for tool in toolbox.tools() {
        let s = &tool.op.schema;
        let name = tool.spec.name;
        assert_eq!(s["type"], "object", "{name}");
        let props = s["properties"].as_object().unwrap_or_else(|| panic!("{name}: no properties"));
        for r in s["required"].as_array().unwrap_or_else(|| panic!("{name}: no required")) {
            assert!(props.contains_key(r.as_str().unwrap()), "{name}: required {r} is not a property");
        }
        for (p, schema) in props {
            assert!(schema.is_object(), "{name}.{p} is not a schema");
        }
        assert!(!Value::Object(s.clone()).to_string().contains("$ref"), "{name}: a $ref is left");
    }
}

#[tokio::test]
async fn initialize_names_the_server_and_offers_tools() {
    let mcp = Mcp::new();
    let init = mcp.initialize().await;
    assert_eq!(init["serverInfo"]["name"], "daytona-toolbox");
    assert_eq!(init["serverInfo"]["version"], crate::state::VERSION);
    assert!(init["capabilities"]["tools"].is_object(), "{init}");
    assert!(init["instructions"].as_str().unwrap().contains("sandbox"));

    let list = mcp.rpc("tools/list", json!({})).await;
    let tools = list["result"]["tools"].as_array().unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    for expected in ["execute_command", "file_write", "git_commit", "screenshot", "session_execute"] {
        assert!(names.contains(&expected), "{expected} missing from {names:?}");
    }
    let exec = tools.iter().find(|t| t["name"] == "execute_command").unwrap();
    assert_eq!(exec["inputSchema"]["required"], json!(["command"]));
    assert_eq!(exec["inputSchema"]["properties"]["command"]["type"], "string");
    assert_eq!(exec["annotations"]["readOnlyHint"], false);
    assert!(exec["annotations"].get("destructiveHint").is_none(), "{exec}");
    let status = tools.iter().find(|t| t["name"] == "git_status").unwrap();
    assert_eq!(status["annotations"]["readOnlyHint"], true);
}

#[tokio::test]
async fn a_command_runs_through_the_toolbox_route() {
    let mcp = Mcp::new();
    mcp.initialize().await;
    let r = mcp.call("execute_command", json!({"command": "echo hi; exit 3"})).await;
    assert_eq!(r["isError"], false, "{r}");
    let answer: Value = serde_json::from_str(text(&r)).unwrap();
    assert_eq!(answer, json!({"exitCode": 3, "result": "hi\n"}));
}

#[tokio::test]
async fn failed_operations_are_tool_errors_with_the_envelope_code() {
    let mcp = Mcp::new();
    mcp.initialize().await;
    let missing = mcp.home.path().join("nope.txt");
    let r = mcp.call("file_read", json!({"path": missing})).await;
    assert_eq!(r["isError"], true, "{r}");
    assert!(text(&r).starts_with("FILE_NOT_FOUND: "), "{r}");
    // The route's own validation: a blank command is the request layer's 400.
    let r = mcp.call("execute_command", json!({"command": ""})).await;
    assert_eq!(r["isError"], true, "{r}");
    assert!(text(&r).starts_with("BAD_REQUEST: "), "{r}");
    // An argument the tool does not take is named before any request is made.
    let r = mcp.call("execute_command", json!({"command": "true", "cmd": "x"})).await;
    assert_eq!(r["isError"], true, "{r}");
    assert!(text(&r).contains("unknown argument \"cmd\""), "{r}");
}

#[tokio::test]
async fn an_unknown_tool_is_a_protocol_error() {
    let mcp = Mcp::new();
    mcp.initialize().await;
    let v = mcp.rpc("tools/call", json!({"name": "rm_rf", "arguments": {}})).await;
    assert_eq!(v["error"]["code"], -32602, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("rm_rf"), "{v}");
}

#[tokio::test]
async fn files_written_are_read_back_as_text_or_blob_and_in_ranges() {
    let mcp = Mcp::new();
    mcp.initialize().await;
    let path = mcp.home.path().join("dir/a.txt");
    let r = mcp.call("file_write", json!({"path": path, "content": "héllo\nworld\n"})).await;
    assert_eq!(r["isError"], false, "{r}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "héllo\nworld\n");
    let r = mcp.call("file_read", json!({"path": path})).await;
    assert_eq!((text(&r), r["content"].as_array().unwrap().len()), ("héllo\nworld\n", 1), "{r}");
    let r = mcp.call("file_read", json!({"path": path, "offset": 7, "length": 3})).await;
    assert_eq!(text(&r), "wor", "{r}");

    let bin = mcp.home.path().join("b.bin");
    let r = mcp.call("file_write", json!({"path": bin, "content": "AP8BgA==", "encoding": "base64"})).await;
    assert_eq!(r["isError"], false, "{r}");
    assert_eq!(std::fs::read(&bin).unwrap(), [0x00, 0xff, 0x01, 0x80]);
    let r = mcp.call("file_read", json!({"path": bin})).await;
    let resource = &r["content"][0]["resource"];
    assert_eq!(resource["blob"], "AP8BgA==", "{r}");
    assert!(resource["uri"].as_str().unwrap().starts_with("file:///"), "{r}");
}

#[tokio::test]
async fn a_long_output_is_cut_with_a_note() {
    let mcp = Mcp::new();
    mcp.initialize().await;
    let r = mcp
        .call("execute_command", json!({"command": "head -c 300000 /dev/zero | tr '\\0' a; echo; echo END"}))
        .await;
    let t = text(&r);
    assert!(t.chars().count() <= MAX_OUTPUT + 1000, "{} characters", t.chars().count());
    let (json_part, note) = t.split_once("\n[output truncated").expect("a note");
    let answer: Value = serde_json::from_str(json_part).unwrap();
    assert_eq!(answer["exitCode"], 0);
    // Head and tail of the output are kept.
    assert!(answer["result"].as_str().unwrap().ends_with("END\n"));
    assert!(note.contains("characters left out") && note.contains("file_read"), "{note}");
}

#[tokio::test]
async fn the_callers_authorization_goes_with_the_tools_request() {
    let (_, doc, _home) = inner();
    // A stand-in for the execute route that answers the Authorization header it got.
    let echo = Router::new().route(
        "/process/execute",
        axum::routing::post(|headers: axum::http::HeaderMap| async move {
            let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("none");
            axum::response::Json(json!({"authorization": auth}))
        }),
    );
    let app = routes(echo, {
        let doc = std::sync::Arc::new(doc);
        move || doc.clone()
    });
    let req = Request::post("/mcp")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "application/json, text/event-stream")
        .header(header::HOST, "localhost")
        .header(header::AUTHORIZATION, "Bearer secret-token")
        .body(Body::from(
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                "params": {"name": "execute_command", "arguments": {"command": "true"}}})
            .to_string(),
        ))
        .unwrap();
    let res = app.oneshot(req).await.unwrap();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(text(&v["result"]), r#"{"authorization":"Bearer secret-token"}"#, "{v}");
}

#[tokio::test]
async fn the_event_stream_is_not_offered() {
    let mcp = Mcp::new();
    let req = Request::get("/mcp")
        .header(header::ACCEPT, "text/event-stream")
        .header(header::HOST, "sandbox.example:2280")
        .body(Body::empty())
        .unwrap();
    let res = mcp.app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{body:?}");
}
