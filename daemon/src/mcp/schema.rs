//! A tool's input schema, built from its operation in the daemon's OpenAPI document: the path
//! and query parameters and the properties of the JSON request body become the properties of
//! one object schema, every `$ref` resolved inline (MCP clients get plain JSON Schema, without
//! the document's `components` to point into).

use serde_json::{Map, Value, json};

use super::tools::{Kind, ToolSpec};

/// Where an argument goes in the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    Path,
    Query,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    pub name: String,
    pub location: Location,
}

/// What a tool's arguments are, and where each goes.
#[derive(Debug, Clone)]
pub struct Operation {
    pub params: Vec<Param>,
    /// The JSON body's property names; `None` when the operation takes no JSON body.
    pub body: Option<Vec<String>>,
    /// Arguments the tool adds of its own (file_write's `content`), handled by its [`Kind`].
    pub extra: Vec<String>,
    /// The input schema: `type: object`, `properties`, `required`, no other properties.
    pub schema: Map<String, Value>,
}

/// The operation `spec` drives, from `doc` (the OpenAPI document as JSON).
pub fn operation(doc: &Value, spec: &ToolSpec) -> Result<Operation, String> {
    let method = spec.method.to_ascii_lowercase();
    let op = doc.get("paths").and_then(|p| p.get(spec.path)).and_then(|item| item.get(&method)).ok_or_else(
        || format!("{}: no operation {} {} in the document", spec.name, spec.method, spec.path),
    )?;

    let mut properties = Map::new();
    let mut required = Vec::new();
    let mut params = Vec::new();
    let declared = op.get("parameters").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    for p in declared {
        let p = inline(doc, p, &mut Vec::new());
        let name = p.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
        let location = match p.get("in").and_then(Value::as_str) {
            Some("path") => Location::Path,
            Some("query") => Location::Query,
            // Headers and cookies are the transport's business, not a tool argument.
            _ => continue,
        };
        if name.is_empty() || spec.omit.contains(&name.as_str()) {
            continue;
        }
        let mut schema = p.get("schema").cloned().unwrap_or_else(|| json!({}));
        if let (Some(desc), Some(obj)) = (p.get("description"), schema.as_object_mut()) {
            obj.entry("description").or_insert_with(|| desc.clone());
        }
        if location == Location::Path || p.get("required") == Some(&Value::Bool(true)) {
            required.push(Value::String(name.clone()));
        }
        add(&mut properties, spec, &name, schema)?;
        params.push(Param { name, location });
    }

    let body = match op.pointer("/requestBody/content/application~1json/schema") {
        Some(schema) if spec.kind == Kind::Json || spec.kind == Kind::Image => {
            let schema = object_alternative(inline(doc, schema, &mut Vec::new())).ok_or_else(|| {
                format!("{}: the JSON body of {} is not an object schema", spec.name, spec.path)
            })?;
            let mut names = Vec::new();
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (name, prop) in props {
                    add(&mut properties, spec, name, prop.clone())?;
                    names.push(name.clone());
                }
            }
            if let Some(req) = schema.get("required").and_then(Value::as_array) {
                required.extend(req.iter().cloned());
            }
            Some(names)
        }
        _ => None,
    };

    let mut extra = Vec::new();
    for (name, schema, is_required) in extras(spec.kind) {
        add(&mut properties, spec, name, schema)?;
        if is_required {
            required.push(Value::String(name.to_string()));
        }
        extra.push(name.to_string());
    }

    let mut schema = Map::new();
    schema.insert("type".into(), json!("object"));
    schema.insert("properties".into(), Value::Object(properties));
    schema.insert("required".into(), Value::Array(required));
    // Unknown arguments are refused (a misspelt name should not be ignored silently).
    schema.insert("additionalProperties".into(), json!(false));
    Ok(Operation { params, body, extra, schema })
}

