//! The recording routes in process, over a stand-in ffmpeg (the recorder crate's test script)
//! recording a display on another host, which is not probed; the real ffmpeg and desktop are
//! exercised by the end-to-end tests.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};

use crate::env::EnvUpdate;
use crate::testing::{Answer, TestApp};

struct Fixture {
    app: TestApp,
    _bin: tempfile::TempDir,
    rec_dir: tempfile::TempDir,
}

/// A daemon whose children's PATH has `ffmpeg` (the stand-in, in `mode`) or not.
fn fixture(ffmpeg: bool, display: &str, mode: &str) -> Fixture {
    let bin = tempfile::tempdir().unwrap();
    if ffmpeg {
        let fake = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../recorder/tests/fake-ffmpeg");
        std::os::unix::fs::symlink(fake.canonicalize().unwrap(), bin.path().join("ffmpeg")).unwrap();
    }
    let rec_dir = tempfile::tempdir().unwrap();
    let vars = [
        ("DAYTONA_RECORDINGS_DIR", rec_dir.path().to_str().unwrap()),
        ("DAYTONA_RECORDING_STOP_TIMEOUT", "5s"),
    ];
    // Without the stand-in, PATH has nothing else either (the machine's ffmpeg would be found).
    let path = if ffmpeg {
        format!("{}:/usr/bin:/bin", bin.path().display())
    } else {
        bin.path().display().to_string()
    };
    let app = TestApp::with(super::routes(), &vars, |state| {
        let set: BTreeMap<String, String> = [
            ("PATH".to_string(), path),
            ("DISPLAY".to_string(), display.to_string()),
            ("FAKE_FFMPEG_MODE".to_string(), mode.to_string()),
        ]
        .into();
        state.env.apply(&EnvUpdate { set, unset: vec![], unset_value_prefix: None }).unwrap();
    });
    Fixture { app, _bin: bin, rec_dir }
}

async fn post(app: &TestApp, uri: &str, body: &str) -> Answer {
    let req = Request::builder()
        .method("POST")
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    app.request(req).await
}

