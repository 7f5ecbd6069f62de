//! `/computeruse/mouse/*` and `/computeruse/keyboard/*`: bodies checked first (400 `bad request:
//! <reference text>`), then the X sequence on a blocking thread.

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use computer_use_api::Empty;
use computer_use_api::input::{
    KeyboardHotkeyRequest, KeyboardKeyDownRequest, KeyboardKeyUpRequest, KeyboardPressRequest,
    KeyboardTypeRequest, MouseClickRequest, MouseClickResponse, MouseDownRequest, MouseDragRequest,
    MouseDragResponse, MouseMoveRequest, MousePositionResponse, MouseScrollRequest, MouseUpRequest,
    ScrollResponse,
};

use super::{keyboard, keys, mouse, quote};
use crate::error::{ApiError, Json};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/computeruse/mouse/position", get(position))
        .route("/computeruse/mouse/move", post(move_mouse))
        .route("/computeruse/mouse/click", post(click))
        .route("/computeruse/mouse/drag", post(drag))
        .route("/computeruse/mouse/scroll", post(scroll))
        .route("/computeruse/mouse/down", post(mouse_down))
        .route("/computeruse/mouse/up", post(mouse_up))
        .route("/computeruse/keyboard/type", post(type_text))
        .route("/computeruse/keyboard/key", post(press_key))
        .route("/computeruse/keyboard/hotkey", post(hotkey))
        .route("/computeruse/keyboard/down", post(key_down))
        .route("/computeruse/keyboard/up", post(key_up))
}

fn bad(e: String) -> ApiError {
    ApiError::bad_request(e)
}

fn at((x, y): (i32, i32)) -> MousePositionResponse {
    MousePositionResponse { x, y }
}

/// Modifier lists of mouse actions are checked like `press` modifiers; the context names the
/// action the way the SDK user wrote it.
fn mouse_modifiers(action: &str, raw: &Option<Vec<String>>) -> Result<Vec<&'static str>, ApiError> {
    let raw = raw.as_deref().unwrap_or(&[]);
    let list: Vec<String> = raw.iter().map(|m| quote::go_quote(m)).collect();
    keys::normalize_modifiers(raw, &format!("{action}([{}])", list.join(", "))).map_err(bad)
}

async fn position(State(s): State<AppState>) -> Result<Json<MousePositionResponse>, ApiError> {
    let p = s.x11.run(mouse::position).await?;
    Ok(Json(at(p)))
}

/// A non-blank element id (extension): blank ones count as absent, as clients that always send
/// the field with coordinate calls send them.
fn element(id: &Option<String>) -> Option<&str> {
    id.as_deref().map(str::trim).filter(|i| !i.is_empty())
}

/// Where a pointer action acts: the coordinates, or the centre of the element's current bounds
/// (extension). The keys name the fields in messages.
async fn target(
    s: &AppState,
    (xkey, ykey, idkey): (&str, &str, &str),
    x: Option<i32>,
    y: Option<i32>,
    id: Option<&str>,
) -> Result<(i32, i32), ApiError> {
    match id {
        Some(_) if x.is_some() || y.is_some() => {
            Err(ApiError::bad_request(format!("give either {idkey} or {xkey}/{ykey}, not both")))
        }
        Some(id) => crate::a11y::api::element_point(&s.a11y, id).await,
        // Missing coordinates are 0, as the agent has always treated them.
        None => Ok((x.unwrap_or(0), y.unwrap_or(0))),
    }
}

async fn move_mouse(
    State(s): State<AppState>,
    Json(r): Json<MouseMoveRequest>,
) -> Result<Json<MousePositionResponse>, ApiError> {
    let (tx, ty) = target(&s, ("x", "y", "elementId"), r.x, r.y, element(&r.element_id)).await?;
    let p = s.x11.run(move |x| mouse::move_to(x, tx, ty)).await?;
    Ok(Json(at(p)))
}

async fn click(
    State(s): State<AppState>,
    Json(r): Json<MouseClickRequest>,
) -> Result<Json<MouseClickResponse>, ApiError> {
    let b = mouse::button(&r.button).map_err(bad)?;
    let n = mouse::click_count(r.clicks, r.double).map_err(bad)?;
    let mods = mouse_modifiers("click", &r.modifiers)?;
    let (tx, ty) = target(&s, ("x", "y", "elementId"), r.x, r.y, element(&r.element_id)).await?;
    let (x, y) = s.x11.run(move |x| mouse::click(x, tx, ty, b, n, &mods)).await?;
    Ok(Json(MouseClickResponse { x, y }))
}