fn add(
    properties: &mut Map<String, Value>,
    spec: &ToolSpec,
    name: &str,
    schema: Value,
) -> Result<(), String> {
    if properties.insert(name.to_string(), schema).is_some() {
        return Err(format!("{}: argument {name:?} is both a parameter and a body field", spec.name));
    }
    Ok(())
}

/// The arguments a tool kind adds to its operation's: (name, schema, required).
fn extras(kind: Kind) -> Vec<(&'static str, Value, bool)> {
    match kind {
        Kind::Json | Kind::Image => Vec::new(),
        Kind::FileRead => vec![
            (
                "offset",
                json!({"type": "integer", "minimum": 0, "description": "First byte to read (default 0)."}),
                false,
            ),
            (
                "length",
                json!({"type": "integer", "minimum": 1, "description": "How many bytes to read (default: to the end, within the output limit)."}),
                false,
            ),
        ],
        Kind::FileWrite => vec![
            ("content", json!({"type": "string", "description": "The new content of the file."}), true),
            (
                "encoding",
                json!({"type": "string", "enum": ["utf-8", "base64"], "description": "How `content` is written: `utf-8` (default) as is, `base64` decoded to bytes first."}),
                false,
            ),
        ],
    }
}

/// A body schema's object form: itself, or the object alternative of a `oneOf`/`anyOf` with
/// `null` (an optional body).
fn object_alternative(schema: Value) -> Option<Value> {
    if schema.get("type") == Some(&json!("object")) || schema.get("properties").is_some() {
        return Some(schema);
    }
    let alternatives = schema.get("oneOf").or_else(|| schema.get("anyOf"))?.as_array()?;
    alternatives
        .iter()
        .find(|a| a.get("type") == Some(&json!("object")) || a.get("properties").is_some())
        .cloned()
}

