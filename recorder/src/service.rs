//! The recordings service: one ffmpeg per active recording, supervised from spawn to the
//! finished file, and the directory for everything that has ended.
//!
//! Life of a recording: `start` spawns ffmpeg (through the caller's [`Spawner`], so the
//! daemon's reaper owns the child) and answers once ffmpeg reports its first frame; a monitor
//! task awaits the exit and settles the outcome exactly once (completed, failed with ffmpeg's
//! reason, or interrupted), writes it to the metadata file and wakes whoever waits. `stop` asks
//! ffmpeg to finish (`q` on its stdin, which writes the MP4 index), then SIGINT at half the stop
//! timeout, then SIGKILL at the end of it, so a stop always returns within the bound.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::future::Future;
use std::io::{self, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::watch;

use crate::display;
use crate::error::RecorderError;
use crate::ffmpeg::{Caps, FRAMERATE, Tail, follow_progress, keep_tail, recording_args};
use crate::label::is_valid_label;
use crate::model::{Recording, Status, parse_rfc3339, rfc3339, seconds_between};
use crate::store::{Meta, Owner, Store};

/// How a spawned child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
    Unknown,
}

/// Resolves when the child has exited (and been reaped).
pub type ExitFuture = Pin<Box<dyn Future<Output = Exit> + Send>>;

/// Spawns children for the service. The daemon's implementation goes through its reaper, the
/// only code allowed to wait for children; the service never waits on a `Child` itself.
pub trait Spawner: Send + Sync + 'static {
    fn spawn(&self, cmd: &mut Command) -> io::Result<(Child, ExitFuture)>;
}

/// Settings of the service.
#[derive(Debug, Clone)]
pub struct Options {
    /// The recordings directory (absolute).
    pub dir: PathBuf,
    /// How long a stop waits for ffmpeg to finish the file before killing it.
    pub stop_timeout: Duration,
    /// How long a start waits for ffmpeg's first frame.
    pub start_timeout: Duration,
    /// Recordings that may run at once (each is an encoder busy on a core).
    pub max_active: usize,
}

impl Options {
    pub fn new(dir: PathBuf) -> Options {
        Options {
            dir,
            stop_timeout: Duration::from_secs(10),
            start_timeout: Duration::from_secs(10),
            max_active: 4,
        }
    }
}

/// What a start runs with: the ffmpeg found on the children's PATH (if any) and the
/// environment children get (its `DISPLAY`, else `:0`, is the display recorded).
#[derive(Debug, Clone, Default)]
pub struct Launch {
    pub ffmpeg: Option<PathBuf>,
    pub env: Vec<(OsString, OsString)>,
}

impl Launch {
    fn display(&self) -> String {
        self.env
            .iter()
            .find(|(k, _)| k == "DISPLAY")
            .map(|(_, v)| v.to_string_lossy().into_owned())
            .unwrap_or_else(|| ":0".to_string())
    }
}

/// Why a recording is being ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    Stop,
    Shutdown,
    StartTimeout,
    /// ffmpeg closed its progress output before its first frame.
    NoProgress,
}

struct Active {
    /// What `list`/`get` show while it runs.
    record: Mutex<Recording>,
    started: Mutex<Timestamp>,
    pid: u32,
    stdin: Mutex<Option<ChildStdin>>,
    ending: Mutex<Option<Ending>>,
    /// The stop timeout ran out and ffmpeg was killed.
    killed: AtomicBool,
    /// The reaper has collected ffmpeg: its pid may be reused and must not be signalled.
    exited: AtomicBool,
    /// Serialises metadata writes, so the final one is never overwritten by the start's.
    meta: tokio::sync::Mutex<bool>,
    /// The final record, once settled.
    done: watch::Receiver<Option<Recording>>,
}

pub struct Recorder {
    opts: Options,
    store: Store,
    spawner: Arc<dyn Spawner>,
    active: Mutex<HashMap<String, Arc<Active>>>,
    /// Starts between their slot check and their entry in `active` (counted against the limit).
    starting: std::sync::atomic::AtomicUsize,
    /// Set by `shutdown`: no new recording may start.
    closing: AtomicBool,
    caps: tokio::sync::Mutex<Option<(PathBuf, Caps)>>,
}

