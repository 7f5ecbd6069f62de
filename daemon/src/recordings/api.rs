//! `/computeruse/recordings*` on the toolbox port: handlers, bodies and routes over
//! [`recorder::Recorder`]. The dashboard's server, on a port of its own, is [`dashboard`].

pub mod dashboard;

use std::os::unix::fs::OpenOptionsExt;

use crate::openapi::routes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use recorder::RecorderError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;

use crate::error::{ApiError, Code};
use crate::extract::{Json, OptionalJson, Path, required};
use crate::state::AppState;
use toolbox_envelope::Envelope;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_recordings))
        .routes(routes!(start_recording))
        .routes(routes!(stop_recording))
        .routes(routes!(get_recording, delete_recording))
        .routes(routes!(download_recording))
}

/// The status and code of each service error (a function: neither type is this crate's).
pub fn api_error(e: RecorderError) -> ApiError {
    let msg = e.to_string();
    match &e {
        RecorderError::InvalidLabel => ApiError::bad_request(msg),
        RecorderError::FfmpegNotFound => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, Code::RecordingFfmpegNotFound, msg)
        }
        RecorderError::DisplayUnavailable { .. } => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, Code::RecordingDisplayUnavailable, msg)
        }
        RecorderError::NotFound | RecorderError::FileMissing => ApiError::not_found(msg),
        RecorderError::StillActive(_) => ApiError::new(StatusCode::CONFLICT, Code::RecordingStillActive, msg),
        RecorderError::TooMany(_) => ApiError::too_many_requests(msg),
        RecorderError::ShuttingDown => ApiError::uncoded(StatusCode::SERVICE_UNAVAILABLE, msg),
        RecorderError::Failed(_) => {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, Code::RecordingFailed, msg)
        }
        RecorderError::Io { .. } => ApiError::internal(msg),
    }
}

/// A recording. `error` is present only for `failed` and `interrupted` ones.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Recording)]
pub struct RecordingDoc {
    id: String,
    file_name: String,
    file_path: String,
    /// RFC 3339, the daemon's local time zone.
    start_time: String,
    end_time: Option<String>,
    status: RecordingStatus,
    duration_seconds: Option<f64>,
    size_bytes: Option<u64>,
    /// Why a recording failed or was interrupted (with the tail of ffmpeg's stderr).
    error: Option<String>,
}

/// Where a recording is: `failed` (ffmpeg died, could not start, or had to be killed) and
/// `interrupted` (the daemon stopped or restarted while it recorded) come with `error`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RecordingStatus {
    Recording,
    Completed,
    Failed,
    Interrupted,
}

#[derive(Serialize, ToSchema)]
pub struct ListRecordingsResponse {
    #[schema(value_type = Vec<RecordingDoc>)]
    recordings: Vec<recorder::Recording>,
}

#[derive(Deserialize, ToSchema)]
pub struct StartRecordingRequest {
    /// Goes into the file name: 1-100 letters, digits, spaces, dots, underscores or hyphens, not
    /// starting with a dot.
    label: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct StopRecordingRequest {
    #[schema(value_type = String)]
    id: Option<String>,
}

/// Every recording: active ones first, then the directory's by file name.
#[utoipa::path(
    get,
    path = "/computeruse/recordings",
    tag = "computer-use",
    responses(
        (status = 200, body = ListRecordingsResponse),
        (status = 500, description = "the directory cannot be read", body = Envelope),
    )
)]
async fn list_recordings(State(state): State<AppState>) -> Result<Json<ListRecordingsResponse>, ApiError> {
    Ok(Json(ListRecordingsResponse { recordings: state.recordings.list().await.map_err(api_error)? }))
}

