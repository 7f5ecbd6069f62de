//! Tool calls: arguments become a request to the in-process toolbox router (the same typed
//! request layer, validation and error envelope as over HTTP), and its answer becomes tool
//! content, every text bounded.
//!
//! Nothing here speaks MCP: [`Toolbox::call`] answers an [`Outcome`], which `api.rs` turns into
//! the protocol's result.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Map, Value};
use tower::ServiceExt;

use super::schema::{self, Location, Operation};
use super::tools::{Kind, TOOLS, ToolSpec};

/// The longest text a tool result holds, in characters, before it is cut with a note.
pub const MAX_OUTPUT: usize = 100_000;

/// The most of a JSON answer read to cut it as JSON; a longer one (a command's output may reach
/// 64 MiB) is cut as text, which keeps its first fields (`exitCode` leads `execute`'s answer).
const JSON_READ_LIMIT: usize = 16 * 1024 * 1024;

/// What a path segment keeps unescaped (RFC 3986 unreserved characters).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// How to get the rest of a cut text, for tools whose answer is JSON.
const JSON_HINT: &str = "Narrow the request (a smaller directory, a more specific pattern), or send long command \
output to a file (`cmd > /tmp/out.txt 2>&1`) and read it in parts with file_read (offset, length).";

/// One piece of a tool's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Content {
    Text(String),
    /// Base64 image data and its MIME type.
    Image {
        data: String,
        mime: &'static str,
    },
    /// Base64 file content that is not text.
    Blob {
        uri: String,
        data: String,
    },
}

/// A tool's answer; `is_error` when the operation failed (its envelope is in the text).
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub content: Vec<Content>,
    pub is_error: bool,
}

impl Outcome {
    fn ok(content: Vec<Content>) -> Self {
        Outcome { content, is_error: false }
    }

    fn error(text: impl Into<String>) -> Self {
        Outcome { content: vec![Content::Text(text.into())], is_error: true }
    }
}

/// A tool of the table with its operation from the OpenAPI document.
#[derive(Debug)]
pub struct Tool {
    pub spec: &'static ToolSpec,
    pub op: Operation,
}

/// The tools and the router they drive.
#[derive(Clone)]
pub struct Toolbox {
    inner: Router,
    tools: Arc<[Tool]>,
    max_output: usize,
}

impl Toolbox {
    /// The tools of [`TOOLS`] whose operation `doc` describes. A tool that does not match the
    /// document is left out and named in the second value (the router test keeps it empty).
    pub fn new(inner: Router, doc: &Value, max_output: usize) -> (Self, Vec<String>) {
        let mut tools = Vec::new();
        let mut errors = Vec::new();
        for spec in TOOLS {
            match schema::operation(doc, spec) {
                Ok(op) => tools.push(Tool { spec, op }),
                Err(e) => errors.push(e),
            }
        }
        (Toolbox { inner, tools: tools.into(), max_output }, errors)
    }

    pub fn tools(&self) -> &[Tool] {
        &self.tools
    }

    /// Runs tool `name`; `None` when there is no such tool. `authorization` is the MCP
    /// request's own header, passed on so the tool's request is as authorized as the call was,
    /// wherever an authentication layer sits.
    pub async fn call(
        &self,
        name: &str,
        args: Map<String, Value>,
        authorization: Option<HeaderValue>,
    ) -> Option<Outcome> {
        let tool = self.tools.iter().find(|t| t.spec.name == name)?;
        Some(match self.run(tool, args, authorization).await {
            Ok(outcome) => outcome,
            Err(message) => Outcome::error(message),
        })
    }

