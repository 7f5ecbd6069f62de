//! The OpenAPI document, assembled from the handlers' annotations, then completed by
//! [`complete`] with the answers the shared layers give on every route.

use utoipa::OpenApi;
use utoipa::openapi::path::Operation;
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};

/// The error envelope every failing route answers with (one struct, in `toolbox-envelope`).
pub use toolbox_envelope::Envelope as ErrorResponse;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Daytona toolbox daemon",
        description = "The in-sandbox toolbox API, wire-compatible with Daytona's official clients.\n\n\
Every error is the JSON `ErrorResponse` envelope. An unknown path, and a known path called with \
a method it does not serve, answer 404 `NOT_FOUND` (never 405), as the reference does. A path \
that exists only with or without a trailing slash redirects (301 for GET, 307 otherwise). \
Requests hyper cannot parse answer 400, 414 or 431 with the same envelope (its `path` and \
`method` empty).",
    ),
    components(schemas(ErrorResponse))
)]
pub struct ApiDoc;

/// Adds to every operation the answers the request layer gives whatever the route: 400 when it
/// takes parameters or a body (the typed extractors refuse what they cannot decode), 413 when
/// it takes a body (over the size limit), and 500 (the panic guard). An operation's own
/// description of a status is kept.
pub fn complete(doc: &mut utoipa::openapi::OpenApi) {
    for item in doc.paths.paths.values_mut() {
        let shared_params = item.parameters.as_ref().is_some_and(|p| !p.is_empty());
        let ops = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
        ];
        for op in ops.into_iter().flatten() {
            complete_operation(op, shared_params);
        }
    }
}

fn complete_operation(op: &mut Operation, shared_params: bool) {
    let has_params = shared_params || op.parameters.as_ref().is_some_and(|p| !p.is_empty());
    let has_body = op.request_body.is_some();
    let mut add = |status: &str, description: &str| {
        op.responses.responses.entry(status.to_owned()).or_insert_with(|| error_response(description));
    };
    if has_params || has_body {
        add("400", "bad input: a parameter or the body could not be decoded or is invalid");
    }
    if has_body {
        add("413", "the request body is larger than the limit");
    }
    add("500", "an unexpected failure inside the daemon");
}

pub fn error_response(description: &str) -> RefOr<Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorResponse"))).build(),
            )
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_answers_are_added_and_own_ones_kept() {
        let mut doc: utoipa::openapi::OpenApi = serde_json::from_value(serde_json::json!({
            "openapi": "3.1.0",
            "info": {"title": "t", "version": "1"},
            "paths": {
                "/a": {"post": {"requestBody": {"content": {"application/json": {}}},
                    "responses": {"200": {"description": "ok"}, "400": {"description": "mine"}}}},
                "/b": {"get": {"responses": {"200": {"description": "ok"}}}},
                "/c": {"get": {"parameters": [{"name": "q", "in": "query", "required": false, "schema": {"type": "string"}}],
                    "responses": {"200": {"description": "ok"}}}}
            }
        }))
        .unwrap();
        complete(&mut doc);
        let v = serde_json::to_value(&doc).unwrap();
        let a = &v["paths"]["/a"]["post"]["responses"];
        assert_eq!(a["400"]["description"], "mine");
        assert!(a.get("413").is_some() && a.get("500").is_some());
        let b = &v["paths"]["/b"]["get"]["responses"];
        assert!(b.get("400").is_none() && b.get("413").is_none() && b.get("500").is_some());
        let c = &v["paths"]["/c"]["get"]["responses"];
        assert!(c.get("400").is_some() && c.get("413").is_none());
    }
}

thread_local! {
    /// Whether routes registered on this thread leave their documentation out.
    static LEAN: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `build` with the [`routes!`] it reaches registering lean routes: the handler under its
/// path and methods, with an empty operation in place of the documented one. The serving
/// router is built this way at start-up, because building every operation and schema (and
/// dropping most of it again) was the largest part of the start-up; the full document is built
/// when something first asks for it.
pub fn lean<T>(build: impl FnOnce() -> T) -> T {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            LEAN.with(|l| l.set(self.0));
        }
    }
    let _reset = Reset(LEAN.with(|l| l.replace(true)));
    build()
}

/// Whether [`lean`] is in force on this thread (used by [`routes!`]).
pub fn is_lean() -> bool {
    LEAN.with(|l| l.get())
}

/// `utoipa_axum::routes!` for handlers annotated with `#[utoipa::path]`, which registers lean
/// routes inside [`lean`] and fully documented ones everywhere else.
macro_rules! routes {
    ( $($handler:ident),+ $(,)? ) => {
        if $crate::openapi::is_lean() {
            use utoipa_axum::PathItemExt as _;
            let mut paths = utoipa::openapi::path::Paths::new();
            let mut router = axum::routing::MethodRouter::new();
            $(
                utoipa_axum::paste! {
                    let path = <[<__path_ $handler>] as utoipa::Path>::path();
                    let methods = <[<__path_ $handler>] as utoipa::Path>::methods();
                }
                for m in &methods {
                    router = router.on(m.to_method_filter(), $handler);
                }
                paths.add_path_operation(&path, methods, utoipa::openapi::path::Operation::new());
            )+
            (Vec::new(), paths, router)
        } else {
            utoipa_axum::routes!($($handler),+)
        }
    };
}
pub(crate) use routes;
