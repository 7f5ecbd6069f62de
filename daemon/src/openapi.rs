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