async fn drag(
    State(s): State<AppState>,
    Json(r): Json<MouseDragRequest>,
) -> Result<Json<MouseDragResponse>, ApiError> {
    let b = mouse::button(&r.button).map_err(bad)?;
    let mods = mouse_modifiers("drag", &r.modifiers)?;
    // Each end is coordinates or a node, independently.
    let start = target(
        &s,
        ("startX", "startY", "startElementId"),
        r.start_x,
        r.start_y,
        element(&r.start_element_id),
    )
    .await?;
    let end =
        target(&s, ("endX", "endY", "endElementId"), r.end_x, r.end_y, element(&r.end_element_id)).await?;
    let (x, y) = s.x11.run(move |x| mouse::drag(x, start, end, b, &mods)).await?;
    Ok(Json(MouseDragResponse { x, y }))
}

async fn scroll(
    State(s): State<AppState>,
    Json(r): Json<MouseScrollRequest>,
) -> Result<Json<ScrollResponse>, ApiError> {
    let b = mouse::scroll_button(&r.direction).map_err(bad)?;
    let amount = mouse::scroll_amount(r.amount).map_err(bad)?;
    let mods = mouse_modifiers("scroll", &r.modifiers)?;
    s.x11.run(move |x| mouse::scroll(x, r.x, r.y, b, amount, &mods)).await?;
    Ok(Json(ScrollResponse { success: true }))
}

/// The button, and where to move first: both coordinates or neither.
fn button_target(button: &str, x: Option<i32>, y: Option<i32>) -> Result<(u8, Option<(i32, i32)>), ApiError> {
    let b = mouse::button(button).map_err(bad)?;
    let at = match (x, y) {
        (Some(x), Some(y)) => Some((x, y)),
        (None, None) => None,
        _ => return Err(ApiError::bad_request("x and y must be given together")),
    };
    Ok((b, at))
}

async fn mouse_down(
    State(s): State<AppState>,
    Json(r): Json<MouseDownRequest>,
) -> Result<Json<MousePositionResponse>, ApiError> {
    let (b, to) = button_target(&r.button, r.x, r.y)?;
    let p = s.x11.run(move |x| mouse::press(x, to, b, true)).await?;
    Ok(Json(at(p)))
}

async fn mouse_up(
    State(s): State<AppState>,
    Json(r): Json<MouseUpRequest>,
) -> Result<Json<MousePositionResponse>, ApiError> {
    let (b, to) = button_target(&r.button, r.x, r.y)?;
    let p = s.x11.run(move |x| mouse::press(x, to, b, false)).await?;
    Ok(Json(at(p)))
}

async fn type_text(
    State(s): State<AppState>,
    Json(r): Json<KeyboardTypeRequest>,
) -> Result<Json<Empty>, ApiError> {
    let actions = keys::typing_actions(&r.text).map_err(bad)?;
    let delay = r.delay.unwrap_or(0);
    // Extension: the keystrokes go to the element, focused first.
    if let Some(id) = element(&r.element_id) {
        crate::a11y::api::focus_element(&s.a11y, id).await?;
    }
    s.x11.run(move |x| keyboard::type_text(x, &actions, delay)).await?;
    Ok(Json(Empty {}))
}

async fn press_key(
    State(s): State<AppState>,
    Json(r): Json<KeyboardPressRequest>,
) -> Result<Json<Empty>, ApiError> {
    let chord = keys::normalize_press(&r.key, r.modifiers.as_deref().unwrap_or(&[])).map_err(bad)?;
    s.x11.run(move |x| keyboard::press_chord(x, &chord)).await?;
    Ok(Json(Empty {}))
}

async fn hotkey(
    State(s): State<AppState>,
    Json(r): Json<KeyboardHotkeyRequest>,
) -> Result<Json<Empty>, ApiError> {
    let chord = keys::normalize_hotkey(&r.keys).map_err(bad)?;
    s.x11.run(move |x| keyboard::press_chord(x, &chord)).await?;
    Ok(Json(Empty {}))
}

async fn key_state(s: AppState, key: &str, down: bool) -> Result<Json<Empty>, ApiError> {
    let key = keys::normalize_key(key).map_err(bad)?;
    s.x11.run(move |x| keyboard::key_state(x, &key.token, down)).await?;
    Ok(Json(Empty {}))
}

async fn key_down(
    State(s): State<AppState>,
    Json(r): Json<KeyboardKeyDownRequest>,
) -> Result<Json<Empty>, ApiError> {
    key_state(s, &r.key, true).await
}

