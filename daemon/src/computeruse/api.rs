//! `/computeruse/*` on the daemon: every request (except recordings) is relayed to the agent as
//! it is, and the agent's answer comes back as it is. The routes' description, with their
//! bodies and statuses, is the one the agent serves its bodies from (`computer-use-api`), so it
//! joins the daemon's document here.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use utoipa_axum::router::OpenApiRouter;

use super::Unavailable;
use super::forward::is_forwarded;
use crate::error::ApiError;
use crate::state::AppState;

/// Every `/computeruse/*` route except recordings goes to the agent; the document describes
/// each of them.
pub fn routes() -> OpenApiRouter<AppState> {
    // The relay's catch-all serves every path, so lean routes need none of the description.
    let described = if crate::openapi::is_lean() {
        OpenApiRouter::new()
    } else {
        OpenApiRouter::with_openapi(computer_use_api::openapi())
    };
    described.route("/computeruse", any(relay)).route("/computeruse/{*rest}", any(relay))
}

impl From<Unavailable> for ApiError {
    /// No code: the reference sends none, and the clients pick their exception by status.
    fn from(e: Unavailable) -> ApiError {
        ApiError::uncoded(StatusCode::SERVICE_UNAVAILABLE, e.0)
    }
}

async fn relay(State(state): State<AppState>, req: Request) -> Response {
    if !is_forwarded(req.uri().path()) {
        return ApiError::not_found(format!("no route for {} {}", req.method(), req.uri().path()))
            .into_response();
    }
    match state.computer_use.handle(req).await {
        Ok(res) => res,
        Err(e) => ApiError::from(e).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::Router;
    use axum::body::Body;
    use axum::http::Method;
    use http_body_util::BodyExt;
    use serde_json::Value;
    use tower::ServiceExt;
    use utoipa::OpenApi;

    use super::*;
    use crate::computeruse::ComputerUse;
    use crate::env::ChildEnv;
    use crate::error::envelope_layer;
    use crate::reaper::Reaper;

    fn state(agent_bin: &std::path::Path) -> AppState {
        let vars: std::collections::HashMap<String, String> =
            [("DAYTONA_SANDBOX_ID".to_string(), "t".to_string())].into_iter().collect();
        let cfg = crate::config::from_env(&vars).unwrap();
        let env = ChildEnv::new([("HOME".into(), std::env::temp_dir().into())]);
        let mut state = AppState::new(cfg, env, std::env::temp_dir());
        let cu =
            ComputerUse::new(state.env.clone(), Reaper::global(), std::env::temp_dir().join("cu-api-test"));
        state.computer_use = Arc::new(cu.with_agent_bin(agent_bin.to_path_buf()));
        state
    }

    fn app(state: AppState) -> Router {
        let (router, _) = routes().split_for_parts();
        router.layer(axum::middleware::from_fn(envelope_layer)).with_state(state)
    }

    async fn send(app: &Router, method: Method, uri: &str) -> (StatusCode, Value) {
        let req = Request::builder().method(method).uri(uri).body(Body::empty()).unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn recordings_are_not_relayed_and_are_a_404_envelope() {
        let app = app(state(std::path::Path::new("/nonexistent/agent")));
        for (method, uri) in [
            (Method::GET, "/computeruse/recordings"),
            (Method::POST, "/computeruse/recordings/start"),
            (Method::DELETE, "/computeruse/recordings/abc"),
        ] {
            let (status, v) = send(&app, method.clone(), uri).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{method} {uri}");
            assert_eq!(v["code"], "NOT_FOUND", "{v}");
            assert_eq!(v["message"], format!("not found: no route for {method} {uri}"));
        }
    }

    #[tokio::test]
    async fn no_agent_is_an_uncoded_503_envelope_naming_it() {
        let missing = std::env::temp_dir().join("no-such-computer-use-agent");
        let app = app(state(&missing));
        let (status, v) = send(&app, Method::GET, "/computeruse/status").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{v}");
        assert!(v.get("code").is_none(), "{v}");
        let message = v["message"].as_str().unwrap();
        assert!(
            message.starts_with("computer-use plugin is still loading or failed to initialize: "),
            "{message}"
        );
        assert!(message.contains("no-such-computer-use-agent does not exist"), "{message}");
        assert_eq!((v["path"].as_str(), v["method"].as_str()), (Some("/computeruse/status"), Some("GET")));
    }

    /// The daemon's document with these routes merged in, as the server assembles it.
    fn merged() -> Value {
        let (_, doc) = OpenApiRouter::<AppState>::with_openapi(crate::openapi::ApiDoc::openapi())
            .merge(routes())
            .split_for_parts();
        serde_json::to_value(doc).unwrap()
    }

    #[test]
    fn the_document_describes_every_relayed_route() {
        let doc = merged();
        let paths = doc["paths"].as_object().unwrap();
        let ours: Vec<&String> = paths.keys().filter(|p| p.starts_with("/computeruse")).collect();
        // One operation per path, as the clients call them; our clipboard is read and set on one.
        assert_eq!(ours.len(), 33, "{ours:?}");
        let operations = |p: &str| paths[p].as_object().unwrap().len();
        assert!(ours.iter().all(|p| operations(p) == if *p == "/computeruse/clipboard" { 2 } else { 1 }));
        for p in &ours {
            assert!(is_forwarded(p), "{p} is documented but not relayed");
        }
        // Operation ids must stay unique across the whole document.
        let mut ids: Vec<&str> = paths
            .values()
            .flat_map(|item| item.as_object().unwrap().values())
            .filter_map(|op| op["operationId"].as_str())
            .collect();
        let count = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), count, "duplicate operationId");
        let tree = &paths["/computeruse/a11y/tree"]["get"];
        assert_eq!(
            tree["responses"]["503"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/ErrorResponse"
        );
    }

    #[test]
    fn every_reference_resolves_and_no_schema_is_shadowed() {
        let doc = merged();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        let text = doc.to_string();
        for part in text.split("\"$ref\":\"").skip(1) {
            let target = &part[..part.find('"').unwrap()];
            let name = target.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("{target}"));
            assert!(schemas.contains_key(name), "{name} is referenced but not defined");
        }
        // A daemon schema of the same name would silently win the merge.
        let agent = serde_json::to_value(computer_use_api::openapi()).unwrap();
        for (name, schema) in agent["components"]["schemas"].as_object().unwrap() {
            assert_eq!(&schemas[name], schema, "{name} is shadowed by another schema of that name");
        }
    }
}
