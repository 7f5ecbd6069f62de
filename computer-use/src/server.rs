//! Router assembly and the serve loop (Unix socket or TCP).

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::Router;

use crate::config::Config;
use crate::error::envelope_layer;
use crate::state::AppState;

pub enum Listen {
    Unix(PathBuf),
    Tcp(SocketAddr),
}

/// Every `/computeruse/*` route the agent answers (recordings stay in the daemon).
pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .merge(crate::supervisor::api::routes())
        .merge(crate::input::api::routes())
        .merge(crate::screenshot::api::routes())
        .merge(crate::display::api::routes())
        .merge(crate::a11y::api::routes())
        // Ours (not in Daytona's daemon): the X11 clipboard.
        .merge(crate::clipboard::api::routes(state.desktop_env.clone()));
    with_shared_layers(routes).with_state(state)
}

/// What every route shares. Unknown routes and wrong methods are both 404 `NOT_FOUND`, as on
/// the daemon's own routes: the reference answers a wrong method with 404, and clients pick
/// exception classes by status. A panicking handler is a 500 envelope for its request, not a
/// dropped connection (which the daemon would have to report as the agent being unavailable).
fn with_shared_layers(routes: Router<AppState>) -> Router<AppState> {
    routes
        .fallback(toolbox_envelope::no_route)
        .method_not_allowed_fallback(toolbox_envelope::no_route)
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panic_response))
        .layer(axum::middleware::from_fn(envelope_layer))
}

fn panic_response(p: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    tracing::error!("request handler panicked");
    toolbox_envelope::panic_answer(p)
}

pub async fn serve(listen: Listen, config: Config) -> Result<(), String> {
    let state = AppState::new(config);
    let app = router(state.clone());
    let shutdown = shutdown_signal();
    match listen {
        Listen::Unix(path) => {
            // A socket file left by an earlier agent would make bind fail; the daemon owns the
            // path, so replacing it is safe.
            let _ = std::fs::remove_file(&path);
            let listener = tokio::net::UnixListener::bind(&path)
                .map_err(|e| format!("cannot listen on {}: {e}", path.display()))?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| format!("cannot restrict {}: {e}", path.display()))?;
            tracing::info!(socket = %path.display(), "computer-use agent listening");
            axum::serve(listener, app).with_graceful_shutdown(shutdown).await.map_err(|e| e.to_string())?;
        }
        Listen::Tcp(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
            tracing::info!(%addr, "computer-use agent listening");
            axum::serve(listener, app).with_graceful_shutdown(shutdown).await.map_err(|e| e.to_string())?;
        }
    }
    // Leave nothing behind: desktop processes stopped, held keys and buttons released.
    state.x11.release_all();
    state.supervisor.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
    else {
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
        () = parent_gone() => tracing::info!("the daemon went away; shutting down"),
    }
}

/// The daemon runs the agent with a pipe as stdin and this variable set: end of file on stdin
/// means the daemon died (even by SIGKILL), and the desktop must not outlive it.
async fn parent_gone() {
    if std::env::var_os("DAYTONA_COMPUTER_USE_EXIT_ON_STDIN_EOF").is_none() {
        return std::future::pending().await;
    }
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let spawned = std::thread::Builder::new().name("stdin-watch".into()).spawn(move || {
        use std::io::Read;
        let mut buf = [0u8; 64];
        let mut stdin = std::io::stdin();
        while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
        let _ = tx.send(());
    });
    match spawned {
        Ok(_) => {
            let _ = rx.await;
        }
        Err(_) => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::extract::Request;
    use axum::http::StatusCode;
    use axum::routing::get;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    #[tokio::test]
    async fn a_panicking_handler_is_a_500_envelope() {
        async fn boom() -> &'static str {
            panic!("boom")
        }
        let config = Config::from_lookup(|_| None).unwrap();
        let app = with_shared_layers(Router::new().route("/computeruse/boom", get(boom)))
            .with_state(AppState::new(config));
        let res = app.oneshot(Request::get("/computeruse/boom").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let v: serde_json::Value =
            serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap();
        assert_eq!(v["code"], "INTERNAL_SERVER_ERROR");
        assert_eq!(v["path"], "/computeruse/boom");
        assert_eq!(v["message"], "internal server error: the request handler failed unexpectedly");
    }
}