    async fn run(
        &self,
        tool: &Tool,
        args: Map<String, Value>,
        authorization: Option<HeaderValue>,
    ) -> Result<Outcome, String> {
        let spec = tool.spec;
        let split = split(spec, &tool.op, args)?;
        let mut req = request(spec, &split)?;
        if let Some(value) = authorization {
            req.headers_mut().insert(header::AUTHORIZATION, value);
        }
        let res = self.inner.clone().oneshot(req).await.unwrap_or_else(|e| match e {});
        let status = res.status();
        if !status.is_success() {
            let (body, _) = read_limited(res, 64 * 1024).await;
            return Ok(Outcome::error(bound_text(&error_text(status, &body), self.max_output, "")));
        }
        match spec.kind {
            Kind::Json => {
                // Read whole (up to a bound) so a long answer can be cut as JSON, keeping its
                // other fields; past the bound it is cut as text.
                let (body, more) = read_limited(res, JSON_READ_LIMIT.max(self.max_output * 4)).await;
                let text = crate::text::lossy_per_byte(&body);
                let text = if text.is_empty() { format!("OK (HTTP {})", status.as_u16()) } else { text };
                let text = if more {
                    cut_note(&text, self.max_output, true, JSON_HINT)
                } else {
                    bound_json(&text, self.max_output, JSON_HINT)
                };
                Ok(Outcome::ok(vec![Content::Text(text)]))
            }
            Kind::Image => {
                let (body, _) = read_limited(res, 64 * 1024 * 1024).await;
                image(&body)
            }
            Kind::FileRead => Ok(self.file(&split, res).await),
            Kind::FileWrite => Ok(Outcome::ok(vec![Content::Text(format!(
                "wrote {} bytes to {}",
                split.upload_len,
                split.query.iter().find(|(k, _)| k == "path").map(|(_, v)| v.as_str()).unwrap_or("")
            ))])),
        }
    }

    /// file_read's answer: the text, or a blob when the bytes are not UTF-8; a note when the
    /// file goes on past what is shown.
    async fn file(&self, split: &Split, res: Response<Body>) -> Outcome {
        let start = split.range.map(|(offset, _)| offset).unwrap_or(0);
        // The file's whole size: from Content-Range on a partial answer, Content-Length otherwise.
        let total = content_range_total(&res).or_else(|| {
            let len = res.headers().get(header::CONTENT_LENGTH)?.to_str().ok()?.parse::<u64>().ok()?;
            Some(start + len)
        });
        // Text is read up to the cap; binary content is base64 (4 characters per 3 bytes).
        let (body, more) = read_limited(res, self.max_output).await;
        let path = split.query.iter().find(|(k, _)| k == "path").map(|(_, v)| v.clone()).unwrap_or_default();
        let (mut content, shown) = match utf8_prefix(&body, more) {
            Some(text) => {
                let shown = text.len();
                (vec![Content::Text(text.to_string())], shown)
            }
            None => {
                let shown = (self.max_output / 4 * 3).min(body.len());
                let uri = format!("file://{}", percent_encoding::utf8_percent_encode(&path, PATH_URI));
                (vec![Content::Blob { uri, data: crate::text::base64_encode(&body[..shown]) }], shown)
            }
        };
        let end = start + shown as u64;
        let rest = total.map(|t| t.saturating_sub(end));
        if more || shown < body.len() {
            let total_text = total.map(|t| format!(" of {t}")).unwrap_or_default();
            let left = rest.map(|r| format!("{r} bytes")).unwrap_or_else(|| "the rest".into());
            content.push(Content::Text(format!(
                "[file_read: showed bytes {start}-{end}{total_text}; {left} left out. Call file_read with offset={end} (and a length) for more.]"
            )));
        }
        Outcome::ok(content)
    }
}

/// `file://` URIs keep `/` and the unreserved characters.
const PATH_URI: &AsciiSet = &SEGMENT.remove(b'/');

/// A tool's arguments, sorted into the parts of a request.
#[derive(Debug, Default, PartialEq)]
pub struct Split {
    /// The path with its parameters filled in, percent-encoded.
    pub path: String,
    pub query: Vec<(String, String)>,
    /// The JSON body, when the operation takes one.
    pub body: Option<Map<String, Value>>,
    /// file_read's byte range: offset and optional length.
    pub range: Option<(u64, Option<u64>)>,
    /// file_write's decoded content.
    pub upload: Option<Vec<u8>>,
    pub upload_len: usize,
}

