//! What every WebSocket route shares.

use std::time::Duration;

use axum::extract::ws::Message;
use futures_util::{Sink, SinkExt};

/// How long the answer to a client's close frame may take to go out.
const CLOSE_ANSWER: Duration = Duration::from_secs(1);

/// Completes a close the client started (RFC 6455 §5.5.1): the answering close frame, which the
/// socket queued when it read the client's, goes out before the connection is dropped. Without
/// it the client sees 1006 (abnormal closure) instead of a clean close. Bounded, and harmless on
/// a connection that already failed.
pub async fn answer_close<S>(sink: &mut S)
where
    S: Sink<Message> + Unpin,
{
    let _ = tokio::time::timeout(CLOSE_ANSWER, sink.close()).await;
}
