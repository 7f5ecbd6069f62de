use std::os::unix::fs::PermissionsExt;

use super::*;
use crate::store::Owner;

/// Spawns with std and waits with `waitpid` on a thread: the tests have no reaper.
struct ThreadSpawner;

impl Spawner for ThreadSpawner {
    fn spawn(&self, cmd: &mut Command) -> io::Result<(Child, ExitFuture)> {
        let child = cmd.spawn()?;
        let pid = child.id() as libc::pid_t;
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let mut status = 0;
            // SAFETY: waits for our own child; `status` is a valid out-pointer.
            let r = unsafe { libc::waitpid(pid, &mut status, 0) };
            let exit = if r != pid {
                Exit::Unknown
            } else if libc::WIFEXITED(status) {
                Exit::Code(libc::WEXITSTATUS(status))
            } else if libc::WIFSIGNALED(status) {
                Exit::Signal(libc::WTERMSIG(status))
            } else {
                Exit::Unknown
            };
            let _ = tx.send(exit);
        });
        Ok((child, Box::pin(async move { rx.await.unwrap_or(Exit::Unknown) })))
    }
}

struct Fixture {
    dir: tempfile::TempDir,
    recorder: Arc<Recorder>,
}

fn fake_ffmpeg() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fake-ffmpeg");
    assert!(p.metadata().unwrap().permissions().mode() & 0o111 != 0);
    p
}

fn fixture(stop_timeout: Duration) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = Options::new(dir.path().join("recordings"));
    opts.stop_timeout = stop_timeout;
    opts.start_timeout = Duration::from_secs(2);
    opts.max_active = 2;
    Fixture { recorder: Recorder::new(opts, Arc::new(ThreadSpawner)), dir }
}

fn launch(mode: &str) -> Launch {
    Launch {
        ffmpeg: Some(fake_ffmpeg()),
        env: vec![
            ("PATH".into(), std::env::var_os("PATH").unwrap_or_default()),
            // A display on another host is not probed, so no X server is needed here.
            ("DISPLAY".into(), "testhost:0".into()),
            ("FAKE_FFMPEG_MODE".into(), mode.into()),
        ],
    }
}

#[tokio::test]
async fn start_stop_list_get_delete() {
    let f = fixture(Duration::from_secs(5));
    let r = f.recorder.start(Some("demo run"), launch("normal")).await.unwrap();
    assert_eq!(r.status, Status::Recording);
    assert!(r.file_name.starts_with(&format!("{}_demo run_", r.id)), "{}", r.file_name);
    assert!(r.file_name.ends_with(".mp4"));
    assert_eq!(Path::new(&r.file_path), f.recorder.dir().join(&r.file_name));
    // Metadata is on disk while it records.
    let metas = Store::new(f.recorder.dir().to_path_buf()).metas().unwrap();
    assert_eq!(metas[&r.id].record.status, Status::Recording);
    assert!(metas[&r.id].ffmpeg.is_some() && metas[&r.id].owner == Owner::current());

    let listed = f.recorder.list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].status, Status::Recording);
    assert!(matches!(f.recorder.delete(&r.id).await, Err(RecorderError::StillActive(_))));

    tokio::time::sleep(Duration::from_millis(300)).await;
    let stopped = f.recorder.stop(&r.id).await.unwrap();
    assert_eq!(stopped.status, Status::Completed, "{stopped:?}");
    assert!(stopped.error.is_none());
    assert!(stopped.duration_seconds.unwrap() >= 0.25, "{stopped:?}");
    let contents = std::fs::read_to_string(&stopped.file_path).unwrap();
    assert!(contents.ends_with("moov\n"), "ffmpeg was not asked to finish: {contents}");
    assert_eq!(stopped.size_bytes, Some(contents.len() as u64));
    // A stop again answers the same record; get and list agree.
    assert_eq!(f.recorder.stop(&r.id).await.unwrap(), stopped);
    assert_eq!(f.recorder.get(&r.id).await.unwrap(), stopped);
    assert_eq!(f.recorder.list().await.unwrap(), vec![stopped.clone()]);
    let (_, path) = f.recorder.file(&r.id).await.unwrap();
    assert_eq!(path, Path::new(&stopped.file_path));

    f.recorder.delete(&r.id).await.unwrap();
    assert!(!Path::new(&stopped.file_path).exists());
    assert!(matches!(f.recorder.get(&r.id).await, Err(RecorderError::NotFound)));
    assert!(matches!(f.recorder.delete(&r.id).await, Err(RecorderError::NotFound)));
    assert!(matches!(f.recorder.stop("nope").await, Err(RecorderError::NotFound)));
    drop(f.dir);
}