async fn key_up(
    State(s): State<AppState>,
    Json(r): Json<KeyboardKeyUpRequest>,
) -> Result<Json<Empty>, ApiError> {
    key_state(s, &r.key, false).await
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::extract::Request;
    use axum::http::StatusCode;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use crate::config::Config;
    use crate::state::AppState;

    /// The agent's router with no desktop: a display and a session bus nobody serves, so an
    /// answer that is not 503 was decided before either was needed.
    fn app() -> axum::Router {
        let mut config = Config::from_lookup(|_| None).unwrap();
        config.display = ":4242".into();
        let state = AppState::new(config);
        state.desktop_env.update(|e| e.dbus_session_bus_address = Some("unix:path=/nonexistent/bus".into()));
        // The area's routes under the shared error layer (not `server::router`: the server
        // module imports this one).
        super::routes().layer(axum::middleware::from_fn(toolbox_envelope::layer)).with_state(state)
    }

    async fn post(app: &axum::Router, path: &str, body: &str) -> (StatusCode, serde_json::Value) {
        let req = Request::post(path)
            .header("content-type", "application/json")
            .body(Body::from(body.to_owned()))
            .unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    const NODE: &str = ":1.5:/org/a11y/atspi/accessible/3";

    #[tokio::test]
    async fn an_element_and_coordinates_together_are_refused() {
        let app = app();
        for (path, body, names) in [
            (
                "/computeruse/mouse/move",
                format!(r#"{{"x": 1, "y": 2, "elementId": "{NODE}"}}"#),
                "elementId or x/y",
            ),
            ("/computeruse/mouse/move", format!(r#"{{"y": 2, "element_id": "{NODE}"}}"#), "elementId or x/y"),
            ("/computeruse/mouse/click", format!(r#"{{"x": 0, "elementId": "{NODE}"}}"#), "elementId or x/y"),
            (
                "/computeruse/mouse/drag",
                format!(r#"{{"startX": 1, "startY": 1, "startElementId": "{NODE}", "endX": 5, "endY": 5}}"#),
                "startElementId or startX/startY",
            ),
            (
                "/computeruse/mouse/drag",
                format!(r#"{{"startX": 1, "startY": 1, "end_element_id": "{NODE}", "endY": 5}}"#),
                "endElementId or endX/endY",
            ),
        ] {
            let (status, v) = post(&app, path, &body).await;
            assert_eq!(
                (status, v["code"].as_str()),
                (StatusCode::BAD_REQUEST, Some("BAD_REQUEST")),
                "{path} {body}: {v}"
            );
            assert!(
                v["message"].as_str().unwrap().contains(&format!("give either {names}, not both")),
                "{v}"
            );
        }
    }

    #[tokio::test]
    async fn element_ids_are_checked_then_resolved_on_the_accessibility_bus() {
        let app = app();
        let (status, v) = post(&app, "/computeruse/mouse/click", r#"{"elementId": "no-path"}"#).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
        assert!(v["message"].as_str().unwrap().contains("invalid node id"), "{v}");
        // Cheap checks come first: a bad button is refused before the node is looked up.
        let (status, v) = post(
            &app,
            "/computeruse/mouse/click",
            &format!(r#"{{"elementId": "{NODE}", "button": "fourth"}}"#),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
        assert!(!v["message"].as_str().unwrap().contains("node"), "{v}");
        // A valid id needs the accessibility bus, which is not there.
        for (path, body) in [
            ("/computeruse/mouse/move", format!(r#"{{"elementId": "{NODE}"}}"#)),
            ("/computeruse/mouse/click", format!(r#"{{"element_id": "{NODE}", "clicks": 2}}"#)),
            ("/computeruse/mouse/drag", format!(r#"{{"startElementId": "{NODE}", "endX": 3, "endY": 4}}"#)),
            ("/computeruse/keyboard/type", format!(r#"{{"text": "hi", "elementId": "{NODE}"}}"#)),
        ] {
            let (status, v) = post(&app, path, &body).await;
            assert_eq!(
                (status, v["code"].as_str()),
                (StatusCode::SERVICE_UNAVAILABLE, Some("A11Y_UNAVAILABLE")),
                "{path}: {v}"
            );
        }
        // Blank ids are absent: coordinates as always, so the X display is what is missing.
        let (status, v) =
            post(&app, "/computeruse/mouse/move", r#"{"x": 3, "y": 4, "elementId": " "}"#).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{v}");
        assert!(v.get("code").is_none(), "{v}");
    }
}