#[tokio::test]
async fn a_recording_from_start_to_delete() {
    let f = fixture(true, "testhost:0", "normal");
    // The body may be left out.
    let started = f.app.send("POST", "/computeruse/recordings/start", Body::empty()).await;
    assert_eq!(started.status, StatusCode::CREATED, "{:?}", started.body);
    let r = started.json();
    assert_eq!(r["status"], "recording");
    let id = r["id"].as_str().unwrap().to_string();
    assert!(r["fileName"].as_str().unwrap().starts_with(&format!("{id}_session_")));
    assert!(r["filePath"].as_str().unwrap().starts_with(f.rec_dir.path().to_str().unwrap()));
    assert!(r.get("error").is_none() && r.get("endTime").is_none(), "{r}");

    let listed = f.app.get("/computeruse/recordings").await.json();
    assert_eq!(listed["recordings"][0]["id"], id.as_str());
    let deleting = f.app.send("DELETE", &format!("/computeruse/recordings/{id}"), Body::empty()).await;
    deleting.envelope(StatusCode::CONFLICT, "RECORDING_STILL_ACTIVE");

    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let stopped = post(&f.app, "/computeruse/recordings/stop", &format!(r#"{{"id": "{id}"}}"#)).await;
    assert_eq!(stopped.status, StatusCode::OK, "{:?}", stopped.body);
    let s = stopped.json();
    assert_eq!(s["status"], "completed", "{s}");
    assert!(s["durationSeconds"].as_f64().unwrap() > 0.1, "{s}");
    let size = s["sizeBytes"].as_u64().unwrap();
    assert!(size > 0);
    // Stopping again answers the same.
    let again = post(&f.app, "/computeruse/recordings/stop", &format!(r#"{{"id": "{id}"}}"#)).await;
    assert_eq!(again.json(), s);
    assert_eq!(f.app.get(&format!("/computeruse/recordings/{id}")).await.json(), s);

    let download = f.app.get(&format!("/computeruse/recordings/{id}/download")).await;
    assert_eq!(download.status, StatusCode::OK);
    assert_eq!(download.headers[header::CONTENT_TYPE], "video/mp4");
    assert!(download.headers.get(header::CONTENT_DISPOSITION).is_none());
    assert!(download.headers.get(header::LAST_MODIFIED).is_some());
    let on_disk = std::fs::read(s["filePath"].as_str().unwrap()).unwrap();
    assert_eq!(download.body.as_ref(), on_disk.as_slice());
    let req = Request::builder()
        .uri(format!("/computeruse/recordings/{id}/download"))
        .header(header::RANGE, "bytes=1-3")
        .body(Body::empty())
        .unwrap();
    let part = f.app.request(req).await;
    assert_eq!(part.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.body.as_ref(), &on_disk[1..4]);

    let deleted = f.app.send("DELETE", &format!("/computeruse/recordings/{id}"), Body::empty()).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert!(!std::path::Path::new(s["filePath"].as_str().unwrap()).exists());
    let gone = f.app.get(&format!("/computeruse/recordings/{id}")).await;
    assert_eq!(gone.envelope(StatusCode::NOT_FOUND, "NOT_FOUND"), "not found: recording not found");
    f.app
        .get(&format!("/computeruse/recordings/{id}/download"))
        .await
        .envelope(StatusCode::NOT_FOUND, "NOT_FOUND");
}

#[tokio::test]
async fn bad_requests_are_4xx_envelopes_naming_the_problem() {
    let f = fixture(true, "testhost:0", "normal");
    let bad_label = post(&f.app, "/computeruse/recordings/start", r#"{"label": "../x"}"#).await;
    assert!(bad_label.envelope(StatusCode::BAD_REQUEST, "BAD_REQUEST").contains("invalid label"));
    post(&f.app, "/computeruse/recordings/start", "{")
        .await
        .envelope(StatusCode::BAD_REQUEST, "INVALID_REQUEST_BODY");
    post(&f.app, "/computeruse/recordings/stop", "{}")
        .await
        .envelope(StatusCode::BAD_REQUEST, "INVALID_REQUEST_BODY");
    post(&f.app, "/computeruse/recordings/stop", r#"{"id": "nope"}"#)
        .await
        .envelope(StatusCode::NOT_FOUND, "NOT_FOUND");
    f.app.get("/computeruse/recordings/nope").await.envelope(StatusCode::NOT_FOUND, "NOT_FOUND");
    f.app
        .send("DELETE", "/computeruse/recordings/nope", Body::empty())
        .await
        .envelope(StatusCode::NOT_FOUND, "NOT_FOUND");
    // Nothing was started by any of them.
    assert_eq!(f.app.get("/computeruse/recordings").await.json(), serde_json::json!({"recordings": []}));
}

#[tokio::test]
async fn missing_ffmpeg_or_display_is_a_503_saying_which() {
    let f = fixture(false, "testhost:0", "normal");
    let msg = f
        .app
        .send("POST", "/computeruse/recordings/start", Body::empty())
        .await
        .envelope(StatusCode::SERVICE_UNAVAILABLE, "RECORDING_FFMPEG_NOT_FOUND");
    assert!(msg.contains("ffmpeg"), "{msg}");
    let f = fixture(true, ":396", "normal");
    let msg = f
        .app
        .send("POST", "/computeruse/recordings/start", Body::empty())
        .await
        .envelope(StatusCode::SERVICE_UNAVAILABLE, "RECORDING_DISPLAY_UNAVAILABLE");
    assert!(msg.contains(":396"), "{msg}");
}

#[tokio::test]
async fn ffmpeg_that_cannot_record_is_a_500_with_its_words_and_a_failed_listing() {
    let f = fixture(true, "testhost:0", "fail");
    let msg = f
        .app
        .send("POST", "/computeruse/recordings/start", Body::empty())
        .await
        .envelope(StatusCode::INTERNAL_SERVER_ERROR, "RECORDING_FAILED");
    assert!(msg.contains("Cannot open display"), "{msg}");
    let listed = f.app.get("/computeruse/recordings").await.json();
    assert_eq!(listed["recordings"][0]["status"], "failed");
    assert!(listed["recordings"][0]["error"].as_str().unwrap().contains("Cannot open display"));
}