#[tokio::test]
async fn bad_input_and_missing_tools_are_refused_before_spawning() {
    let f = fixture(Duration::from_secs(5));
    assert!(matches!(
        f.recorder.start(Some("a/b"), launch("normal")).await,
        Err(RecorderError::InvalidLabel)
    ));
    let mut none = launch("normal");
    none.ffmpeg = None;
    assert!(matches!(f.recorder.start(None, none).await, Err(RecorderError::FfmpegNotFound)));
    let mut no_display = launch("normal");
    no_display.env.retain(|(k, _)| k != "DISPLAY");
    no_display.env.push(("DISPLAY".into(), ":397".into()));
    match f.recorder.start(None, no_display).await {
        Err(RecorderError::DisplayUnavailable { display, detail }) => {
            assert_eq!(display, ":397");
            assert!(detail.contains("/tmp/.X11-unix/X397"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    // Nothing was created for refused starts.
    assert!(f.recorder.list().await.unwrap().is_empty());
}

#[tokio::test]
async fn an_empty_label_is_no_label() {
    let f = fixture(Duration::from_secs(5));
    let r = f.recorder.start(Some(""), launch("normal")).await.unwrap();
    assert!(r.file_name.contains("_session_"), "{}", r.file_name);
    f.recorder.stop(&r.id).await.unwrap();
}

#[tokio::test]
async fn ffmpeg_failing_at_once_fails_the_start_with_its_stderr_and_is_listed() {
    let f = fixture(Duration::from_secs(5));
    let err = f.recorder.start(None, launch("fail")).await.unwrap_err();
    let RecorderError::Failed(msg) = err else { panic!("{err:?}") };
    assert!(msg.contains("exited with status 1 before recording anything"), "{msg}");
    assert!(msg.contains("Cannot open display :9"), "{msg}");
    let listed = f.recorder.list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].status, Status::Failed);
    assert_eq!(listed[0].error.as_deref(), Some(msg.as_str()));
    // Deletable, though it has no file.
    f.recorder.delete(&listed[0].id).await.unwrap();
    assert!(f.recorder.list().await.unwrap().is_empty());
}

#[tokio::test]
async fn no_frame_within_the_start_timeout_fails_the_start() {
    let f = fixture(Duration::from_secs(5));
    let t = std::time::Instant::now();
    let err = f.recorder.start(None, launch("silent")).await.unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(5));
    let RecorderError::Failed(msg) = err else { panic!("{err:?}") };
    assert!(msg.contains("no frame within 2s"), "{msg}");
}

#[tokio::test]
async fn ffmpeg_dying_while_recording_is_failed_with_the_reason() {
    let f = fixture(Duration::from_secs(5));
    let r = f.recorder.start(None, launch("die")).await.unwrap();
    let mut got = None;
    for _ in 0..100 {
        let now = f.recorder.get(&r.id).await.unwrap();
        if now.status != Status::Recording {
            got = Some(now);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let got = got.expect("the recording did not end");
    assert_eq!(got.status, Status::Failed);
    let error = got.error.unwrap();
    assert!(error.contains("exited with status 3 while recording"), "{error}");
    assert!(error.contains("out of cheese"), "{error}");
    // A stop now answers the failure rather than pretending.
    assert_eq!(f.recorder.stop(&r.id).await.unwrap().status, Status::Failed);
}

#[tokio::test]
async fn a_stop_ffmpeg_ignores_is_bounded_and_says_it_killed() {
    let f = fixture(Duration::from_millis(600));
    let r = f.recorder.start(None, launch("stubborn")).await.unwrap();
    let t = std::time::Instant::now();
    let stopped = f.recorder.stop(&r.id).await.unwrap();
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert_eq!(stopped.status, Status::Failed);
    assert!(stopped.error.unwrap().contains("was killed"));
}

#[tokio::test]
async fn shutdown_finishes_active_recordings_as_interrupted() {
    let f = fixture(Duration::from_secs(5));
    let r = f.recorder.start(None, launch("normal")).await.unwrap();
    f.recorder.shutdown().await;
    let after = f.recorder.get(&r.id).await.unwrap();
    assert_eq!(after.status, Status::Interrupted);
    assert!(after.error.unwrap().contains("the file was finished"));
    assert!(std::fs::read_to_string(&after.file_path).unwrap().ends_with("moov\n"));
}

#[tokio::test]
async fn a_new_recorder_settles_what_an_old_one_left_recording() {
    // The first recorder lives on a runtime of its own, so that dropping the runtime stands for
    // its daemon dying: its monitor is gone, its ffmpeg keeps running.
    let dir = tempfile::tempdir().unwrap();
    let rec_dir = dir.path().join("recordings");
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let (die_tx, die_rx) = std::sync::mpsc::channel::<()>();
    let first_dir = rec_dir.clone();
    let first = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let recorder = Recorder::new(Options::new(first_dir), Arc::new(ThreadSpawner));
        let r = rt.block_on(recorder.start(None, launch("normal"))).unwrap();
        started_tx.send(r).unwrap();
        let _ = die_rx.recv();
        drop(rt);
    });
    let r = started_rx.recv().unwrap();
    let store = Store::new(rec_dir.clone());
    let mut meta = store.metas().unwrap().remove(&r.id).unwrap();
    let ffmpeg = meta.ffmpeg.unwrap();
    let mut opts = Options::new(rec_dir);
    opts.stop_timeout = Duration::from_secs(5);
    let second = Recorder::new(opts, Arc::new(ThreadSpawner));

    // While the daemon that runs it lives, another one sharing the directory leaves it alone.
    assert_eq!(second.list().await.unwrap()[0].status, Status::Recording);
    second.clone().recover().await;
    assert!(ffmpeg.is_alive(), "a live daemon's ffmpeg was signalled");

    // The first daemon dies (and its owner record names a process that is gone).
    die_tx.send(()).unwrap();
    first.join().unwrap();
    let owner = meta.owner.unwrap();
    meta.owner = Some(Owner { started: owner.started + 1, ..owner });
    store.save(&meta).unwrap();
    let listed = second.list().await.unwrap();
    assert_eq!(listed[0].status, Status::Interrupted, "listed as such even before recovery");
    // Recovery asks the orphaned ffmpeg to finish its file and records the outcome.
    second.clone().recover().await;
    assert!(!ffmpeg.is_alive(), "the orphaned ffmpeg still runs");
    let after = second.get(&r.id).await.unwrap();
    assert_eq!(after.status, Status::Interrupted);
    assert!(after.error.unwrap().contains("asked to finish"));
    assert!(after.end_time.is_some() && after.duration_seconds.is_some());
    assert!(after.size_bytes.unwrap() > 0);
}

#[tokio::test]
async fn at_most_max_active_recordings_run() {
    let f = fixture(Duration::from_secs(5));
    let a = f.recorder.start(None, launch("normal")).await.unwrap();
    let b = f.recorder.start(None, launch("normal")).await.unwrap();
    assert!(matches!(f.recorder.start(None, launch("normal")).await, Err(RecorderError::TooMany(2))));
    let listed = f.recorder.list().await.unwrap();
    assert_eq!(listed.iter().map(|r| &r.id).collect::<Vec<_>>(), [&a.id, &b.id]);
    f.recorder.stop(&a.id).await.unwrap();
    f.recorder.stop(&b.id).await.unwrap();
}

#[test]
fn outcomes() {
    let base = Outcome {
        ending: None,
        killed: false,
        exit: Exit::Code(0),
        frames: 0,
        size: None,
        tail: String::new(),
    };
    let s = Duration::from_secs(10);
    let settle = |o: Outcome| o.settle(s, s);
    assert_eq!(
        settle(Outcome { ending: Some(Ending::Stop), size: Some(10), ..base.clone() }),
        (Status::Completed, None)
    );
    let (st, e) = settle(Outcome { ending: Some(Ending::Stop), size: Some(0), ..base.clone() });
    assert_eq!(st, Status::Failed);
    assert!(e.unwrap().contains("without writing any video"));
    let (st, e) = settle(Outcome { frames: 5, exit: Exit::Signal(9), tail: "x".into(), ..base.clone() });
    assert_eq!(
        (st, e.unwrap()),
        (Status::Failed, "ffmpeg was killed by signal 9 (SIGKILL) while recording: x".into())
    );
    let (st, _) = settle(Outcome { ending: Some(Ending::Shutdown), killed: true, ..base.clone() });
    assert_eq!(st, Status::Interrupted);
}

#[tokio::test]
async fn a_start_whose_client_left_still_completes() {
    let f = fixture(Duration::from_secs(5));
    // The caller gives up long before the first frame.
    let gave_up =
        tokio::time::timeout(Duration::from_millis(1), f.recorder.start(None, launch("normal"))).await;
    assert!(gave_up.is_err());
    let mut listed = Vec::new();
    for _ in 0..100 {
        listed = f.recorder.list().await.unwrap();
        if !listed.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(listed.len(), 1, "the start was abandoned half-way");
    let id = listed[0].id.clone();
    // Its metadata names its ffmpeg and this daemon, for a restart to find.
    let mut meta = None;
    for _ in 0..100 {
        meta = Store::new(f.recorder.dir().to_path_buf()).metas().unwrap().remove(&id);
        if meta.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let meta = meta.expect("no metadata was written");
    assert!(meta.ffmpeg.is_some() && meta.owner == Owner::current(), "{meta:?}");
    assert_eq!(f.recorder.stop(&id).await.unwrap().status, Status::Completed);
}

#[tokio::test]
async fn concurrent_starts_respect_the_limit() {
    let f = fixture(Duration::from_secs(5));
    let starts: Vec<_> = (0..5)
        .map(|_| {
            let recorder = f.recorder.clone();
            async move { recorder.start(None, launch("normal")).await }
        })
        .collect();
    let results = futures_join_all(starts).await;
    let ok: Vec<Recording> = results.iter().filter_map(|r| r.as_ref().ok().cloned()).collect();
    assert_eq!(ok.len(), 2, "{results:?}");
    assert!(results.iter().filter(|r| matches!(r, Err(RecorderError::TooMany(2)))).count() == 3);
    for r in ok {
        f.recorder.stop(&r.id).await.unwrap();
    }
}

/// `join_all` without a futures dependency: each future on a task of its own.
async fn futures_join_all<F>(futures: Vec<F>) -> Vec<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test]
async fn an_ffmpeg_that_closes_its_progress_is_stopped_and_failed() {
    let f = fixture(Duration::from_secs(5));
    let t = std::time::Instant::now();
    let err = f.recorder.start(None, launch("quiet")).await.unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    let RecorderError::Failed(msg) = err else { panic!("{err:?}") };
    assert!(msg.contains("stopped reporting progress"), "{msg}");
    assert!(f.recorder.list().await.unwrap().iter().all(|r| r.status == Status::Failed));
}

#[tokio::test]
async fn no_start_after_shutdown_and_bulk_delete() {
    let f = fixture(Duration::from_secs(5));
    let a = f.recorder.start(None, launch("normal")).await.unwrap();
    let b = f.recorder.start(None, launch("normal")).await.unwrap();
    f.recorder.stop(&a.id).await.unwrap();
    // Active ones and unknown ones fail; ended ones go.
    let (deleted, failed) = f.recorder.delete_many(vec![a.id.clone(), b.id.clone(), "nope".into()]).await;
    assert_eq!(deleted, vec![a.id.clone()]);
    assert_eq!(failed, vec![b.id.clone(), "nope".to_string()]);
    assert!(!Path::new(&a.file_path).exists());
    f.recorder.shutdown().await;
    assert!(matches!(f.recorder.start(None, launch("normal")).await, Err(RecorderError::ShuttingDown)));
    assert_eq!(f.recorder.get(&b.id).await.unwrap().status, Status::Interrupted);
}
