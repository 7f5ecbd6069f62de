//! The recordings directory: the video files, and beside them (in `.meta/`) one JSON file per
//! recording this daemon made, so status, times and failure reasons survive a restart. Files
//! put there by other means are listed too, with what their name and metadata tell.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::model::{Recording, Status, rfc3339};

/// Where the metadata files live, inside the recordings directory.
pub const META_DIR: &str = ".meta";

/// What is stored per recording: the record, and while it runs its ffmpeg and the daemon that
/// runs it (so that a daemon started after a crash can ask an orphaned ffmpeg to finish its
/// file, and leaves a live daemon's recordings alone).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    #[serde(flatten)]
    pub record: Recording,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ffmpeg: Option<Owner>,
    /// The daemon that runs it, while it runs: a recording is only taken for abandoned when
    /// its daemon is gone (two daemons may share a directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Owner>,
}

/// A process, told apart from a later one with the same pid by its start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    pub pid: u32,
    /// Clock ticks after boot (`/proc/<pid>/stat`, field 22).
    pub started: u64,
}

impl Owner {
    /// This process.
    pub fn current() -> Option<Owner> {
        Owner::of(std::process::id())
    }

    /// The running process `pid`.
    pub fn of(pid: u32) -> Option<Owner> {
        Some(Owner { pid, started: start_ticks(pid)? })
    }

    /// Whether the process still runs (and is not a zombie).
    pub fn is_alive(&self) -> bool {
        start_ticks(self.pid) == Some(self.started)
    }
}

/// A process's start time, `None` when it is gone or a zombie.
fn start_ticks(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold anything; fields count on after it.
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    if fields.first() == Some(&"Z") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

/// The recordings directory.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    pub fn new(dir: PathBuf) -> Store {
        Store { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path_of(&self, file_name: &str) -> PathBuf {
        self.dir.join(file_name)
    }

    fn meta_path(&self, id: &str) -> PathBuf {
        self.dir.join(META_DIR).join(format!("{id}.json"))
    }

    /// Creates the directory (0755) and its metadata directory.
    pub fn ensure(&self) -> io::Result<()> {
        fs::DirBuilder::new().recursive(true).mode(0o755).create(self.dir.join(META_DIR))
    }

    /// Writes a recording's metadata atomically (a reader sees the old or the new file).
    pub fn save(&self, meta: &Meta) -> io::Result<()> {
        self.ensure()?;
        let path = self.meta_path(&meta.record.id);
        let tmp = path.with_extension(format!("json.tmp{}", std::process::id()));
        let result = (|| {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(&serde_json::to_vec_pretty(meta).map_err(io::Error::other)?)?;
            f.sync_data()?;
            fs::rename(&tmp, &path)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// The metadata of every recording, by id (unreadable or foreign files are skipped).
    pub fn metas(&self) -> io::Result<HashMap<String, Meta>> {
        let mut out = HashMap::new();
        let entries = match fs::read_dir(self.dir.join(META_DIR)) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e),
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".json")) else { continue };
            if uuid::Uuid::try_parse(id).is_err() {
                continue;
            }
            let Ok(bytes) = read_small(&entry.path()) else { continue };
            let Ok(meta) = serde_json::from_slice::<Meta>(&bytes) else { continue };
            // A file name with a path in it would let a forged metadata file point anywhere.
            if meta.record.id != id || !is_plain_name(&meta.record.file_name) {
                continue;
            }
            out.insert(id.to_string(), meta);
        }
        Ok(out)
    }

    /// Every recording on disk except those in `skip` (the active ones, which the caller lists
    /// from memory), sorted by file name.
    ///
    /// A video file is listed with its metadata when there is some, otherwise as the contract
    /// derives it (id from the name, times from the file). Metadata whose recording was still
    /// `recording` belongs to a daemon that is gone: it is listed as `interrupted`. A failed
    /// recording is listed even without a file, so its reason stays visible until deleted.
    pub fn list(&self, skip: &HashSet<String>) -> io::Result<Vec<Recording>> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut metas: HashMap<String, Meta> =
            self.metas()?.into_values().map(|m| (m.record.file_name.clone(), m)).collect();
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry?;
            let Ok(file_type) = entry.file_type() else { continue };
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if !file_type.is_file() || !name.ends_with(".mp4") {
                continue;
            }
            let Ok(stat) = entry.metadata() else { continue };
            let record = match metas.remove(name) {
                Some(meta) => {
                    let mut r = settled(meta);
                    r.size_bytes = Some(stat.len());
                    r
                }
                None => self.derived(name, &stat),
            };
            out.push(record);
        }
        out.extend(metas.into_values().map(settled).filter(|r| r.status == Status::Failed));
        out.retain(|r| !skip.contains(&r.id));
        out.sort_by(|a, b| a.file_name.cmp(&b.file_name));
        Ok(out)
    }

    /// A file without metadata, as the contract lists it.
    fn derived(&self, name: &str, stat: &fs::Metadata) -> Recording {
        let path = self.path_of(name);
        let path_text = path.to_string_lossy().into_owned();
        let id = match name.split_once('_').map(|(prefix, _)| uuid::Uuid::try_parse(prefix)) {
            Some(Ok(u)) => u.hyphenated().to_string(),
            _ => {
                uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, path_text.as_bytes()).hyphenated().to_string()
            }
        };
        let mtime = stat
            .modified()
            .ok()
            .and_then(|t| jiff::Timestamp::try_from(t).ok())
            .unwrap_or_else(jiff::Timestamp::now);
        Recording {
            id,
            file_name: name.to_string(),
            file_path: path_text,
            start_time: rfc3339(mtime),
            end_time: Some(rfc3339(mtime)),
            status: Status::Completed,
            duration_seconds: None,
            size_bytes: Some(stat.len()),
            error: None,
        }
    }

    /// Removes a recording's file and metadata. `Ok(false)`: there was neither.
    pub fn remove(&self, record: &Recording) -> io::Result<bool> {
        let file = match fs::remove_file(self.path_of(&record.file_name)) {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => return Err(e),
        };
        let meta = match fs::remove_file(self.meta_path(&record.id)) {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => return Err(e),
        };
        Ok(file || meta)
    }
}