/// Sorts `args` into path, query, body and the kind's own arguments by the operation's
/// description. Unknown and missing arguments are refused here, with names, before any
/// request is made; the values themselves are the route's to validate.
pub fn split(spec: &ToolSpec, op: &Operation, args: Map<String, Value>) -> Result<Split, String> {
    let mut out = Split { path: spec.path.to_string(), ..Split::default() };
    if let Some(required) = op.schema.get("required").and_then(Value::as_array) {
        let missing: Vec<&str> = required
            .iter()
            .filter_map(Value::as_str)
            .filter(|name| args.get(*name).is_none_or(Value::is_null))
            .collect();
        if !missing.is_empty() {
            return Err(format!("missing required argument(s) of {}: {}", spec.name, missing.join(", ")));
        }
    }
    let mut body = op.body.as_ref().map(|_| Map::new());
    let mut extra = Map::new();
    for (name, value) in args {
        if let Some(param) = op.params.iter().find(|p| p.name == name) {
            if value.is_null() {
                continue;
            }
            match param.location {
                Location::Path => {
                    let text = scalar(&name, &value)?;
                    let encoded = utf8_percent_encode(&text, SEGMENT).to_string();
                    out.path = out.path.replace(&format!("{{{name}}}"), &encoded);
                }
                Location::Query => match &value {
                    Value::Array(items) => {
                        for item in items {
                            out.query.push((name.clone(), scalar(&name, item)?));
                        }
                    }
                    _ => out.query.push((name.clone(), scalar(&name, &value)?)),
                },
            }
        } else if let (Some(b), true) = (body.as_mut(), op.body.as_ref().is_some_and(|f| f.contains(&name))) {
            b.insert(name, value);
        } else if op.extra.contains(&name) {
            extra.insert(name, value);
        } else {
            let known: Vec<&str> = op
                .schema
                .get("properties")
                .and_then(Value::as_object)
                .map(|p| p.keys().map(String::as_str).collect())
                .unwrap_or_default();
            return Err(format!(
                "unknown argument {name:?} for {}; it takes: {}",
                spec.name,
                known.join(", ")
            ));
        }
    }
    for (name, value) in spec.defaults {
        if !out.query.iter().any(|(k, _)| k == name) {
            out.query.push((name.to_string(), value.to_string()));
        }
    }
    out.body = body;
    match spec.kind {
        Kind::FileRead => {
            let offset = non_negative(&extra, "offset")?;
            let length = non_negative(&extra, "length")?;
            if length == Some(0) {
                return Err("length must be at least 1".into());
            }
            if offset.is_some() || length.is_some() {
                out.range = Some((offset.unwrap_or(0), length));
            }
        }
        Kind::FileWrite => {
            let content = extra.get("content").and_then(Value::as_str).ok_or("content must be a string")?;
            let bytes = match extra.get("encoding").and_then(Value::as_str).unwrap_or("utf-8") {
                "utf-8" | "utf8" | "text" => content.as_bytes().to_vec(),
                "base64" => {
                    crate::text::base64_decode(content.trim()).ok_or("content is not valid base64")?
                }
                other => return Err(format!("unknown encoding {other:?}: use utf-8 or base64")),
            };
            out.upload_len = bytes.len();
            out.upload = Some(bytes);
        }
        Kind::Json | Kind::Image => {}
    }
    Ok(out)
}

/// A path or query value as text: strings as they are, numbers and booleans written out.
fn scalar(name: &str, value: &Value) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(format!("argument {name:?} must be a string, number or boolean")),
    }
}

fn non_negative(args: &Map<String, Value>, name: &str) -> Result<Option<u64>, String> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| format!("{name} must be a non-negative integer")),
    }
}