/// A start's place under the limit, from its check until its entry in `active`.
struct Slot<'a>(&'a Recorder);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.starting.fetch_sub(1, Ordering::SeqCst);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Recorder {
    pub fn new(opts: Options, spawner: Arc<dyn Spawner>) -> Arc<Recorder> {
        Arc::new(Recorder {
            store: Store::new(opts.dir.clone()),
            opts,
            spawner,
            active: Mutex::new(HashMap::new()),
            starting: std::sync::atomic::AtomicUsize::new(0),
            closing: AtomicBool::new(false),
            caps: tokio::sync::Mutex::new(None),
        })
    }

    pub fn dir(&self) -> &Path {
        self.store.dir()
    }

    /// Starts recording; answers once ffmpeg has produced its first frame.
    ///
    /// The start runs as a task of its own: a client that goes away meanwhile cancels nothing
    /// half-way (the metadata is written, the first frame awaited, the start timeout enforced).
    pub async fn start(
        self: &Arc<Self>,
        label: Option<&str>,
        launch: Launch,
    ) -> Result<Recording, RecorderError> {
        let this = self.clone();
        let label = label.map(str::to_string);
        tokio::spawn(async move { this.start_here(label.as_deref(), launch).await })
            .await
            .unwrap_or_else(|e| Err(RecorderError::Failed(format!("the start was interrupted: {e}"))))
    }

