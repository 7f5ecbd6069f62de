//! Display information and the window list (spec computer-use.md §6, recommended variant).

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use crate::error::ApiError;
use crate::state::AppState;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Display {
    id: usize,
    x: i32,
    y: i32,
    width: u32,
    height: u32,
    is_active: bool,
}

#[derive(Serialize)]
struct Displays {
    displays: Vec<Display>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Window {
    /// The owner's pid (`_NET_WM_PID`, 0 when unknown), as the reference reports it.
    id: u32,
    title: String,
    x: i32,
    y: i32,
    width: u32,
    height: u32,
    is_active: bool,
}

#[derive(Serialize)]
struct Windows {
    windows: Vec<Window>,
}

async fn info(State(s): State<AppState>) -> Result<Json<Displays>, ApiError> {
    let screens = s.x11.run(|x| Ok(x.with(|c| c.screens())?)).await?;
    let displays = screens
        .into_iter()
        .enumerate()
        .map(|(id, r)| Display { id, x: r.x, y: r.y, width: r.width, height: r.height, is_active: true })
        .collect();
    Ok(Json(Displays { displays }))
}

async fn windows(State(s): State<AppState>) -> Result<Json<Windows>, ApiError> {
    let list = s.x11.run(|x| Ok(x.with(|c| c.windows())?)).await?;
    let windows = list
        .into_iter()
        .map(|w| Window {
            id: w.pid,
            title: w.title,
            x: w.x,
            y: w.y,
            width: w.width,
            height: w.height,
            is_active: w.active,
        })
        .collect();
    Ok(Json(Windows { windows }))
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/computeruse/display/info", get(info))
        .route("/computeruse/display/windows", get(windows))
}