/// The request a split tool call makes.
fn request(spec: &ToolSpec, split: &Split) -> Result<Request<Body>, String> {
    let mut uri = split.path.clone();
    if !split.query.is_empty() {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &split.query {
            q.append_pair(k, v);
        }
        uri.push('?');
        uri.push_str(&q.finish());
    }
    let builder = Request::builder()
        .method(spec.method)
        .uri(&uri)
        .header(header::ACCEPT, HeaderValue::from_static("application/json"));
    let built = if let Some(content) = &split.upload {
        let boundary = boundary_for(content);
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"file\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(content);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        builder
            .header(header::CONTENT_TYPE, format!("multipart/form-data; boundary={boundary}"))
            .body(Body::from(body))
    } else if let Some(body) = &split.body {
        let json = serde_json::to_vec(body).map_err(|e| e.to_string())?;
        builder.header(header::CONTENT_TYPE, "application/json").body(Body::from(json))
    } else {
        let builder = match split.range {
            Some((offset, Some(len))) => match len.checked_sub(1).and_then(|l| offset.checked_add(l)) {
                Some(last) => builder.header(header::RANGE, format!("bytes={offset}-{last}")),
                None => return Err(format!("offset {offset} and length {len} do not name a range of bytes")),
            },
            Some((offset, None)) => builder.header(header::RANGE, format!("bytes={offset}-")),
            None => builder,
        };
        builder.body(Body::empty())
    };
    built.map_err(|e| format!("cannot build the request for {uri}: {e}"))
}

/// A multipart boundary that does not occur in `content`.
fn boundary_for(content: &[u8]) -> String {
    let mut n = 0u32;
    loop {
        let b = format!("daytona-mcp-{n:08x}-{}", crate::id::uuid_v4());
        if !content.windows(b.len()).any(|w| w == b.as_bytes()) {
            return b;
        }
        n += 1;
    }
}

/// Reads up to `limit` bytes of the answer's body; the flag says whether there was more (the
/// rest is not read: the body is dropped, which ends a streaming route's work).
async fn read_limited(res: Response<Body>, limit: usize) -> (Vec<u8>, bool) {
    let mut body = res.into_body();
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { break };
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > limit {
                out.extend_from_slice(&data[..limit - out.len()]);
                return (out, true);
            }
            out.extend_from_slice(&data);
        }
    }
    (out, false)
}

/// The total size in a `Content-Range: bytes a-b/total` header.
fn content_range_total(res: &Response<Body>) -> Option<u64> {
    let v = res.headers().get(header::CONTENT_RANGE)?.to_str().ok()?;
    v.rsplit_once('/')?.1.parse().ok()
}

/// The bytes as text when they are UTF-8; when the read stopped early (`cut`), a character
/// split at the end is left off rather than counted against the text.
fn utf8_prefix(bytes: &[u8], cut: bool) -> Option<&str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Some(s),
        Err(e) if cut && e.error_len().is_none() => std::str::from_utf8(&bytes[..e.valid_up_to()]).ok(),
        Err(_) => None,
    }
}

/// A failed operation in words: the envelope's `CODE: message`, or the status when it has no
/// code (the desktop's 503s) or no envelope.
pub fn error_text(status: StatusCode, body: &[u8]) -> String {
    let envelope: Option<Value> = serde_json::from_slice(body).ok();
    let message = envelope.as_ref().and_then(|e| e.get("message")).and_then(Value::as_str);
    let code = envelope.as_ref().and_then(|e| e.get("code")).and_then(Value::as_str);
    match (code, message) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (None, Some(message)) => format!("HTTP {}: {message}", status.as_u16()),
        _ => {
            let text = crate::text::lossy_per_byte(body);
            format!("HTTP {}: {}", status.as_u16(), if text.is_empty() { status.to_string() } else { text })
        }
    }
}