    fn reserve(&self) -> Result<Slot<'_>, RecorderError> {
        let active = lock(&self.active);
        if self.closing.load(Ordering::SeqCst) {
            return Err(RecorderError::ShuttingDown);
        }
        if active.len() + self.starting.load(Ordering::SeqCst) >= self.opts.max_active {
            return Err(RecorderError::TooMany(self.opts.max_active));
        }
        self.starting.fetch_add(1, Ordering::SeqCst);
        Ok(Slot(self))
    }

    async fn start_here(
        self: &Arc<Self>,
        label: Option<&str>,
        launch: Launch,
    ) -> Result<Recording, RecorderError> {
        let label = label.filter(|l| !l.is_empty());
        if label.is_some_and(|l| !is_valid_label(l)) {
            return Err(RecorderError::InvalidLabel);
        }
        let ffmpeg = launch.ffmpeg.clone().ok_or(RecorderError::FfmpegNotFound)?;
        let display = launch.display();
        let probed = display.clone();
        tokio::task::spawn_blocking(move || display::probe(&probed))
            .await
            .unwrap_or(Ok(()))
            .map_err(|detail| RecorderError::DisplayUnavailable { display: display.clone(), detail })?;
        let slot = self.reserve()?;
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.ensure())
            .await
            .unwrap_or_else(|e| Err(io::Error::other(e)))
            .map_err(RecorderError::io("cannot create the recordings directory", self.store.dir()))?;
        let caps = self.caps(&ffmpeg, &launch.env).await;

        let id = uuid::Uuid::new_v4().hyphenated().to_string();
        let spawned_at = Timestamp::now();
        let stamp = spawned_at.to_zoned(jiff::tz::TimeZone::system()).strftime("%Y%m%d_%H%M%S").to_string();
        let file_name = format!("{id}_{}_{stamp}.mp4", label.unwrap_or("session"));
        let path = self.store.path_of(&file_name);

        let mut cmd = Command::new(&ffmpeg);
        cmd.args(recording_args(caps, &display, &path))
            .env_clear()
            .envs(launch.env.iter().map(|(k, v)| (k, v)))
            .env("DISPLAY", &display)
            .current_dir(self.store.dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own group: a terminal's Ctrl-C aimed at the daemon does not cut a recording short.
            .process_group(0);
        let (mut child, exit) = self
            .spawner
            .spawn(&mut cmd)
            .map_err(|e| RecorderError::Failed(format!("cannot run {}: {e}", ffmpeg.display())))?;
        let pid = child.id();
        // Taken now, while ffmpeg cannot have been reaped: how a later daemon recognises it.
        let ffmpeg_proc = Owner::of(pid);
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        drop(child);

        let tail = Arc::new(Mutex::new(Tail::default()));
        let (stderr_done_tx, stderr_done) = tokio::sync::oneshot::channel::<()>();
        if let Some(stderr) = stderr {
            let tail = tail.clone();
            let _ = std::thread::Builder::new().name("ffmpeg-stderr".into()).spawn(move || {
                keep_tail(stderr, tail);
                let _ = stderr_done_tx.send(());
            });
        }
        let (frames_tx, frames) = watch::channel(0u64);
        if let Some(stdout) = stdout {
            let _ = std::thread::Builder::new().name("ffmpeg-progress".into()).spawn(move || {
                follow_progress(stdout, |n| {
                    frames_tx.send_if_modified(|f| {
                        let changed = *f != n;
                        *f = n;
                        changed
                    });
                })
            });
        }

        let record = Recording {
            id: id.clone(),
            file_name,
            file_path: path.to_string_lossy().into_owned(),
            start_time: rfc3339(spawned_at),
            end_time: None,
            status: Status::Recording,
            duration_seconds: None,
            size_bytes: None,
            error: None,
        };
        let (done_tx, done) = watch::channel(None);
        let active = Arc::new(Active {
            record: Mutex::new(record),
            started: Mutex::new(spawned_at),
            pid,
            stdin: Mutex::new(stdin),
            ending: Mutex::new(None),
            killed: AtomicBool::new(false),
            exited: AtomicBool::new(false),
            meta: tokio::sync::Mutex::new(false),
            done: done.clone(),
        });
        {
            let mut map = lock(&self.active);
            if self.closing.load(Ordering::SeqCst) {
                // Shutdown began while this one was spawning: it would outlive the daemon.
                drop(map);
                signal(&active, rustix::process::Signal::KILL);
                let _ = std::fs::remove_file(&path);
                return Err(RecorderError::ShuttingDown);
            }
            map.insert(id.clone(), active.clone());
        }
        drop(slot);
        tokio::spawn(self.clone().monitor(active.clone(), exit, tail, stderr_done, frames.clone(), done_tx));
        // On disk at once, so a daemon that dies from here on leaves enough to finish the file.
        let initial = lock(&active.record).clone();
        self.save_unless_settled(
            &active,
            Meta { record: initial, ffmpeg: ffmpeg_proc, owner: Owner::current() },
        )
        .await;

        let first_frame = tokio::time::timeout(self.opts.start_timeout, async {
            let mut frames = frames.clone();
            let mut done = done.clone();
            tokio::select! {
                r = frames.wait_for(|n| *n > 0) => r.is_ok(),
                _ = done.wait_for(Option::is_some) => false,
            }
        })
        .await;
        match first_frame {
            Ok(true) => {}
            Ok(false) | Err(_) => {
                // Timed out, or ffmpeg closed its progress output: it is not recording. An ffmpeg
                // that is exiting anyway (its output closes as it exits) keeps its own reason.
                let exiting = first_frame.is_ok()
                    && tokio::time::timeout(Duration::from_secs(1), done.clone().wait_for(Option::is_some))
                        .await
                        .is_ok();
                if !exiting && !active.exited.load(Ordering::SeqCst) {
                    let why = if first_frame.is_err() { Ending::StartTimeout } else { Ending::NoProgress };
                    self.request_end(&active, why);
                }
                let settled = settled(&active).await;
                return Err(RecorderError::Failed(
                    settled.error.unwrap_or_else(|| "ffmpeg stopped before recording anything".into()),
                ));
            }
        }
        // The recording starts with its first frame, so its duration matches the video's.
        // Progress comes every 100 ms, so the frames counted by then were captured earlier: the
        // clock goes back by what they took (never before the spawn).
        let counted = *frames.borrow();
        let back =
            jiff::SignedDuration::from_secs_f64(counted.saturating_sub(1) as f64 / f64::from(FRAMERATE));
        let now = Timestamp::now().checked_sub(back).unwrap_or(spawned_at).max(spawned_at);
        *lock(&active.started) = now;
        let snapshot = {
            let mut r = lock(&active.record);
            r.start_time = rfc3339(now);
            r.clone()
        };
        self.save_unless_settled(
            &active,
            Meta { record: snapshot.clone(), ffmpeg: ffmpeg_proc, owner: Owner::current() },
        )
        .await;
        Ok(snapshot)
    }

    /// Writes a running recording's metadata, unless the monitor has written the final one.
    async fn save_unless_settled(&self, active: &Active, meta: Meta) {
        let finished = active.meta.lock().await;
        if *finished {
            return;
        }
        let store = self.store.clone();
        let id = meta.record.id.clone();
        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || store.save(&meta)).await {
            tracing::warn!(error = %e, id = %id, "cannot write the recording's metadata");
        }
    }

    /// Awaits ffmpeg's exit and settles the recording once.
    async fn monitor(
        self: Arc<Self>,
        active: Arc<Active>,
        exit: ExitFuture,
        tail: Arc<Mutex<Tail>>,
        stderr_done: tokio::sync::oneshot::Receiver<()>,
        frames: watch::Receiver<u64>,
        done: watch::Sender<Option<Recording>>,
    ) {
        let exit = exit.await;
        active.exited.store(true, Ordering::SeqCst);
        // The rest of stderr is in the pipe; a grandchild holding it open must not hold us up.
        let _ = tokio::time::timeout(Duration::from_millis(500), stderr_done).await;
        let end = Timestamp::now();
        let mut record = lock(&active.record).clone();
        let size = tokio::fs::metadata(self.store.path_of(&record.file_name)).await.ok().map(|m| m.len());
        let outcome = Outcome {
            ending: *lock(&active.ending),
            killed: active.killed.load(Ordering::SeqCst),
            exit,
            frames: *frames.borrow(),
            size,
            tail: lock(&tail).text(),
        };
        let (status, error) = outcome.settle(self.opts.stop_timeout, self.opts.start_timeout);
        record.status = status;
        record.error = error;
        record.end_time = Some(rfc3339(end));
        record.duration_seconds = Some(seconds_between(*lock(&active.started), end));
        record.size_bytes = size;
        {
            let mut finished = active.meta.lock().await;
            *finished = true;
            let store = self.store.clone();
            let meta = Meta { record: record.clone(), ffmpeg: None, owner: None };
            if let Ok(Err(e)) = tokio::task::spawn_blocking(move || store.save(&meta)).await {
                tracing::warn!(error = %e, id = %record.id, "cannot write the recording's metadata");
            }
        }
        if record.status == Status::Failed {
            tracing::warn!(id = %record.id, reason = record.error.as_deref().unwrap_or(""), "recording failed");
        }
        lock(&self.active).remove(&record.id);
        done.send_replace(Some(record));
    }

    /// Asks ffmpeg to finish (once; later requests only wait), escalating on a timer of its
    /// own so that a client that goes away does not leave ffmpeg running.
    fn request_end(&self, active: &Arc<Active>, why: Ending) {
        {
            let mut ending = lock(&active.ending);
            if ending.is_some() {
                return;
            }
            *ending = Some(why);
        }
        if matches!(why, Ending::StartTimeout | Ending::NoProgress) {
            signal(active, rustix::process::Signal::KILL);
            return;
        }
        // `q` makes ffmpeg stop reading, write the MP4 index and exit 0; closing stdin after it
        // ends the conversation.
        if let Some(mut stdin) = lock(&active.stdin).take() {
            let _ = stdin.write_all(b"q");
        }
        let active = active.clone();
        let timeout = self.opts.stop_timeout;
        tokio::spawn(async move {
            let mut done = active.done.clone();
            if tokio::time::timeout(timeout / 2, done.wait_for(Option::is_some)).await.is_ok() {
                return;
            }
            // A second way to ask: ffmpeg also finishes the file on its first SIGINT.
            signal(&active, rustix::process::Signal::INT);
            if tokio::time::timeout(timeout - timeout / 2, done.wait_for(Option::is_some)).await.is_ok() {
                return;
            }
            active.killed.store(true, Ordering::SeqCst);
            signal(&active, rustix::process::Signal::KILL);
        });
    }

    /// Stops a recording and returns it as it ended. One that already ended is returned as it
    /// is (a retried stop gets the same answer).
    pub async fn stop(self: &Arc<Self>, id: &str) -> Result<Recording, RecorderError> {
        let active = lock(&self.active).get(id).cloned();
        match active {
            Some(active) => {
                self.request_end(&active, Ending::Stop);
                Ok(settled(&active).await)
            }
            None => self.ended(id).await,
        }
    }

    /// Every recording: the active ones first (oldest first), then the directory's by file name.
    pub async fn list(self: &Arc<Self>) -> Result<Vec<Recording>, RecorderError> {
        let mut active: Vec<Recording> = self.active_records();
        active.sort_by(|a, b| a.start_time.cmp(&b.start_time));
        let ids: HashSet<String> = active.iter().map(|r| r.id.clone()).collect();
        let mut rest = self.scan(ids).await?;
        active.append(&mut rest);
        Ok(active)
    }

    pub async fn get(self: &Arc<Self>, id: &str) -> Result<Recording, RecorderError> {
        if let Some(active) = lock(&self.active).get(id).cloned() {
            return Ok(self.snapshot(&active));
        }
        self.ended(id).await
    }

    /// Deletes an ended recording's file and metadata.
    pub async fn delete(self: &Arc<Self>, id: &str) -> Result<(), RecorderError> {
        if lock(&self.active).contains_key(id) {
            return Err(RecorderError::StillActive(id.to_string()));
        }
        let record = self.ended(id).await?;
        let store = self.store.clone();
        let path = store.path_of(&record.file_name);
        match tokio::task::spawn_blocking(move || store.remove(&record)).await {
            Ok(Ok(true)) => Ok(()),
            Ok(Ok(false)) => Err(RecorderError::NotFound),
            Ok(Err(e)) => Err(RecorderError::Io { what: "failed to delete recording file", path, err: e }),
            Err(e) => Err(RecorderError::Io {
                what: "failed to delete recording file",
                path,
                err: io::Error::other(e),
            }),
        }
    }

    /// Deletes many ended recordings with one look at the directory; returns the ids deleted and
    /// the ids that were not (unknown, still recording, or not removable).
    pub async fn delete_many(self: &Arc<Self>, ids: Vec<String>) -> (Vec<String>, Vec<String>) {
        let active: HashSet<String> = lock(&self.active).keys().cloned().collect();
        let Ok(known) = self.scan(active.clone()).await else { return (Vec::new(), ids) };
        let mut known: HashMap<String, Recording> = known.into_iter().map(|r| (r.id.clone(), r)).collect();
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            let (mut deleted, mut failed) = (Vec::new(), Vec::new());
            for id in ids {
                let removed = match known.remove(&id) {
                    Some(record) if !active.contains(&id) => store.remove(&record).unwrap_or(false),
                    _ => false,
                };
                if removed { deleted.push(id) } else { failed.push(id) }
            }
            (deleted, failed)
        })
        .await
        .unwrap_or_default()
    }

    /// A recording and its file, for a download (an active one's file is partial).
    pub async fn file(self: &Arc<Self>, id: &str) -> Result<(Recording, PathBuf), RecorderError> {
        let record = self.get(id).await?;
        let path = self.store.path_of(&record.file_name);
        match tokio::fs::symlink_metadata(&path).await {
            Ok(m) if m.is_file() => Ok((record, path)),
            _ => Err(RecorderError::FileMissing),
        }
    }

    /// Stops every active recording (the daemon is shutting down): each file is finished and
    /// the recording marked interrupted. Bounded by the stop timeout.
    pub async fn shutdown(self: &Arc<Self>) {
        let all: Vec<Arc<Active>> = {
            let active = lock(&self.active);
            self.closing.store(true, Ordering::SeqCst);
            active.values().cloned().collect()
        };
        for active in &all {
            self.request_end(active, Ending::Shutdown);
        }
        let bound = self.opts.stop_timeout + Duration::from_secs(2);
        for active in all {
            let _ = tokio::time::timeout(bound, settled(&active)).await;
        }
    }

    /// Settles recordings a previous daemon left `recording`: an ffmpeg of theirs still running
    /// is asked to finish its file (SIGINT, then SIGKILL after the stop timeout), and the
    /// metadata then says `interrupted`, with the file's size and its last write as the end.
    pub async fn recover(self: Arc<Self>) {
        let store = self.store.clone();
        let Ok(Ok(metas)) = tokio::task::spawn_blocking(move || store.metas()).await else { return };
        let ours: HashSet<String> = lock(&self.active).keys().cloned().collect();
        for (id, meta) in metas {
            // Another daemon's (alive) recordings are its own business.
            if meta.record.status != Status::Recording
                || ours.contains(&id)
                || meta.owner.is_some_and(|o| o.is_alive())
            {
                continue;
            }
            let mut note = "the daemon stopped while this was recording".to_string();
            // Only an ffmpeg that is the very process recorded (pid and start time), writing
            // this directory's file, is signalled: metadata is a file anyone could write.
            let expected = self.store.path_of(&meta.record.file_name);
            if let Some(ffmpeg) = meta.ffmpeg
                && Path::new(&meta.record.file_path) == expected
                && is_ffmpeg_writing(ffmpeg, &meta.record.file_path)
            {
                finish_orphan(ffmpeg, self.opts.stop_timeout).await;
                note.push_str("; its ffmpeg was asked to finish the file when the daemon started again");
            }
            let mut record = meta.record;
            let stat = tokio::fs::metadata(self.store.path_of(&record.file_name)).await.ok();
            let end = stat
                .as_ref()
                .and_then(|m| m.modified().ok())
                .and_then(|t| Timestamp::try_from(t).ok())
                .unwrap_or_else(Timestamp::now);
            record.status = Status::Interrupted;
            record.error = Some(note);
            record.end_time = Some(rfc3339(end));
            record.duration_seconds = parse_rfc3339(&record.start_time).map(|s| seconds_between(s, end));
            record.size_bytes = stat.map(|m| m.len());
            let store = self.store.clone();
            let meta = Meta { record, ffmpeg: None, owner: None };
            let _ = tokio::task::spawn_blocking(move || store.save(&meta)).await;
        }
    }

    fn active_records(&self) -> Vec<Recording> {
        let all: Vec<Arc<Active>> = lock(&self.active).values().cloned().collect();
        all.iter().map(|a| self.snapshot(a)).collect()
    }

    /// An active recording as it stands, with the file's current size.
    fn snapshot(&self, active: &Active) -> Recording {
        let mut r = lock(&active.record).clone();
        r.size_bytes = std::fs::metadata(self.store.path_of(&r.file_name)).ok().map(|m| m.len());
        r
    }

    async fn scan(&self, skip: HashSet<String>) -> Result<Vec<Recording>, RecorderError> {
        let store = self.store.clone();
        let dir = store.dir().to_path_buf();
        tokio::task::spawn_blocking(move || store.list(&skip))
            .await
            .unwrap_or_else(|e| Err(io::Error::other(e)))
            .map_err(RecorderError::io("cannot read the recordings directory", dir))
    }

    /// A recording that is not active, from the directory.
    async fn ended(&self, id: &str) -> Result<Recording, RecorderError> {
        let skip = lock(&self.active).keys().cloned().collect();
        self.scan(skip).await?.into_iter().find(|r| r.id == id).ok_or(RecorderError::NotFound)
    }

    /// What ffmpeg can do, probed once per binary.
    async fn caps(&self, ffmpeg: &Path, env: &[(OsString, OsString)]) -> Caps {
        let mut cached = self.caps.lock().await;
        if let Some((path, caps)) = &*cached
            && path == ffmpeg
        {
            return *caps;
        }
        let version = self.probe(ffmpeg, &["-version"], env).await.unwrap_or_default();
        let encoders = self.probe(ffmpeg, &["-hide_banner", "-encoders"], env).await.unwrap_or_default();
        let caps = Caps::from_probes(&version, &encoders);
        // A probe that said nothing is not remembered: the next start asks again.
        if !encoders.is_empty() {
            *cached = Some((ffmpeg.to_path_buf(), caps));
        }
        caps
    }

    /// Runs ffmpeg with `args` and returns its stdout (at most 1 MiB, within 10 s).
    async fn probe(&self, ffmpeg: &Path, args: &[&str], env: &[(OsString, OsString)]) -> Option<String> {
        let mut cmd = Command::new(ffmpeg);
        cmd.args(args)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0);
        let (mut child, exit) = self.spawner.spawn(&mut cmd).ok()?;
        let pid = child.id();
        let stdout = child.stdout.take()?;
        drop(child);
        let read = tokio::task::spawn_blocking(move || {
            let mut out = String::new();
            let _ = stdout.take(1 << 20).read_to_string(&mut out);
            out
        });
        match tokio::time::timeout(Duration::from_secs(10), async { (read.await.ok(), exit.await) }).await {
            Ok((out, _)) => out,
            Err(_) => {
                tracing::warn!(program = %ffmpeg.display(), "ffmpeg did not answer a capability probe within 10 s");
                if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
                    let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                }
                None
            }
        }
    }
}

