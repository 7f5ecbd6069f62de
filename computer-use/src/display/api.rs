//! `/computeruse/display/*`: the screens of the display and the top-level windows.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use computer_use_api::display::{DisplayInfo, DisplayInfoResponse, WindowInfo, WindowsResponse};

use crate::error::{ApiError, Json};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/computeruse/display/info", get(info))
        .route("/computeruse/display/windows", get(windows))
}

async fn info(State(s): State<AppState>) -> Result<Json<DisplayInfoResponse>, ApiError> {
    let screens = s.x11.run(|x| x.with(|c| c.screens())).await?;
    let displays = screens
        .into_iter()
        .enumerate()
        .map(|(id, r)| DisplayInfo { id, x: r.x, y: r.y, width: r.width, height: r.height, is_active: true })
        .collect();
    Ok(Json(DisplayInfoResponse { displays }))
}

async fn windows(State(s): State<AppState>) -> Result<Json<WindowsResponse>, ApiError> {
    let list = s.x11.run(|x| x.with(|c| c.windows())).await?;
    let windows = list
        .into_iter()
        .map(|w| WindowInfo {
            id: w.pid,
            title: w.title,
            x: w.x,
            y: w.y,
            width: w.width,
            height: w.height,
            is_active: w.active,
        })
        .collect();
    Ok(Json(WindowsResponse { windows }))
}
