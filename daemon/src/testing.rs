//! In-process router tests: an area's routes over a fresh [`AppState`] whose home is a
//! throw-away directory, behind the error layer as in the server, and one-shot requests to them.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;
use utoipa_axum::router::OpenApiRouter;

use crate::env::ChildEnv;
use crate::error::envelope_layer;
use crate::state::AppState;

/// An area's routes, ready for requests.
pub struct TestApp {
    pub state: AppState,
    router: Router,
    /// `$HOME` of the state (sessions live under it); removed when the app is dropped.
    pub home: tempfile::TempDir,
}

/// A whole answer.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl TestApp {
    pub fn new(routes: OpenApiRouter<AppState>) -> Self {
        Self::with(routes, &[], |_| {})
    }

    /// Like [`TestApp::new`], with more configuration variables and a last change to the state
    /// before the routes get it.
    pub fn with(
        routes: OpenApiRouter<AppState>,
        vars: &[(&str, &str)],
        adjust: impl FnOnce(&mut AppState),
    ) -> Self {
        let home = tempfile::tempdir().expect("temporary home");
        let vars = [("DAYTONA_SANDBOX_ID", "test")]
            .iter()
            .chain(vars)
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let config = crate::config::from_env(&vars).expect("test configuration");
        let env = ChildEnv::new([
            ("HOME".into(), home.path().into()),
            ("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()),
        ]);
        let mut state = AppState::new(config, env, home.path().to_path_buf());
        adjust(&mut state);
        let (router, _doc) = routes.split_for_parts();
        let router = router.with_state(state.clone()).layer(axum::middleware::from_fn(envelope_layer));
        TestApp { state, router, home }
    }

    pub async fn request(&self, req: Request) -> Answer {
        let res = self.router.clone().oneshot(req).await.unwrap_or_else(|e| match e {});
        let (parts, body) = res.into_parts();
        let body = body.collect().await.expect("the body is readable").to_bytes();
        Answer { status: parts.status, headers: parts.headers, body }
    }

    pub async fn send(&self, method: &str, uri: &str, body: impl Into<Body>) -> Answer {
        let req = Request::builder().method(method).uri(uri).body(body.into()).expect("a valid request");
        self.request(req).await
    }

    pub async fn get(&self, uri: &str) -> Answer {
        self.send("GET", uri, Body::empty()).await
    }
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// Asserts an error envelope with `status` and `code`; returns its message.
    #[track_caller]
    pub fn envelope(&self, status: StatusCode, code: &str) -> String {
        assert_eq!(self.status, status, "{}", String::from_utf8_lossy(&self.body));
        let v = self.json();
        assert_eq!(v["statusCode"], status.as_u16(), "{v}");
        assert_eq!(v["code"], code, "{v}");
        assert_eq!(v["source"], "DAYTONA_DAEMON", "{v}");
        v["message"].as_str().expect("a message").to_string()
    }
}