/// Waits for the monitor's final record.
async fn settled(active: &Active) -> Recording {
    let mut done = active.done.clone();
    match done.wait_for(Option::is_some).await {
        Ok(r) => r.clone().expect("waited for Some"),
        // The monitor cannot vanish without settling (it owns the sender until it sends); should
        // the runtime be shutting down, the last known record is the best answer.
        Err(_) => lock(&active.record).clone(),
    }
}

fn signal(active: &Active, sig: rustix::process::Signal) {
    if active.exited.load(Ordering::SeqCst) {
        return;
    }
    if let Some(pid) = rustix::process::Pid::from_raw(active.pid as i32) {
        let _ = rustix::process::kill_process(pid, sig);
    }
}

/// Whether `proc` still runs, is an ffmpeg (by its program name) and writes `file` (its
/// command line has the path as an argument).
fn is_ffmpeg_writing(proc: Owner, file: &str) -> bool {
    if !proc.is_alive() {
        return false;
    }
    let Ok(cmdline) = std::fs::read(format!("/proc/{}/cmdline", proc.pid)) else { return false };
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    // The program, or the script an interpreter runs (a wrapper script named ffmpeg).
    let named_ffmpeg = args.iter().take(2).any(|a| {
        let name = a.rsplit(|b| *b == b'/').next().unwrap_or_default();
        name.windows(6).any(|w| w == b"ffmpeg")
    });
    named_ffmpeg && args.iter().any(|arg| *arg == file.as_bytes())
}

