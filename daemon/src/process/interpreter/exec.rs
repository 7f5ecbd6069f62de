//! The executor of one context: runs its jobs one at a time, restarts a dead worker, enforces
//! time-outs (SIGINT, then SIGKILL), and ends every job with exactly one close.
//!
//! The `control` frame that ends an execution is sent from here, not by the worker's reader,
//! because only the executor knows whether the daemon itself interrupted the code. When it did
//! (the job's time-out), the client gets no control frame, only the close 4008: the TypeScript
//! SDK resolves successfully on a `control` frame, so sending `interrupted` first would hide the
//! time-out from its users. An interrupt the code brought on itself (`raise KeyboardInterrupt`,
//! a SIGINT it sent) is a normal ending: `control: interrupted`, then 1000.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::context::{Context, DEFAULT_CONTEXT, Job};
use super::launcher::Launcher;
use super::worker::{Event, Out, Worker, error_frame, output_frame};
use crate::signal::kill_group;

/// After SIGINT, how long the code has to stop before the worker is killed (process.md §6.5).
const INTERRUPT_GRACE: Duration = Duration::from_secs(2);
/// After SIGKILL, how long the remaining output may take to arrive.
const KILL_DRAIN: Duration = Duration::from_secs(2);

pub const CLOSE_NORMAL: u16 = 1000;
pub const CLOSE_GOING_AWAY: u16 = 1001;
pub const CLOSE_POLICY: u16 = 1008;
pub const CLOSE_INTERNAL: u16 = 1011;
pub const CLOSE_TIMEOUT: u16 = 4008;

/// The line written to the worker.
#[derive(Serialize)]
struct Command<'a> {
    id: &'a str,
    code: &'a str,
    envs: &'a Option<BTreeMap<String, Option<String>>>,
    env: EnvDelta,
}

/// Changes of the daemon's child environment since the worker last heard of it.
#[derive(Serialize, Default, Debug, PartialEq, Eq)]
pub struct EnvDelta {
    set: BTreeMap<String, String>,
    unset: Vec<String>,
}

pub fn env_delta(old: &BTreeMap<String, String>, new: &BTreeMap<String, String>) -> EnvDelta {
    EnvDelta {
        set: new
            .iter()
            .filter(|(k, v)| old.get(*k) != Some(*v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        unset: old.keys().filter(|k| !new.contains_key(*k)).cloned().collect(),
    }
}

pub async fn executor(
    launcher: Arc<Launcher>,
    ctx: Arc<Context>,
    mut worker: Option<Worker>,
    mut jobs: mpsc::Receiver<Job>,
) {
    while let Some(job) = jobs.recv().await {
        if ctx.is_deleting() {
            let _ = job.out.send(Out::Close(CLOSE_GOING_AWAY, "context shutdown".into())).await;
            continue;
        }
        let (code, reason) = run(&launcher, &ctx, &mut worker, &job).await;
        let _ = job.out.send(Out::Close(code, reason)).await;
    }
    // The context was deleted (or the daemon stops): the worker and its group go.
    drop(worker);
}

/// Makes sure a live worker serves the context.
async fn ensure_worker<'a>(
    launcher: &Launcher,
    ctx: &Context,
    slot: &'a mut Option<Worker>,
) -> Result<&'a mut Worker, (u16, String)> {
    if slot.as_ref().is_some_and(|w| !w.is_alive()) {
        *slot = None;
    }
    if slot.is_none() {
        match launcher.start(&ctx.id, &ctx.cwd, ctx.language).await {
            Ok(w) => {
                ctx.set_worker(w.pid, w.alive.clone());
                *slot = Some(w);
            }
            Err(e) if ctx.id == DEFAULT_CONTEXT => {
                return Err((CLOSE_INTERNAL, format!("failed to get default context: {e}")));
            }
            Err(e) => {
                tracing::warn!(context = %ctx.id, error = %e, "cannot restart an interpreter worker");
                return Err((CLOSE_POLICY, format!("context not found: {}", ctx.id)));
            }
        }
    }
    Ok(slot.as_mut().expect("worker present"))
}

