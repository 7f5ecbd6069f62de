//! The contract between the daemon and the computer-use agent: the `/computeruse/*` wire types
//! and their OpenAPI description, and the desktop-process tag.
//!
//! The desktop agent (`computer-use`) serves `/computeruse/*`; the daemon relays those requests
//! to it unchanged and publishes one OpenAPI document for everything. Both take the bodies from
//! here, so the agent's answers and the document cannot drift apart, and the static daemon gets
//! the description without linking any X11 or AT-SPI code. Field names are the official clients'
//! (`daytona-toolbox-api-client` 0.226), which is what the SDKs send and parse.
//!
//! Error answers are the shared envelope (`ErrorResponse`); the documents describing these routes
//! refer to it by name, and the daemon's document defines it.
//!
//! Beside the routes, the two binaries share how desktop processes are marked and ended
//! ([`desktop_tag`]).

pub mod a11y;
pub mod clipboard;
mod common;
pub mod desktop_tag;
pub mod display;
pub mod input;
mod paths;
pub mod process;
pub mod screenshot;

use utoipa::OpenApi;

pub use common::Empty;

/// The tag every computer-use operation carries (the clients' `ComputerUseApi`).
pub const TAG: &str = "computer-use";

/// Where the error envelope's schema lives in the document these paths are merged into.
pub const ERROR_SCHEMA_REF: &str = "#/components/schemas/ErrorResponse";

/// Every route the daemon relays to the agent, with the bodies they take and return.
#[derive(OpenApi)]
#[openapi(
    paths(
        paths::start_computer_use,
        paths::stop_computer_use,
        paths::get_computer_use_system_status,
        paths::get_computer_use_status,
        paths::get_process_status,
        paths::restart_process,
        paths::get_process_logs,
        paths::get_process_errors,
        paths::get_mouse_position,
        paths::move_mouse,
        paths::click,
        paths::drag,
        paths::scroll,
        paths::mouse_down,
        paths::mouse_up,
        paths::type_text,
        paths::press_key,
        paths::press_hotkey,
        paths::key_down,
        paths::key_up,
        paths::take_screenshot,
        paths::take_region_screenshot,
        paths::take_compressed_screenshot,
        paths::take_compressed_region_screenshot,
        paths::get_display_info,
        paths::get_windows,
        paths::get_accessibility_tree,
        paths::find_accessibility_nodes,
        paths::focus_accessibility_node,
        paths::invoke_accessibility_node,
        paths::set_accessibility_node_value,
        // Extension: not in Daytona's daemon.
        paths::wait_accessibility,
        // Ours (not in Daytona's daemon): the clipboard.
        paths::get_clipboard,
        paths::set_clipboard,
    ),
    tags((name = "computer-use", description = "The desktop: processes, mouse, keyboard, screenshots, displays and accessibility. Served by the computer-use agent, which the daemon starts on the first request."))
)]
pub struct ComputerUseDoc;

