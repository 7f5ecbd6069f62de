//! One websocket client of a PTY session (process.md §5.7, sdk-0.226.md §3.1).
//!
//! A single task owns the socket, so control frames, output and close frames never interleave
//! (pitfalls §C.26). `connected` is the first frame, before any output: the client's queue is
//! only read after it was sent, and that queue starts with the replay buffer.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use bytes::Bytes;

use super::{End, Pty};

const WRITE_DEADLINE: Duration = Duration::from_secs(10);

async fn send(socket: &mut WebSocket, msg: Message) -> bool {
    matches!(tokio::time::timeout(WRITE_DEADLINE, socket.send(msg)).await, Ok(Ok(())))
}

fn control(status: &str) -> Message {
    Message::Text(Utf8Bytes::from(format!(r#"{{"type":"control","status":"{status}"}}"#)))
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// Sends the `error` control frame and drops the connection without a close frame.
pub async fn fail(socket: &mut WebSocket, error: &str) {
    // Keys in the reference's order (serde_json's map would sort them).
    let body = format!(r#"{{"type":"control","status":"error","error":{}}}"#, json_str(error));
    let _ = send(socket, Message::Text(body.into())).await;
}

fn signal_reason(code: i32, ctrl_c: &str, unrecoverable: bool, fallback: &str) -> String {
    match code {
        _ if unrecoverable => "process error".into(),
        130 => ctrl_c.into(),
        137 => "SIGKILL".into(),
        143 => "SIGTERM".into(),
        c if c > 128 => format!("signal {}", c - 128),
        _ => fallback.into(),
    }
}

/// The `exited` control frame (sent only to clients that offered the exit-control token).
pub fn exited_frame(code: i32, unrecoverable: bool) -> String {
    if code == 0 {
        return format!(r#"{{"type":"control","status":"exited","exitCode":{code}}}"#);
    }
    let reason = signal_reason(code, "SIGINT - Ctrl+C", unrecoverable, "non-zero exit");
    format!(r#"{{"type":"control","status":"exited","exitCode":{code},"exitReason":{}}}"#, json_str(&reason))
}

/// The close frame for an end.
pub fn close_frame(end: End) -> CloseFrame {
    let (code, reason) = match end {
        End::SlowConsumer => (1008, "slow consumer".to_string()),
        End::Killed => (1011, r#"{"exitCode":137,"exitReason":"SIGKILL"}"#.to_string()),
        End::Exited { code: 0, .. } => (1000, r#"{"exitCode":0}"#.to_string()),
        End::Exited { code, .. } => {
            // The close reason uses "non-zero exit" even for an unrecoverable status.
            let r = signal_reason(code, "Ctrl+C", false, "non-zero exit");
            (1011, format!(r#"{{"exitCode":{code},"exitReason":{}}}"#, json_str(&r)))
        }
    };
    CloseFrame { code, reason: reason.into() }
}

/// Serves one client until the terminal ends, the client leaves, or it falls behind.
pub async fn serve(mut socket: WebSocket, pty: Arc<Pty>, exit_control: bool) {
    let Some(mut client) = pty.attach() else {
        let msg = format!(
            "Failed to connect to PTY session: PTY session '{}' has terminated and is no longer available",
            pty.id
        );
        return fail(&mut socket, &msg).await;
    };
    if !send(&mut socket, control("connected")).await {
        return;
    }
    loop {
        tokio::select! {
            biased;
            end = &mut client.end => {
                let Ok(end) = end else { return };
                if end != End::SlowConsumer {
                    // Output produced before the end still reaches the client, in order.
                    while let Ok(chunk) = client.out.try_recv() {
                        if !send(&mut socket, Message::Binary(chunk)).await {
                            return;
                        }
                    }
                }
                if let (End::Exited { code, unrecoverable }, true) = (end, exit_control) {
                    let _ = send(&mut socket, Message::Text(exited_frame(code, unrecoverable).into())).await;
                }
                let _ = send(&mut socket, Message::Close(Some(close_frame(end)))).await;
                return;
            }
            Some(chunk) = client.out.recv() => {
                if !send(&mut socket, Message::Binary(chunk)).await {
                    return;
                }
            }
            msg = socket.recv() => {
                let data: Bytes = match msg {
                    Some(Ok(Message::Text(t))) => Bytes::from(t),
                    Some(Ok(Message::Binary(b))) => b,
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    // Close, error, or gone: detach only; the shell keeps running.
                    Some(Ok(Message::Close(_))) => {
                        crate::ws::answer_close(&mut socket).await;
                        return;
                    }
                    _ => return,
                };
                let queued = match pty.input() {
                    Some(tx) => tx.send(data).await.is_ok(),
                    None => false,
                };
                if !queued {
                    let frame = CloseFrame { code: 1011, reason: "PTY session unavailable".into() };
                    let _ = send(&mut socket, Message::Close(Some(frame))).await;
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_texts() {
        assert_eq!(exited_frame(0, false), r#"{"type":"control","status":"exited","exitCode":0}"#);
        assert_eq!(
            exited_frame(137, false),
            r#"{"type":"control","status":"exited","exitCode":137,"exitReason":"SIGKILL"}"#
        );
        let v: serde_json::Value = serde_json::from_str(&exited_frame(130, false)).unwrap();
        assert_eq!(v["exitReason"], "SIGINT - Ctrl+C");
        let v: serde_json::Value = serde_json::from_str(&exited_frame(1, true)).unwrap();
        assert_eq!(v["exitReason"], "process error");
        let v: serde_json::Value = serde_json::from_str(&exited_frame(129, false)).unwrap();
        assert_eq!(v["exitReason"], "signal 1");
        let v: serde_json::Value = serde_json::from_str(&exited_frame(-1, false)).unwrap();
        assert_eq!(v["exitReason"], "non-zero exit");

        let c = close_frame(End::Exited { code: 0, unrecoverable: false });
        assert_eq!((c.code, c.reason.as_str()), (1000, r#"{"exitCode":0}"#));
        let c = close_frame(End::Exited { code: 130, unrecoverable: false });
        assert_eq!(c.code, 1011);
        let v: serde_json::Value = serde_json::from_str(&c.reason).unwrap();
        assert_eq!((v["exitCode"].as_i64(), v["exitReason"].as_str()), (Some(130), Some("Ctrl+C")));
        let c = close_frame(End::Exited { code: 7, unrecoverable: false });
        let v: serde_json::Value = serde_json::from_str(&c.reason).unwrap();
        assert_eq!(v["exitReason"], "non-zero exit");
        assert_eq!(close_frame(End::Killed).reason.as_str(), r#"{"exitCode":137,"exitReason":"SIGKILL"}"#);
        assert_eq!(close_frame(End::SlowConsumer).code, 1008);
    }
}