/// The screenshot answer as image content, with the rest of the answer (cursor, size) as text.
fn image(body: &[u8]) -> Result<Outcome, String> {
    let mut answer: Map<String, Value> =
        serde_json::from_slice(body).map_err(|e| format!("the screenshot answer is not JSON: {e}"))?;
    let Some(Value::String(data)) = answer.remove("screenshot") else {
        return Err("the screenshot answer has no image".into());
    };
    // The first 16 characters (12 bytes) hold either magic number.
    let head: String = data.chars().take(16).collect();
    let head = crate::text::base64_decode(&head).unwrap_or_default();
    let mime = if head.starts_with(b"\x89PNG") {
        "image/png"
    } else if head.starts_with(b"\xff\xd8\xff") {
        "image/jpeg"
    } else {
        return Err("the screenshot is neither PNG nor JPEG".into());
    };
    let mut content = vec![Content::Image { data, mime }];
    if !answer.is_empty() {
        content.push(Content::Text(Value::Object(answer).to_string()));
    }
    Ok(Outcome::ok(content))
}

/// `text` cut to `cap` characters with a note when it is longer.
pub fn bound_text(text: &str, cap: usize, hint: &str) -> String {
    if text.chars().count() <= cap { text.to_string() } else { cut_note(text, cap, false, hint) }
}

/// The first `cap` characters of `text` and a note saying how much was left out (`unread`:
/// the answer went on past `text`, unread) and how to get the rest.
fn cut_note(text: &str, cap: usize, unread: bool, hint: &str) -> String {
    let kept: String = text.chars().take(cap).collect();
    let left = text.chars().count() - kept.chars().count();
    let what = if unread {
        format!("at least {left} characters left out (the rest of the answer was not read)")
    } else {
        format!("{left} characters left out")
    };
    format!("{kept}\n[output truncated at {cap} characters: {what}. {hint}]")
}

/// A JSON answer bounded to `cap` characters: when it is longer, its longest string (a
/// command's output, as a rule) loses its middle, so the answer stays JSON with every other
/// field (the exit code) intact; a note after it says how much was left out.
pub fn bound_json(text: &str, cap: usize, hint: &str) -> String {
    let len = text.chars().count();
    if len <= cap {
        return text.to_string();
    }
    let Ok(mut value) = serde_json::from_str::<Value>(text) else {
        return cut_note(text, cap, false, hint);
    };
    let Some(longest) = longest_string(&mut value) else {
        return cut_note(text, cap, false, hint);
    };
    let chars = longest.chars().count();
    let excess = len - cap;
    // Room for the marker and for characters that grow when escaped again.
    let keep = chars.saturating_sub(excess + 200);
    let left = chars - keep;
    let head: String = longest.chars().take(keep / 2).collect();
    let tail: String = longest.chars().skip(chars - (keep - keep / 2)).collect();
    *longest = format!("{head}\n[... {left} characters left out ...]\n{tail}");
    let shrunk = value.to_string();
    if shrunk.chars().count() > cap {
        return cut_note(text, cap, false, hint);
    }
    format!("{shrunk}\n[output truncated at {cap} characters: {left} characters left out. {hint}]")
}