/// The document of the computer-use routes, for merging into the daemon's.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ComputerUseDoc::openapi()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn doc() -> Value {
        serde_json::to_value(openapi()).unwrap()
    }

    #[test]
    fn every_relayed_route_is_described_once_with_the_clients_methods() {
        let doc = doc();
        let mut ops: Vec<(String, String)> = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                if ["get", "post", "put", "delete", "patch"].contains(&method.as_str()) {
                    ops.push((method.to_uppercase(), path.clone()));
                }
            }
        }
        ops.sort();
        let mut want: Vec<(String, String)> = [
            ("POST", "/computeruse/start"),
            ("POST", "/computeruse/stop"),
            ("GET", "/computeruse/status"),
            ("GET", "/computeruse/process-status"),
            ("GET", "/computeruse/process/{processName}/status"),
            ("POST", "/computeruse/process/{processName}/restart"),
            ("GET", "/computeruse/process/{processName}/logs"),
            ("GET", "/computeruse/process/{processName}/errors"),
            ("GET", "/computeruse/mouse/position"),
            ("POST", "/computeruse/mouse/move"),
            ("POST", "/computeruse/mouse/click"),
            ("POST", "/computeruse/mouse/drag"),
            ("POST", "/computeruse/mouse/scroll"),
            ("POST", "/computeruse/mouse/down"),
            ("POST", "/computeruse/mouse/up"),
            ("POST", "/computeruse/keyboard/type"),
            ("POST", "/computeruse/keyboard/key"),
            ("POST", "/computeruse/keyboard/hotkey"),
            ("POST", "/computeruse/keyboard/down"),
            ("POST", "/computeruse/keyboard/up"),
            ("GET", "/computeruse/screenshot"),
            ("GET", "/computeruse/screenshot/region"),
            ("GET", "/computeruse/screenshot/compressed"),
            ("GET", "/computeruse/screenshot/region/compressed"),
            ("GET", "/computeruse/display/info"),
            ("GET", "/computeruse/display/windows"),
            ("GET", "/computeruse/a11y/tree"),
            ("POST", "/computeruse/a11y/find"),
            ("POST", "/computeruse/a11y/node/focus"),
            ("POST", "/computeruse/a11y/node/invoke"),
            ("POST", "/computeruse/a11y/node/value"),
            ("POST", "/computeruse/a11y/wait"),
            // Ours (not in Daytona's daemon).
            ("GET", "/computeruse/clipboard"),
            ("POST", "/computeruse/clipboard"),
        ]
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
        want.sort();
        assert_eq!(ops, want);
    }

    #[test]
    fn every_operation_documents_the_unavailable_agent_and_its_errors() {
        let doc = doc();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let responses = op["responses"].as_object().unwrap();
                assert!(responses.contains_key("200"), "{method} {path}");
                // The daemon answers 503 whenever the agent cannot run.
                assert!(responses.contains_key("503"), "{method} {path} lacks 503");
                for (status, r) in responses {
                    // 304 (ours, on the screenshots) has no body by definition.
                    if status != "200" && status != "304" {
                        assert_eq!(
                            r["content"]["application/json"]["schema"]["$ref"], ERROR_SCHEMA_REF,
                            "{method} {path} {status}"
                        );
                    }
                }
                assert_eq!(op["tags"][0], TAG, "{method} {path}");
                // OpenAPI requires a description on every response.
                for (status, r) in responses {
                    assert!(
                        r["description"].as_str().is_some_and(|d| !d.is_empty()),
                        "{method} {path} {status}"
                    );
                }
                // Every JSON body can be refused as malformed or too large.
                if op.get("requestBody").is_some() {
                    for status in ["400", "413"] {
                        assert!(responses.contains_key(status), "{method} {path} lacks {status}");
                    }
                }
            }
        }
    }

    #[test]
    fn every_referenced_schema_is_defined_here_or_is_the_envelope() {
        let doc = doc();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        let text = doc.to_string();
        for part in text.split("\"$ref\":\"").skip(1) {
            let target = &part[..part.find('"').unwrap()];
            if target == ERROR_SCHEMA_REF {
                continue;
            }
            let name = target.strip_prefix("#/components/schemas/").expect(target);
            assert!(schemas.contains_key(name), "{name} is referenced but not defined");
        }
    }

    #[test]
    fn constraints_the_agent_enforces_are_in_the_schemas() {
        let doc = doc();
        let s = &doc["components"]["schemas"];
        assert_eq!(s["MouseScrollRequest"]["properties"]["amount"]["minimum"], 0);
        assert_eq!(
            s["MouseScrollRequest"]["properties"]["amount"]["maximum"],
            input::MAX_SCROLL_AMOUNT as f64
        );
        assert_eq!(s["MouseClickRequest"]["properties"]["clicks"]["minimum"], 1);
        assert_eq!(s["MouseClickRequest"]["properties"]["clicks"]["maximum"], input::MAX_CLICKS as f64);
        for (schema, field) in [
            ("AccessibilityNodeRequest", "id"),
            ("AccessibilityInvokeRequest", "id"),
            ("AccessibilitySetValueRequest", "id"),
            ("KeyboardKeyDownRequest", "key"),
            ("KeyboardKeyUpRequest", "key"),
        ] {
            let required = s[schema]["required"].as_array().unwrap_or_else(|| panic!("{schema}"));
            assert!(required.contains(&Value::from(field)), "{schema}.{field}");
        }
        let wait = &s["AccessibilityWaitRequest"]["properties"];
        assert_eq!(wait["timeout"]["maximum"], a11y::WAIT_MAX_TIMEOUT_MS as f64);
        assert_eq!(wait["pollIntervalMs"]["maximum"], a11y::WAIT_MAX_RECHECK_MS as f64);
        let region = &doc["paths"]["/computeruse/screenshot/region"]["get"]["parameters"];
        let required: Vec<&str> = region
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["required"] == true)
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(required, ["x", "y", "width", "height"]);
    }

    /// Ours: the screenshot routes' tags and 304, the clipboard routes, marked as extensions.
    #[test]
    fn the_extensions_are_described_and_marked_as_ours() {
        let doc = doc();
        for path in [
            "/computeruse/screenshot",
            "/computeruse/screenshot/region",
            "/computeruse/screenshot/compressed",
            "/computeruse/screenshot/region/compressed",
        ] {
            let op = &doc["paths"][path]["get"];
            let params: Vec<(String, String)> = op["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| (p["name"].as_str().unwrap().to_owned(), p["in"].as_str().unwrap().to_owned()))
                .collect();
            assert!(params.contains(&("If-None-Match".into(), "header".into())), "{path}");
            assert!(params.contains(&("ifNoneMatch".into(), "query".into())), "{path}");
            let r = &op["responses"];
            assert!(r["200"]["headers"]["ETag"].is_object(), "{path}");
            assert!(r["304"]["headers"]["ETag"].is_object(), "{path}");
            assert!(r["304"].get("content").is_none(), "{path}: a 304 has no body");
            assert!(r["304"]["description"].as_str().unwrap().starts_with("Ours"), "{path}");
        }
        for method in ["get", "post"] {
            let op = &doc["paths"]["/computeruse/clipboard"][method];
            assert!(op["description"].as_str().unwrap().contains("not in Daytona's daemon"), "{method}");
        }
        let set = &doc["components"]["schemas"]["SetClipboardRequest"];
        assert_eq!(set["required"], serde_json::json!(["text"]));
        let statuses: Vec<&String> =
            doc["paths"]["/computeruse/clipboard"]["get"]["responses"].as_object().unwrap().keys().collect();
        for s in ["200", "409", "413", "503", "504"] {
            assert!(statuses.iter().any(|k| *k == s), "GET clipboard lacks {s}");
        }
    }
}
