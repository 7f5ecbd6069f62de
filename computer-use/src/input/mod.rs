//! Mouse and keyboard over XTEST (spec computer-use.md §4–5, sdk-0.226.md §3.6, §4.3).
//!
//! Handlers validate first (400 `bad request: <reference text>`), then run the X sequence on a
//! blocking thread.

pub mod keyboard;
pub mod keys;
pub mod mouse;
pub mod quote;

use axum::extract::State;
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::{ApiError, Json};
use crate::state::AppState;
use crate::x11::keymap::token_keysym;
use crate::x11::{X11, XError};

/// Presses `mods` in order, runs `f`, releases them in reverse order — also when `f` failed.
pub(crate) fn with_modifiers<R>(
    x11: &X11,
    mods: &[&'static str],
    f: impl FnOnce() -> Result<R, XError>,
) -> Result<R, XError> {
    if mods.is_empty() {
        return f();
    }
    let mut pressed: Vec<u8> = Vec::new();
    let r = (|| {
        for m in mods {
            let sym = token_keysym(m).ok_or_else(|| XError::new(format!("no keysym for modifier {m}")))?;
            let avoid = pressed.clone();
            let kc = x11.with(|c| {
                let (kc, _) = c.keycode_for(sym, &avoid)?;
                c.key(kc, true)?;
                Ok(kc)
            })?;
            pressed.push(kc);
        }
        x11.with(|c| c.sync())?;
        f()
    })();
    let released = x11.with(|c| {
        for kc in pressed.iter().rev() {
            c.key(*kc, false)?;
        }
        c.sync()
    });
    match (r, released) {
        (Ok(v), Ok(())) => Ok(v),
        (Err(e), _) | (Ok(_), Err(e)) => Err(e),
    }
}

#[derive(Serialize)]
struct Point {
    x: i32,
    y: i32,
}

impl From<(i32, i32)> for Point {
    fn from((x, y): (i32, i32)) -> Point {
        Point { x, y }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct MoveReq {
    x: i32,
    y: i32,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ClickReq {
    x: i32,
    y: i32,
    button: String,
    double: bool,
    clicks: Option<i64>,
    modifiers: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct DragReq {
    start_x: i32,
    start_y: i32,
    end_x: i32,
    end_y: i32,
    button: String,
    modifiers: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ScrollReq {
    x: i32,
    y: i32,
    direction: String,
    amount: Option<i64>,
    modifiers: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ButtonReq {
    button: String,
    x: Option<i32>,
    y: Option<i32>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TypeReq {
    text: String,
    delay: Option<i64>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct KeyReq {
    key: String,
    modifiers: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct HotkeyReq {
    keys: String,
}

#[derive(Deserialize)]
struct KeyStateReq {
    key: String,
}

fn bad(e: String) -> ApiError {
    ApiError::bad_request(e)
}

/// Modifier lists of mouse actions are checked like `press` modifiers; the context names the
/// action the way the SDK user wrote it.
fn mouse_modifiers(action: &str, raw: &Option<Vec<String>>) -> Result<Vec<&'static str>, ApiError> {
    let raw = raw.as_deref().unwrap_or(&[]);
    let list: Vec<String> = raw.iter().map(|m| quote::go_quote(m)).collect();
    keys::normalize_modifiers(raw, &format!("{action}([{}])", list.join(", "))).map_err(bad)
}

async fn position(State(s): State<AppState>) -> Result<Json<Point>, ApiError> {
    s.x11.run(|x| Ok(mouse::position(x)?.into())).await.map(Json)
}

async fn move_mouse(
    State(s): State<AppState>,
    Json(r): Json<MoveReq>,
) -> Result<Json<Point>, ApiError> {
    s.x11.run(move |x| Ok(mouse::move_to(x, r.x, r.y)?.into())).await.map(Json)
}

async fn click(State(s): State<AppState>, Json(r): Json<ClickReq>) -> Result<Json<Point>, ApiError> {
    let b = mouse::button(&r.button).map_err(bad)?;
    let n = mouse::click_count(r.clicks, r.double).map_err(bad)?;
    let mods = mouse_modifiers("click", &r.modifiers)?;
    s.x11.run(move |x| Ok(mouse::click(x, r.x, r.y, b, n, &mods)?.into())).await.map(Json)
}

async fn drag(State(s): State<AppState>, Json(r): Json<DragReq>) -> Result<Json<Point>, ApiError> {
    let b = mouse::button(&r.button).map_err(bad)?;
    let mods = mouse_modifiers("drag", &r.modifiers)?;
    s.x11
        .run(move |x| Ok(mouse::drag(x, (r.start_x, r.start_y), (r.end_x, r.end_y), b, &mods)?.into()))
        .await
        .map(Json)
}

async fn scroll(
    State(s): State<AppState>,
    Json(r): Json<ScrollReq>,
) -> Result<Json<Value>, ApiError> {
    let b = mouse::scroll_button(&r.direction).map_err(bad)?;
    let amount = mouse::scroll_amount(r.amount).map_err(bad)?;
    let mods = mouse_modifiers("scroll", &r.modifiers)?;
    s.x11.run(move |x| Ok(mouse::scroll(x, r.x, r.y, b, amount, &mods)?)).await?;
    Ok(Json(json!({"success": true})))
}

fn button_target(r: &ButtonReq) -> Result<(u8, Option<(i32, i32)>), ApiError> {
    let b = mouse::button(&r.button).map_err(bad)?;
    let at = match (r.x, r.y) {
        (Some(x), Some(y)) => Some((x, y)),
        (None, None) => None,
        _ => return Err(ApiError::bad_request("x and y must be given together")),
    };
    Ok((b, at))
}

async fn mouse_down(
    State(s): State<AppState>,
    Json(r): Json<ButtonReq>,
) -> Result<Json<Point>, ApiError> {
    let (b, at) = button_target(&r)?;
    s.x11.run(move |x| Ok(mouse::press(x, at, b, true)?.into())).await.map(Json)
}

async fn mouse_up(
    State(s): State<AppState>,
    Json(r): Json<ButtonReq>,
) -> Result<Json<Point>, ApiError> {
    let (b, at) = button_target(&r)?;
    s.x11.run(move |x| Ok(mouse::press(x, at, b, false)?.into())).await.map(Json)
}

async fn type_text(
    State(s): State<AppState>,
    Json(r): Json<TypeReq>,
) -> Result<Json<Value>, ApiError> {
    let actions = keys::typing_actions(&r.text).map_err(bad)?;
    let delay = r.delay.unwrap_or(0);
    s.x11.run(move |x| Ok(keyboard::type_text(x, &actions, delay)?)).await?;
    Ok(Json(json!({})))
}

async fn press_key(
    State(s): State<AppState>,
    Json(r): Json<KeyReq>,
) -> Result<Json<Value>, ApiError> {
    let chord = keys::normalize_press(&r.key, r.modifiers.as_deref().unwrap_or(&[])).map_err(bad)?;
    s.x11.run(move |x| Ok(keyboard::press_chord(x, &chord)?)).await?;
    Ok(Json(json!({})))
}

async fn hotkey(
    State(s): State<AppState>,
    Json(r): Json<HotkeyReq>,
) -> Result<Json<Value>, ApiError> {
    let chord = keys::normalize_hotkey(&r.keys).map_err(bad)?;
    s.x11.run(move |x| Ok(keyboard::press_chord(x, &chord)?)).await?;
    Ok(Json(json!({})))
}

async fn key_state(s: AppState, r: KeyStateReq, down: bool) -> Result<Json<Value>, ApiError> {
    let key = keys::normalize_key(&r.key).map_err(bad)?;
    s.x11.run(move |x| Ok(keyboard::key_state(x, &key.token, down)?)).await?;
    Ok(Json(json!({})))
}

async fn key_down(
    State(s): State<AppState>,
    Json(r): Json<KeyStateReq>,
) -> Result<Json<Value>, ApiError> {
    key_state(s, r, true).await
}

async fn key_up(
    State(s): State<AppState>,
    Json(r): Json<KeyStateReq>,
) -> Result<Json<Value>, ApiError> {
    key_state(s, r, false).await
}

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