/// `value` with every local `$ref` (`#/...`) replaced by what it points to in `doc`; sibling
/// keywords of a `$ref` (a description) are kept over the target's. A reference to a schema
/// already being inlined (a recursive type) becomes `{}`, any value: the tool still takes it,
/// and the route's own validation has the last word.
pub fn inline(doc: &Value, value: &Value, stack: &mut Vec<String>) -> Value {
    match value {
        Value::Object(obj) => {
            if let Some(Value::String(reference)) = obj.get("$ref") {
                let target = reference.strip_prefix('#').and_then(|ptr| doc.pointer(ptr));
                let Some(target) = target else { return json!({}) };
                if stack.contains(reference) {
                    return json!({});
                }
                stack.push(reference.clone());
                let mut resolved = inline(doc, target, stack);
                stack.pop();
                if let Value::Object(resolved_obj) = &mut resolved {
                    for (k, v) in obj.iter().filter(|(k, _)| k.as_str() != "$ref") {
                        resolved_obj.insert(k.clone(), inline(doc, v, stack));
                    }
                }
                return resolved;
            }
            Value::Object(obj.iter().map(|(k, v)| (k.clone(), inline(doc, v, stack))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| inline(doc, v, stack)).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::tools::Kind;

    fn spec(method: &'static str, path: &'static str, kind: Kind) -> ToolSpec {
        ToolSpec { name: "t", method, path, kind, description: "d", omit: &["follow"], defaults: &[] }
    }

    fn doc() -> Value {
        json!({
            "paths": {
                "/s/{sessionId}/exec": {"post": {
                    "parameters": [
                        {"name": "sessionId", "in": "path", "required": true, "schema": {"type": "string"}, "description": "the session"},
                        {"name": "follow", "in": "query", "schema": {"type": "boolean"}},
                        {"name": "X-Trace", "in": "header", "schema": {"type": "string"}},
                        {"$ref": "#/components/parameters/Verbose"}
                    ],
                    "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Exec"}}}}
                }},
                "/opt": {"post": {"requestBody": {"content": {"application/json": {"schema":
                    {"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/Exec"}]}}}}}},
                "/clash": {"post": {
                    "parameters": [{"name": "command", "in": "query", "schema": {"type": "string"}}],
                    "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Exec"}}}}
                }},
                "/upload": {"post": {
                    "parameters": [{"name": "path", "in": "query", "required": true, "schema": {"type": "string"}}],
                    "requestBody": {"content": {"multipart/form-data": {}}}
                }}
            },
            "components": {
                "parameters": {"Verbose": {"name": "verbose", "in": "query", "required": false, "schema": {"type": "boolean"}}},
                "schemas": {
                    "Exec": {"type": "object", "required": ["command"], "properties": {
                        "command": {"type": "string"},
                        "position": {"$ref": "#/components/schemas/Position", "description": "where"},
                        "tree": {"$ref": "#/components/schemas/Node"}
                    }},
                    "Position": {"type": "object", "properties": {"line": {"type": "integer"}}},
                    "Node": {"type": "object", "properties": {"children": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}}}}
                }
            }
        })
    }

    #[test]
    fn parameters_and_body_merge_into_one_object_schema() {
        let op = operation(&doc(), &spec("POST", "/s/{sessionId}/exec", Kind::Json)).unwrap();
        assert_eq!(
            op.params,
            vec![
                Param { name: "sessionId".into(), location: Location::Path },
                Param { name: "verbose".into(), location: Location::Query },
            ]
        );
        assert_eq!(op.body.as_deref(), Some(&["command".to_string(), "position".into(), "tree".into()][..]));
        let s = Value::Object(op.schema);
        assert_eq!(s["type"], "object");
        assert_eq!(s["additionalProperties"], false);
        assert_eq!(s["required"], json!(["sessionId", "command"]));
        assert_eq!(s["properties"]["sessionId"], json!({"type": "string", "description": "the session"}));
        // The omitted streaming parameter and the header are not arguments.
        assert!(s["properties"].get("follow").is_none() && s["properties"].get("X-Trace").is_none());
        assert!(!s.to_string().contains("$ref"), "{s}");
    }

    #[test]
    fn refs_are_inlined_with_their_siblings_and_cycles_cut() {
        let op = operation(&doc(), &spec("POST", "/s/{sessionId}/exec", Kind::Json)).unwrap();
        let props = &op.schema["properties"];
        assert_eq!(
            props["position"],
            json!({"type": "object", "properties": {"line": {"type": "integer"}}, "description": "where"})
        );
        // Node refers to itself: one level is inlined, the recursion is any value.
        assert_eq!(props["tree"]["properties"]["children"]["items"], json!({}));
    }

    #[test]
    fn an_optional_body_takes_its_object_alternative() {
        let op = operation(&doc(), &spec("POST", "/opt", Kind::Json)).unwrap();
        assert_eq!(op.schema["required"], json!(["command"]));
        assert!(op.params.is_empty());
    }

    #[test]
    fn a_name_in_both_parameters_and_body_is_refused() {
        let e = operation(&doc(), &spec("POST", "/clash", Kind::Json)).unwrap_err();
        assert!(e.contains("\"command\""), "{e}");
    }

    #[test]
    fn a_missing_operation_is_named() {
        let e = operation(&doc(), &spec("GET", "/s/{sessionId}/exec", Kind::Json)).unwrap_err();
        assert!(e.contains("GET /s/{sessionId}/exec"), "{e}");
    }

    #[test]
    fn file_write_adds_content_and_encoding_over_a_multipart_body() {
        let op = operation(&doc(), &spec("POST", "/upload", Kind::FileWrite)).unwrap();
        assert_eq!(op.body, None);
        assert_eq!(op.extra, vec!["content".to_string(), "encoding".into()]);
        assert_eq!(op.schema["required"], json!(["path", "content"]));
        assert_eq!(op.schema["properties"]["encoding"]["enum"], json!(["utf-8", "base64"]));
    }
}
