//! Streaming a command's log over a websocket (process.md §4.8).
//!
//! One writer sends every data frame and then the close frame, so nothing is lost or repeated
//! and the close never overtakes data (pitfalls 18). The data comes from the log file, read
//! from where the client is: a slow client slows the reading, it never makes the daemon buffer
//! (send waits for the socket). A client that keeps up gets the pump's newest appends from
//! memory (the command's [`Tail`](super::log::Tail)) rather than reading them back. At the end
//! of the log the writer waits for the pump to say the log grew or the command ended — no
//! polling.

use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};

use super::Command;
use super::log::Stripper;

/// The most log bytes per websocket frame, and per read of the log. Large reads keep the
/// per-chunk costs (a hop to the blocking pool, a frame header, a wake-up of the client) small
/// next to copying the bytes; the SDKs accept messages of 1 MiB and more.
const FRAME: usize = 256 * 1024;
/// How long to wait for the client's answer to our close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

enum Stop {
    ClientGone,
    ReadFailed,
}

pub async fn stream(socket: WebSocket, file: tokio::fs::File, cmd: Arc<Command>, strip: bool, follow: bool) {
    let (mut sink, mut incoming) = socket.split();
    let (gone_tx, mut gone) = tokio::sync::oneshot::channel::<()>();
    // Reading keeps pings answered (tungstenite queues the pong and flushes it from the read
    // side, ahead of our next data frame) and notices when the client leaves.
    let reader = tokio::spawn(async move {
        while let Some(msg) = incoming.next().await {
            if matches!(msg, Ok(Message::Close(_)) | Err(_)) {
                break;
            }
        }
        let _ = gone_tx.send(());
    });
    let code = match send_log(&mut sink, file, &cmd, strip, follow, &mut gone).await {
        Ok(()) => 1000,
        Err(Stop::ReadFailed) => 1011,
        Err(Stop::ClientGone) => {
            reader.abort();
            crate::ws::answer_close(&mut sink).await;
            return;
        }
    };
    let close = Message::Close(Some(CloseFrame { code, reason: "".into() }));
    if sink.send(close).await.is_ok() {
        let _ = tokio::time::timeout(CLOSE_WAIT, reader).await;
    } else {
        // The client's own close came first: answer it instead.
        crate::ws::answer_close(&mut sink).await;
    }
}

/// Reads up to [`FRAME`] bytes of the log at `pos` on the blocking pool, into a buffer that
/// becomes the frame's payload without another copy.
async fn read_chunk(file: &Arc<std::fs::File>, pos: u64) -> std::io::Result<Bytes> {
    let file = file.clone();
    let read = tokio::task::spawn_blocking(move || {
        let mut buf = BytesMut::zeroed(FRAME);
        let n = loop {
            match file.read_at(&mut buf, pos) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                r => break r?,
            }
        };
        buf.truncate(n);
        Ok(buf.freeze())
    });
    read.await.map_err(std::io::Error::other)?
}

async fn send_log(
    sink: &mut futures_util::stream::SplitSink<WebSocket, Message>,
    file: tokio::fs::File,
    cmd: &Command,
    strip: bool,
    follow: bool,
    gone: &mut tokio::sync::oneshot::Receiver<()>,
) -> Result<(), Stop> {
    let file = Arc::new(file.into_std().await);
    cmd.follow(true);
    let _counted = Unfollow(cmd);
    let mut progress = cmd.progress();
    let mut stripper = Stripper::default();
    let mut pos = 0u64;
    loop {
        let chunk = match cmd.tail_at(pos) {
            Some(live) => live.slice(..live.len().min(FRAME)),
            None => {
                // At the end of what the pump has published there is nothing to read: wait
                // for the next append (or the end) without a trip to the file.
                let p = *progress.borrow_and_update();
                if follow && pos >= p.len {
                    if p.final_len.is_some() {
                        break;
                    }
                    tokio::select! {
                        r = progress.changed() => if r.is_err() { break },
                        _ = &mut *gone => return Err(Stop::ClientGone),
                    }
                    continue;
                }
                tokio::select! {
                    r = read_chunk(&file, pos) => r.map_err(|_| Stop::ReadFailed)?,
                    _ = &mut *gone => return Err(Stop::ClientGone),
                }
            }
        };
        if !chunk.is_empty() {
            pos += chunk.len() as u64;
            let payload = if strip {
                let mut out = Vec::with_capacity(chunk.len());
                stripper.feed(&chunk, &mut out);
                Bytes::from(out)
            } else {
                chunk
            };
            send(sink, payload, gone).await?;
            continue;
        }
        if !follow {
            break;
        }
        let p = *progress.borrow_and_update();
        match p.final_len {
            Some(end) if pos >= end => break,
            _ if pos < p.len => continue,
            _ => {}
        }
        tokio::select! {
            r = progress.changed() => if r.is_err() { break },
            _ = &mut *gone => return Err(Stop::ClientGone),
        }
    }
    let mut rest = Vec::new();
    stripper.finish(&mut rest);
    send(sink, rest.into(), gone).await
}

/// Counts the follower out on every way out of [`send_log`].
struct Unfollow<'a>(&'a Command);

impl Drop for Unfollow<'_> {
    fn drop(&mut self) {
        self.0.follow(false);
    }
}

async fn send(
    sink: &mut futures_util::stream::SplitSink<WebSocket, Message>,
    payload: Bytes,
    gone: &mut tokio::sync::oneshot::Receiver<()>,
) -> Result<(), Stop> {
    if payload.is_empty() {
        return Ok(());
    }
    tokio::select! {
        r = sink.send(Message::Binary(payload)) => r.map_err(|_| Stop::ClientGone),
        _ = &mut *gone => Err(Stop::ClientGone),
    }
}