/// A record as it stands: one left `recording` by a daemon that is gone was interrupted.
fn settled(meta: Meta) -> Recording {
    let mut r = meta.record;
    if r.status == Status::Recording && !meta.owner.is_some_and(|o| o.is_alive()) {
        r.status = Status::Interrupted;
        r.error.get_or_insert_with(|| "the daemon stopped while this was recording".to_string());
    }
    r
}

/// A file name that stays inside the directory it is joined to.
pub fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains('/') && !name.contains('\0')
}

/// Metadata files are small; a huge one is not ours.
fn read_small(path: &Path) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut buf = Vec::new();
    fs::File::open(path)?.take(64 * 1024).read_to_end(&mut buf)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, name: &str, status: Status) -> Recording {
        Recording {
            id: id.into(),
            file_name: name.into(),
            file_path: format!("/x/{name}"),
            start_time: "2026-01-01T00:00:00Z".into(),
            end_time: None,
            status,
            duration_seconds: None,
            size_bytes: None,
            error: None,
        }
    }

    const A: &str = "6f1c2f0e-7c1b-4f7e-9a51-0b8e4d0c1a11";
    const B: &str = "0a0b0c0d-1111-4222-8333-444455556666";

    #[test]
    fn files_and_metadata_are_listed_in_name_order() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::new(tmp.path().to_path_buf());
        store.ensure().unwrap();
        // Ours, with metadata, left `recording` by a daemon that is gone.
        let a_name = format!("{A}_demo_20260101_000000.mp4");
        fs::write(tmp.path().join(&a_name), b"video").unwrap();
        store
            .save(&Meta { record: record(A, &a_name, Status::Recording), ffmpeg: None, owner: None })
            .unwrap();
        // A failed one without a file.
        let b_name = format!("{B}_session_20260101_000001.mp4");
        let mut failed = record(B, &b_name, Status::Failed);
        failed.error = Some("ffmpeg exited".into());
        store.save(&Meta { record: failed, ffmpeg: None, owner: None }).unwrap();
        // Dropped in by hand: no UUID prefix, so a v5 id from the path.
        fs::write(tmp.path().join("zz-by-hand.mp4"), b"12").unwrap();
        // Not listed: other extensions, directories, symlinks.
        fs::write(tmp.path().join("notes.txt"), b"").unwrap();
        fs::create_dir(tmp.path().join("dir.mp4")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", tmp.path().join("link.mp4")).unwrap();

        let list = store.list(&HashSet::new()).unwrap();
        let names: Vec<&str> = list.iter().map(|r| r.file_name.as_str()).collect();
        assert_eq!(names, [b_name.as_str(), a_name.as_str(), "zz-by-hand.mp4"]);
        assert_eq!(list[0].status, Status::Failed);
        assert_eq!(list[1].status, Status::Interrupted);
        assert!(list[1].error.as_deref().unwrap().contains("daemon stopped"));
        assert_eq!(list[1].size_bytes, Some(5));
        let by_hand = &list[2];
        assert_eq!(by_hand.status, Status::Completed);
        assert_eq!(by_hand.size_bytes, Some(2));
        let path = tmp.path().join("zz-by-hand.mp4");
        let expected = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, path.to_str().unwrap().as_bytes());
        assert_eq!(by_hand.id, expected.to_string());
        assert_eq!(by_hand.start_time, by_hand.end_time.clone().unwrap());
        // Stable across calls, and active ids are left to the caller.
        assert_eq!(store.list(&HashSet::new()).unwrap()[2].id, by_hand.id);
        let skip: HashSet<String> = [A.to_string()].into();
        assert_eq!(store.list(&skip).unwrap().len(), 2);
    }

    #[test]
    fn a_uuid_prefix_is_the_id_of_a_file_without_metadata() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::new(tmp.path().to_path_buf());
        fs::write(tmp.path().join(format!("{}_x.mp4", A.to_uppercase())), b"").unwrap();
        assert_eq!(store.list(&HashSet::new()).unwrap()[0].id, A);
    }

    #[test]
    fn a_missing_directory_lists_nothing_and_forged_metadata_is_ignored() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::new(tmp.path().join("absent"));
        assert!(store.list(&HashSet::new()).unwrap().is_empty());
        let store = Store::new(tmp.path().to_path_buf());
        store.ensure().unwrap();
        let mut forged = record(A, "../../etc/passwd", Status::Failed);
        forged.error = Some("x".into());
        store.save(&Meta { record: forged, ffmpeg: None, owner: None }).unwrap();
        fs::write(tmp.path().join(META_DIR).join("not-a-uuid.json"), b"{}").unwrap();
        assert!(store.metas().unwrap().is_empty());
    }

    #[test]
    fn owners_are_told_apart_by_start_time() {
        let me = Owner::current().unwrap();
        assert!(me.is_alive());
        assert!(!Owner { started: me.started + 1, ..me }.is_alive());
        assert!(!Owner { pid: u32::MAX - 1, started: 0 }.is_alive());
    }

    #[test]
    fn a_recording_whose_daemon_lives_is_still_recording() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::new(tmp.path().to_path_buf());
        let name = format!("{A}_x.mp4");
        fs::write(tmp.path().join(&name), b"v").unwrap();
        store
            .save(&Meta {
                record: record(A, &name, Status::Recording),
                ffmpeg: None,
                owner: Owner::current(),
            })
            .unwrap();
        assert_eq!(store.list(&HashSet::new()).unwrap()[0].status, Status::Recording);
    }

    #[test]
    fn remove_takes_file_and_metadata() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::new(tmp.path().to_path_buf());
        let name = format!("{A}_x.mp4");
        fs::write(tmp.path().join(&name), b"v").unwrap();
        let r = record(A, &name, Status::Completed);
        store.save(&Meta { record: r.clone(), ffmpeg: None, owner: None }).unwrap();
        assert!(store.remove(&r).unwrap());
        assert!(!tmp.path().join(&name).exists());
        assert!(!store.remove(&r).unwrap());
    }
}