fn longest_string(value: &mut Value) -> Option<&mut String> {
    match value {
        Value::String(s) => Some(s),
        Value::Array(items) => items.iter_mut().filter_map(longest_string).max_by_key(|s| s.len()),
        Value::Object(map) => map.values_mut().filter_map(longest_string).max_by_key(|s| s.len()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::schema::Param;
    use serde_json::json;

    fn op(
        params: &[(&str, Location)],
        body: Option<&[&str]>,
        extra: &[&str],
        required: &[&str],
    ) -> Operation {
        let mut props = Map::new();
        for (n, _) in params {
            props.insert(n.to_string(), json!({}));
        }
        for n in body.unwrap_or_default().iter().chain(extra) {
            props.insert(n.to_string(), json!({}));
        }
        Operation {
            params: params.iter().map(|(n, l)| Param { name: n.to_string(), location: *l }).collect(),
            body: body.map(|b| b.iter().map(|s| s.to_string()).collect()),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            schema: json!({"type": "object", "properties": props, "required": required})
                .as_object()
                .unwrap()
                .clone(),
        }
    }

    fn spec(path: &'static str, kind: Kind) -> ToolSpec {
        ToolSpec {
            name: "t",
            method: "POST",
            path,
            kind,
            description: "d",
            omit: &[],
            defaults: &[("format", "jpeg")],
        }
    }

    fn args(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn arguments_split_into_path_query_and_body() {
        let op = op(
            &[("sessionId", Location::Path), ("paths", Location::Query), ("n", Location::Query)],
            Some(&["command", "runAsync"]),
            &[],
            &["sessionId", "command"],
        );
        let s = split(
            &spec("/s/{sessionId}/exec", Kind::Json),
            &op,
            args(json!({"sessionId": "a b/c", "command": "ls", "runAsync": true, "paths": ["x", 1], "n": null})),
        )
        .unwrap();
        assert_eq!(s.path, "/s/a%20b%2Fc/exec");
        assert_eq!(
            s.query,
            vec![
                ("paths".into(), "x".into()),
                ("paths".into(), "1".into()),
                ("format".into(), "jpeg".into())
            ]
        );
        assert_eq!(s.body, Some(args(json!({"command": "ls", "runAsync": true}))));
        let req = request(&spec("/s/{sessionId}/exec", Kind::Json), &s).unwrap();
        assert_eq!(req.uri(), "/s/a%20b%2Fc/exec?paths=x&paths=1&format=jpeg");
        assert_eq!(req.headers()[header::CONTENT_TYPE], "application/json");
    }

    #[test]
    fn a_given_default_parameter_wins() {
        let op = op(&[("format", Location::Query)], None, &[], &[]);
        let s = split(&spec("/shot", Kind::Image), &op, args(json!({"format": "png"}))).unwrap();
        assert_eq!(s.query, vec![("format".into(), "png".into())]);
        assert_eq!(s.body, None);
    }

    #[test]
    fn unknown_missing_and_unwritable_arguments_are_named() {
        let op = op(&[("path", Location::Query)], Some(&["command"]), &[], &["command"]);
        let e = split(&spec("/x", Kind::Json), &op, args(json!({"command": "ls", "cmd": "x"}))).unwrap_err();
        assert!(e.contains("unknown argument \"cmd\"") && e.contains("command, path"), "{e}");
        let e = split(&spec("/x", Kind::Json), &op, args(json!({"path": "/"}))).unwrap_err();
        assert!(e.contains("missing required argument(s) of t: command"), "{e}");
        let e = split(&spec("/x", Kind::Json), &op, args(json!({"command": "ls", "path": {"a": 1}})))
            .unwrap_err();
        assert!(e.contains("\"path\" must be a string"), "{e}");
    }

    #[test]
    fn file_read_ranges_and_file_write_content() {
        let read = op(&[("path", Location::Query)], None, &["offset", "length"], &["path"]);
        let s =
            split(&spec("/r", Kind::FileRead), &read, args(json!({"path": "/f", "offset": 10, "length": 5})))
                .unwrap();
        assert_eq!(s.range, Some((10, Some(5))));
        let req = request(&spec("/r", Kind::FileRead), &s).unwrap();
        assert_eq!(req.headers()[header::RANGE], "bytes=10-14");
        // A range past the end of the number line, or of no bytes, is refused, not wrapped.
        for (offset, length) in [(5u64, u64::MAX), (u64::MAX, 2), (3, 0)] {
            let e = split(
                &spec("/r", Kind::FileRead),
                &read,
                args(json!({"path": "/f", "offset": offset, "length": length})),
            )
            .and_then(|s| request(&spec("/r", Kind::FileRead), &s).map(|_| ()))
            .unwrap_err();
            assert!(e.contains("range") || e.contains("length"), "{offset} {length}: {e}");
        }
        let e =
            split(&spec("/r", Kind::FileRead), &read, args(json!({"path": "/f", "offset": -1}))).unwrap_err();
        assert!(e.contains("offset must be a non-negative integer"), "{e}");

        let write = op(&[("path", Location::Query)], None, &["content", "encoding"], &["path", "content"]);
        let s = split(
            &spec("/w", Kind::FileWrite),
            &write,
            args(json!({"path": "/f", "content": "AAEC/w==", "encoding": "base64"})),
        )
        .unwrap();
        assert_eq!(s.upload, Some(vec![0, 1, 2, 255]));
        let req = request(&spec("/w", Kind::FileWrite), &s).unwrap();
        let ct = req.headers()[header::CONTENT_TYPE].to_str().unwrap().to_string();
        assert!(ct.starts_with("multipart/form-data; boundary=daytona-mcp-"), "{ct}");
        let e = split(
            &spec("/w", Kind::FileWrite),
            &write,
            args(json!({"path": "/f", "content": "x", "encoding": "hex"})),
        )
        .unwrap_err();
        assert!(e.contains("unknown encoding \"hex\""), "{e}");
    }

    #[test]
    fn errors_read_code_and_message_from_the_envelope() {
        let body = br#"{"statusCode":404,"message":"no such file","code":"FILE_NOT_FOUND","source":"DAYTONA_DAEMON"}"#;
        assert_eq!(error_text(StatusCode::NOT_FOUND, body), "FILE_NOT_FOUND: no such file");
        assert_eq!(
            error_text(StatusCode::SERVICE_UNAVAILABLE, br#"{"message":"no display"}"#),
            "HTTP 503: no display"
        );
        assert_eq!(error_text(StatusCode::BAD_GATEWAY, b""), "HTTP 502: 502 Bad Gateway");
    }

    #[test]
    fn long_text_is_cut_with_a_note() {
        let text = "é".repeat(150);
        let cut = bound_text(&text, 100, "Use file_read.");
        assert!(cut.starts_with(&"é".repeat(100)));
        assert!(cut.contains("50 characters left out. Use file_read."), "{cut}");
        assert_eq!(bound_text("short", 100, "x"), "short");
    }

    #[test]
    fn long_json_keeps_its_shape_and_other_fields() {
        let output = format!("{}{}", "a".repeat(3000), "z".repeat(3000));
        let text = json!({"exitCode": 3, "result": output}).to_string();
        let cut = bound_json(&text, 1000, "hint");
        let (json_part, note) = cut.split_once("\n[output truncated").unwrap();
        let v: Value = serde_json::from_str(json_part).unwrap();
        assert_eq!(v["exitCode"], 3);
        let result = v["result"].as_str().unwrap();
        assert!(result.starts_with('a') && result.ends_with('z') && result.contains("characters left out"));
        assert!(json_part.chars().count() <= 1000);
        assert!(note.contains("characters left out. hint]"), "{note}");
        // Not JSON: a plain cut.
        let cut = bound_json(&"x".repeat(2000), 1000, "hint");
        assert!(cut.contains("1000 characters left out"), "{cut}");
    }

    #[test]
    fn a_split_utf8_character_at_a_cut_is_left_off() {
        let bytes = "aé".as_bytes();
        assert_eq!(utf8_prefix(&bytes[..2], true), Some("a"));
        assert_eq!(utf8_prefix(&bytes[..2], false), None);
        assert_eq!(utf8_prefix(&[0xff, 0x00], true), None);
    }

    #[test]
    fn screenshots_become_images_by_their_magic() {
        let png = crate::text::base64_encode(b"\x89PNG\r\n\x1a\nrest");
        let body = json!({"screenshot": png, "sizeBytes": 12}).to_string();
        let out = image(body.as_bytes()).unwrap();
        assert_eq!(out.content[0], Content::Image { data: png, mime: "image/png" });
        assert_eq!(out.content[1], Content::Text(r#"{"sizeBytes":12}"#.into()));
        assert!(image(br#"{"screenshot":"aGVsbG8="}"#).is_err());
        // Not base64 at all (a character of several bytes where the magic is looked for).
        assert!(image(r#"{"screenshot":"ééééééééééééééééé"}"#.as_bytes()).is_err());
    }
}