/// Starts recording the desktop; answers once ffmpeg has produced its first frame. The body
/// may be left out.
#[utoipa::path(
    post,
    path = "/computeruse/recordings/start",
    tag = "computer-use",
    request_body(content = Option<StartRecordingRequest>),
    responses(
        (status = 201, body = RecordingDoc),
        (status = 400, description = "invalid label or body", body = Envelope),
        (status = 429, description = "too many recordings run at once", body = Envelope),
        (status = 500, description = "ffmpeg could not record (`RECORDING_FAILED`, with its stderr)", body = Envelope),
        (status = 503, description = "ffmpeg is not installed (`RECORDING_FFMPEG_NOT_FOUND`), no X server runs on the display (`RECORDING_DISPLAY_UNAVAILABLE`), or the daemon is shutting down", body = Envelope),
    )
)]
async fn start_recording(
    State(state): State<AppState>,
    OptionalJson(body): OptionalJson<StartRecordingRequest>,
) -> Result<(StatusCode, Json<recorder::Recording>), ApiError> {
    let label = body.and_then(|b| b.label);
    let launch = super::launch(&state.env);
    let recording = state.recordings.start(label.as_deref(), launch).await.map_err(api_error)?;
    Ok((StatusCode::CREATED, Json(recording)))
}

/// Stops a recording and finishes its file. A recording that already ended is answered as it
/// is.
#[utoipa::path(
    post,
    path = "/computeruse/recordings/stop",
    tag = "computer-use",
    request_body = StopRecordingRequest,
    responses(
        (status = 200, body = RecordingDoc),
        (status = 400, description = "missing id or bad body", body = Envelope),
        (status = 404, description = "no such recording", body = Envelope),
    )
)]
async fn stop_recording(
    State(state): State<AppState>,
    Json(body): Json<StopRecordingRequest>,
) -> Result<Json<recorder::Recording>, ApiError> {
    let id = required("id", &body.id)?;
    Ok(Json(state.recordings.stop(id).await.map_err(api_error)?))
}

#[utoipa::path(
    get,
    path = "/computeruse/recordings/{id}",
    tag = "computer-use",
    params(("id" = String, Path)),
    responses(
        (status = 200, body = RecordingDoc),
        (status = 404, description = "no such recording", body = Envelope),
    )
)]
async fn get_recording(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<recorder::Recording>, ApiError> {
    Ok(Json(state.recordings.get(&id).await.map_err(api_error)?))
}

/// Deletes a recording's file and record.
#[utoipa::path(
    delete,
    path = "/computeruse/recordings/{id}",
    tag = "computer-use",
    params(("id" = String, Path)),
    responses(
        (status = 204, description = "deleted"),
        (status = 404, description = "no such recording", body = Envelope),
        (status = 409, description = "still recording (`RECORDING_STILL_ACTIVE`)", body = Envelope),
        (status = 500, description = "the file cannot be removed", body = Envelope),
    )
)]
async fn delete_recording(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.recordings.delete(&id).await.map_err(api_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// The recording's video (`video/mp4`) with range and conditional request support; an active
/// recording's file is served as far as it is written.
#[utoipa::path(
    get,
    path = "/computeruse/recordings/{id}/download",
    tag = "computer-use",
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "the video", content_type = "video/mp4"),
        (status = 206, description = "the requested range(s)"),
        (status = 304, description = "not modified since `If-Modified-Since` / matches `If-None-Match`"),
        (status = 404, description = "no such recording, or its file is gone", body = Envelope),
        (status = 412, description = "an `If-Unmodified-Since` / `If-Match` condition failed"),
        (status = 416, description = "no requested range overlaps the file"),
    )
)]
async fn download_recording(
    State(state): State<AppState>,
    Path(id): Path<String>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (_, path) = state.recordings.file(&id).await.map_err(api_error)?;
    serve_video(path, &method, &headers).await
}

/// Serves a video file of the recordings directory: opened without following a link, as a
/// regular file only.
pub async fn serve_video(
    path: std::path::PathBuf,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let opened = tokio::task::spawn_blocking(move || {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&path)?;
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(std::io::Error::from(std::io::ErrorKind::NotFound));
        }
        crate::static_file::clear_nonblock(&file);
        Ok((file, meta))
    })
    .await
    .map_err(ApiError::internal)?;
    match opened {
        Ok((file, meta)) => {
            Ok(crate::static_file::respond(file, &meta, "video/mp4", HeaderMap::new(), method, headers))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ELOOP) => {
            Err(ApiError::not_found("recording file not found"))
        }
        Err(e) => Err(ApiError::internal(format!("cannot open the recording: {e}"))),
    }
    .map(IntoResponse::into_response)
}

#[cfg(test)]
mod tests;