/// SIGINT to an ffmpeg that is not our child, then polling until it is gone; SIGKILL after
/// `bound`. Each signal goes only to the same process (pid and start time).
async fn finish_orphan(proc: Owner, bound: Duration) {
    let Some(pid) = rustix::process::Pid::from_raw(proc.pid as i32) else { return };
    if proc.is_alive() {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::INT);
    }
    let deadline = tokio::time::Instant::now() + bound;
    while tokio::time::Instant::now() < deadline {
        if !proc.is_alive() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if proc.is_alive() {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
    }
}

/// Everything the outcome of a recording depends on.
#[derive(Debug, Clone)]
struct Outcome {
    ending: Option<Ending>,
    killed: bool,
    exit: Exit,
    frames: u64,
    size: Option<u64>,
    tail: String,
}

impl Outcome {
    fn settle(&self, stop_timeout: Duration, start_timeout: Duration) -> (Status, Option<String>) {
        let with_tail = |msg: String| {
            if self.tail.is_empty() { msg } else { format!("{msg}: {}", self.tail) }
        };
        let how = describe(self.exit);
        match self.ending {
            None if self.frames == 0 => {
                (Status::Failed, Some(with_tail(format!("ffmpeg {how} before recording anything"))))
            }
            None => (Status::Failed, Some(with_tail(format!("ffmpeg {how} while recording")))),
            Some(Ending::StartTimeout) => (
                Status::Failed,
                Some(with_tail(format!("ffmpeg produced no frame within {}s", start_timeout.as_secs_f64()))),
            ),
            Some(Ending::NoProgress) => (
                Status::Failed,
                Some(with_tail("ffmpeg stopped reporting progress before its first frame".to_string())),
            ),
            Some(Ending::Stop) if self.killed => (
                Status::Failed,
                Some(format!(
                    "ffmpeg did not finish the file within {}s of the stop and was killed; the file may not play",
                    stop_timeout.as_secs_f64()
                )),
            ),
            Some(Ending::Stop) if self.size.unwrap_or(0) == 0 => {
                (Status::Failed, Some(with_tail(format!("ffmpeg {how} without writing any video"))))
            }
            Some(Ending::Stop) => (Status::Completed, None),
            Some(Ending::Shutdown) if self.killed => (
                Status::Interrupted,
                Some("the daemon shut down while this was recording; ffmpeg did not finish the file in time and was killed".into()),
            ),
            Some(Ending::Shutdown) => (
                Status::Interrupted,
                Some("the daemon shut down while this was recording; the file was finished".into()),
            ),
        }
    }
}

fn describe(exit: Exit) -> String {
    match exit {
        Exit::Code(c) => format!("exited with status {c}"),
        Exit::Signal(s) => {
            let name = match s {
                1 => " (SIGHUP)",
                2 => " (SIGINT)",
                6 => " (SIGABRT)",
                9 => " (SIGKILL)",
                11 => " (SIGSEGV)",
                15 => " (SIGTERM)",
                _ => "",
            };
            format!("was killed by signal {s}{name}")
        }
        Exit::Unknown => "ended".into(),
    }
}

#[cfg(test)]
mod tests;