/// Runs one job; returns the close code and reason for its client.
async fn run(launcher: &Launcher, ctx: &Context, slot: &mut Option<Worker>, job: &Job) -> (u16, String) {
    let w = match ensure_worker(launcher, ctx, slot).await {
        Ok(w) => w,
        Err(close) => return close,
    };
    // Events left from an earlier job (a control line after its time-out, stray lines).
    while let Ok(ev) = w.events.try_recv() {
        if ev == Event::Eof {
            *slot = None;
            return Box::pin(run(launcher, ctx, slot, job)).await;
        }
    }

    let id = crate::id::uuid_v4();
    let now_env = launcher.env_strings();
    let line = {
        let cmd = Command { id: &id, code: &job.code, envs: &job.envs, env: env_delta(&w.env, &now_env) };
        let mut s = serde_json::to_string(&cmd).expect("commands serialise");
        s.push('\n');
        s
    };
    w.env = now_env;
    let oom_before = crate::oom::Counts::now();
    // Attach before the code runs (pitfalls §31): nothing it prints is lost.
    w.sink.attach(&id, job.out.clone());
    let ended = (CLOSE_GOING_AWAY, "worker process ended".to_string());
    if w.commands.write_all(line.as_bytes()).await.is_err() {
        w.sink.detach();
        w.kill();
        *slot = None;
        return ended;
    }

    // An absurdly large time-out is no limit (and must not overflow the clock).
    let mut deadline = job.timeout.and_then(|t| Instant::now().checked_add(t));
    let mut timed_out = false;
    loop {
        let ev = tokio::select! {
            ev = w.events.recv() => ev,
            () = sleep_until(deadline) => {
                if !timed_out {
                    // SIGINT to the worker only, not its children (process.md §6.5 item 9).
                    timed_out = true;
                    // SAFETY: plain syscall.
                    unsafe { libc::kill(w.pid as libc::pid_t, libc::SIGINT) };
                    deadline = Some(Instant::now() + INTERRUPT_GRACE);
                    continue;
                }
                // The code ignored SIGINT: the worker goes, and its state with it.
                kill_group(w.pid, libc::SIGKILL);
                let drain = Instant::now() + KILL_DRAIN;
                while let Ok(Some(ev)) = tokio::time::timeout_at(drain, w.events.recv()).await {
                    if ev == Event::Eof {
                        break;
                    }
                }
                w.sink.detach();
                *slot = None;
                return (CLOSE_TIMEOUT, String::new());
            }
        };
        match ev {
            Some(Event::Done { id: done, interrupted }) if done == id => {
                if timed_out {
                    // Whatever the worker reported (`interrupted`, or `completed` when the code
                    // caught the interrupt or finished just then): the daemon cut it short.
                    return (CLOSE_TIMEOUT, String::new());
                }
                let text = if interrupted { "interrupted" } else { "completed" };
                // After every output frame: the reader queued those before reporting Done.
                let _ = job.out.send(Out::Frame(output_frame("control", text))).await;
                return (CLOSE_NORMAL, String::new());
            }
            Some(Event::Done { .. } | Event::Ready) => {}
            Some(Event::Eof) | None => {
                let exit_status = w.ended.clone();
                w.sink.detach();
                *slot = None;
                if timed_out {
                    return (CLOSE_TIMEOUT, String::new());
                }
                if ctx.is_deleting() {
                    return (CLOSE_GOING_AWAY, "context shutdown".into());
                }
                // The worker died under the code: when the OOM killer did it, the run ends like
                // code that raised (an error frame, then a normal close), so the SDKs return it
                // as the execution's error instead of a connection failure.
                if worker_was_oom_killed(&exit_status, oom_before).await {
                    let why = crate::oom::sentence();
                    let value = format!(
                        "the interpreter was {why}; its state is lost and the next run starts afresh"
                    );
                    let _ = job.out.send(Out::Frame(error_frame("OutOfMemoryKill", &value))).await;
                    return (CLOSE_NORMAL, String::new());
                }
                return ended;
            }
        }
    }
}

/// Whether the worker that just closed its pipes died of SIGKILL while the OOM killer was at
/// work. The pipes close before the reaper reports the exit: its status is awaited briefly.
async fn worker_was_oom_killed(
    ended: &std::sync::OnceLock<crate::reaper::ExitStatus>,
    before: crate::oom::Counts,
) -> bool {
    let until = Instant::now() + std::time::Duration::from_millis(500);
    while ended.get().is_none() && Instant::now() < until {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    ended.get().is_some_and(|st| crate::oom::verdict(before, *st).is_some())
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn env_delta_sets_changes_and_unsets_removals() {
        let old = map(&[("A", "1"), ("B", "2"), ("C", "3")]);
        let new = map(&[("A", "1"), ("B", "x"), ("D", "4")]);
        let d = env_delta(&old, &new);
        assert_eq!(d.set, map(&[("B", "x"), ("D", "4")]));
        assert_eq!(d.unset, vec!["C".to_string()]);
        assert_eq!(env_delta(&new, &new), EnvDelta::default());
    }
}
