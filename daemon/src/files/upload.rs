//! The uploads behind `POST /files/bulk-upload` (what the SDKs use, [`bulk_upload`]),
//! `POST /files/upload-v2` (generated client, pre-signed upload URLs) and the legacy
//! `POST /files/upload` (both [`single`]).
//!
//! Bodies are streamed: multipart parts are parsed one after the other with `multer`, and the
//! bytes go to a blocking writer thread through a small bounded queue of buffers, so memory stays flat
//! whatever the file size and a slow disk slows the client down (TCP back-pressure) instead of
//! filling memory.
//!
//! Deviation from the reference, on purpose: uploads are atomic. Each file is written to a
//! temporary file next to its final target and renamed into place only once all of its bytes
//! arrived and the close succeeded ([`AtomicFile`]). An interrupted or failed upload therefore
//! leaves the previous file (or nothing) under the requested name, never a truncated one. The
//! reasons the reference gave for writing in place are kept (see [`AtomicFile`]).

use std::ffi::{OsStr, OsString};
use std::fs::{self, File, Permissions};
use std::io::{self, IoSlice, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::body::{Body, BodyDataStream, Bytes};
use futures_util::{Stream, StreamExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::fspath;
use crate::text::os_error_text;

/// Parent directories made by bulk-upload and upload-v2 (before umask).
pub const DIR_MODE: u32 = 0o755;
/// Parent directories made by the legacy single upload (before umask), as the reference does.
pub const LEGACY_DIR_MODE: u32 = 0o750;
/// Bytes gathered before a buffer is handed to the writer thread. Measured on a 2-core VM:
/// 256 KiB buffers cost ~30% less CPU per GiB than 1 MiB ones (they stay in cache between the
/// thread that fills them and the one that writes them) and still make few, large writes.
const BATCH_BYTES: usize = 256 << 10;
/// Buffers queued per file: an upload holds at most `QUEUE_BATCHES + 2` buffers.
const QUEUE_BATCHES: usize = 4;
/// Longest accepted `files[i].path` part; Linux paths are at most 4 KiB.
const MAX_PATH_PART: usize = 64 * 1024;
/// Symbolic links followed when resolving a destination (Linux's own limit is 40).
const MAX_LINKS: usize = 40;

// ------------------------------------------------------------------------ single uploads

/// Why a single-file upload failed.
#[derive(Debug, PartialEq, Eq)]
pub enum SingleError {
    /// The request or the file was refused (no `file` field, a broken body, a file that could not
    /// be created or written): the reference's text.
    Refused(String),
    /// Every byte was written but closing the file failed (on FUSE mounts, where data is
    /// committed on close, the upload is lost): the reference's text.
    CloseFailed(String),
}

/// Stores one uploaded file at `dest` (`shown` in messages), with parents made with `dir_mode`:
/// the first multipart field `file` when `content_type` is `multipart/form-data`, the raw body
/// otherwise. The rest of the body is always read before this returns, so the answer never
/// races a client still sending.
pub async fn single(
    dest: PathBuf,
    shown: &Path,
    content_type: Option<&str>,
    body: Body,
    dir_mode: u32,
) -> Result<u64, SingleError> {
    let body = SharedBody::new(body);
    let is_multipart =
        content_type.is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("multipart/form-data"));
    let result = if is_multipart {
        match content_type.and_then(|ct| multer::parse_boundary(ct).ok()) {
            Some(boundary) => {
                single_multipart(multer::Multipart::new(body.clone(), boundary), dest, shown, dir_mode).await
            }
            None => Err(SingleError::Refused("invalid multipart form".into())),
        }
    } else {
        single_raw(body.clone(), dest, shown, dir_mode).await
    };
    body.drain().await;
    result
}

/// The raw body is the file.
async fn single_raw(
    mut body: SharedBody,
    dest: PathBuf,
    shown: &Path,
    dir_mode: u32,
) -> Result<u64, SingleError> {
    let mut sink = FileSink::start(dest, dir_mode);
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(bytes) => {
                if !sink.push(bytes).await {
                    break; // the writer failed; finish() says why
                }
            }
            Err(e) => {
                sink.abort().await;
                return Err(SingleError::Refused(format!("{}: write: {e}", shown_path(shown))));
            }
        }
    }
    sink.finish().await.map_err(|e| single_error(shown, e))
}

/// The first multipart field named `file` is the file; other fields are skipped.
async fn single_multipart(
    mut mp: multer::Multipart<'_>,
    dest: PathBuf,
    shown: &Path,
    dir_mode: u32,
) -> Result<u64, SingleError> {
    loop {
        let mut field = match mp.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => return Err(SingleError::Refused("multipart form has no file field 'file'".into())),
            Err(e) => return Err(SingleError::Refused(format!("reading part: {e}"))),
        };
        if field.name() != Some("file") {
            continue;
        }
        let mut sink = FileSink::start(dest, dir_mode);
        loop {
            match field.chunk().await {
                Ok(Some(bytes)) => {
                    if !sink.push(bytes).await {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    sink.abort().await;
                    return Err(SingleError::Refused(format!("{}: write: {e}", shown_path(shown))));
                }
            }
        }
        return sink.finish().await.map_err(|e| single_error(shown, e));
    }
}

fn single_error(shown: &Path, e: UploadError) -> SingleError {
    let text = e.describe(shown);
    match e {
        UploadError::File(FileError { stage: Stage::Close, .. }) => SingleError::CloseFailed(text),
        _ => SingleError::Refused(text),
    }
}

/// Reads a request body to its end and drops it: a refused upload is still read before the
/// answer, so clients (and proxies) do not see a reset.
pub async fn drain(body: Body) {
    SharedBody::new(body).drain().await;
}

/// A path in a message, byte for byte (invalid UTF-8 as one U+FFFD per byte).
fn shown_path(path: &Path) -> String {
    fspath::display(path.as_os_str().as_bytes())
}

// --------------------------------------------------------------------------- bulk service

/// One stored file of a bulk upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The destination as sent (invalid UTF-8 as one U+FFFD per byte).
    pub path: String,
    pub bytes: u64,
}

/// What a bulk upload did: files written in upload order, and per-file errors.
#[derive(Debug, Default)]
pub struct BulkOutcome {
    pub files: Vec<Stored>,
    pub errors: Vec<String>,
}

/// A bulk upload: the request body, a `multipart/form-data` stream with this `Content-Type`,
/// processed part by part (see [`bulk`]); `None` when it is not multipart. The rest of the body
/// is read before this returns, so the answer never races a client still sending.
pub async fn bulk_upload(content_type: Option<&str>, body: Body) -> Option<BulkOutcome> {
    let body = SharedBody::new(body);
    let boundary = content_type.and_then(|ct| multer::parse_boundary(ct).ok());
    let outcome = match boundary {
        Some(boundary) => Some(bulk(multer::Multipart::new(body.clone(), boundary)).await),
        None => None,
    };
    body.drain().await;
    outcome
}

/// Processes a bulk-upload multipart stream part by part. Per-file problems are recorded and
/// the next parts are still processed; a framing error ends the stream.
pub async fn bulk(mut mp: multer::Multipart<'_>) -> BulkOutcome {
    let mut out = BulkOutcome::default();
    let mut dests: std::collections::HashMap<String, OsString> = std::collections::HashMap::new();
    loop {
        let mut field = match mp.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => {
                // multer cannot resync after a framing error; going on would repeat it forever.
                out.errors.push(format!("reading part: {e}"));
                break;
            }
        };
        let name = field.name().unwrap_or("").to_owned();
        if name.ends_with(".path") {
            let idx = extract_index(&name);
            match read_path_part(&mut field).await {
                Ok(dest) if dest.is_empty() => out.errors.push(format!("path[{idx}]: empty path")),
                // A NUL byte or an over-long name is refused before the file system sees it.
                Ok(dest) => match fspath::check(dest.as_bytes()) {
                    Ok(()) => {
                        dests.insert(idx.to_owned(), dest);
                    }
                    Err(e) => out.errors.push(format!("path[{idx}]: {}", e.message)),
                },
                Err(e) => out.errors.push(format!("path[{idx}]: {e}")),
            }
        } else if name.ends_with(".file") {
            let idx = extract_index(&name);
            let Some(dest) = dests.get(idx) else {
                out.errors.push(format!("file[{idx}]: missing .path metadata"));
                continue;
            };
            let dest = PathBuf::from(dest);
            let shown = shown_path(&dest);
            let mut sink = FileSink::start(dest.clone(), DIR_MODE);
            let mut read_error = None;
            loop {
                match field.chunk().await {
                    Ok(Some(bytes)) => {
                        if !sink.push(bytes).await {
                            break; // writer failed: the rest of the part is skipped by next_field
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        read_error = Some(e);
                        break;
                    }
                }
            }
            if let Some(e) = read_error {
                sink.abort().await;
                out.errors.push(format!("{shown}: write: {e}"));
                continue;
            }
            match sink.finish().await {
                Ok(bytes) => out.files.push(Stored { path: shown, bytes }),
                Err(e) => out.errors.push(e.describe(&dest)),
            }
        }
        // Other parts are ignored (next_field skips their data).
    }
    out
}

/// The index key of a bulk part name, as the reference computes it: `files[3].path` → `3`.
/// Names of another shape are kept as they are (minus whatever prefix/suffix matched).
pub fn extract_index(name: &str) -> &str {
    let s = name.strip_prefix("files[").unwrap_or(name);
    let s = s.strip_suffix("].path").unwrap_or(s);
    s.strip_suffix("].file").unwrap_or(s)
}

/// Reads a `.path` part (bounded) and trims surrounding whitespace.
async fn read_path_part(field: &mut multer::Field<'_>) -> Result<OsString, String> {
    let mut data = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(|e| e.to_string())? {
        if data.len() + chunk.len() > MAX_PATH_PART {
            return Err(format!("path longer than {MAX_PATH_PART} bytes"));
        }
        data.extend_from_slice(&chunk);
    }
    Ok(trim_path(data))
}

fn trim_path(data: Vec<u8>) -> OsString {
    match String::from_utf8(data) {
        Ok(s) => OsString::from(s.trim()),
        Err(e) => OsString::from_vec(e.into_bytes().trim_ascii().to_vec()),
    }
}

// ------------------------------------------------------------------------ the request body

/// The request body shared between a multipart parser and the final drain: the parser owns
/// one handle, and whatever it did not consume is read (and dropped) through the other.
#[derive(Clone)]
struct SharedBody(Arc<Mutex<BodyDataStream>>);

impl SharedBody {
    fn new(body: Body) -> Self {
        SharedBody(Arc::new(Mutex::new(body.into_data_stream())))
    }

    /// Reads the rest of the body, so the answer never races a client still sending.
    async fn drain(mut self) {
        while let Some(Ok(_)) = self.next().await {}
    }
}

impl Stream for SharedBody {
    type Item = Result<Bytes, axum::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // Never contended: the parser and the drain take turns in one task.
        let mut inner = toolbox_envelope::sync::lock(&self.0);
        inner.poll_next_unpin(cx)
    }
}

// ------------------------------------------------------------------------ the file writer

/// Where writing a file failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Create,
    Write,
    Close,
}

/// An I/O error at one [`Stage`] of writing a file.
#[derive(Debug)]
pub struct FileError {
    pub stage: Stage,
    pub err: io::Error,
}

impl FileError {
    fn at(stage: Stage) -> impl FnOnce(io::Error) -> FileError {
        move |err| FileError { stage, err }
    }
}

/// Why one uploaded file was not stored.
#[derive(Debug)]
pub enum UploadError {
    /// Making the parent directories failed at `failing`.
    Mkdir {
        dir: PathBuf,
        failing: PathBuf,
        err: io::Error,
    },
    File(FileError),
    /// The upload was abandoned before its end (the sink was dropped).
    Aborted,
}

impl UploadError {
    /// The reference's per-file error text, including the Go `PathError` it wrapped:
    /// `<dest>: create: open <dest>: permission denied`.
    pub fn describe(&self, dest: &Path) -> String {
        let d = shown_path(dest);
        match self {
            UploadError::Mkdir { dir, failing, err } => {
                format!(
                    "{d}: mkdir {}: mkdir {}: {}",
                    shown_path(dir),
                    shown_path(failing),
                    os_error_text(err)
                )
            }
            UploadError::File(FileError { stage, err }) => {
                let text = os_error_text(err);
                match stage {
                    Stage::Create => format!("{d}: create: open {d}: {text}"),
                    Stage::Write => format!("{d}: write: write {d}: {text}"),
                    Stage::Close => format!("{d}: close: close {d}: {text}"),
                }
            }
            UploadError::Aborted => format!("{d}: write: upload abandoned"),
        }
    }
}

enum Msg {
    Data(Vec<u8>),
    Commit,
}

/// The async end of one file being uploaded: chunks pushed here are copied into large buffers
/// that a blocking thread writes into an [`AtomicFile`]. Dropping the sink without
/// [`FileSink::finish`] abandons the file (the temporary file is removed, the destination is
/// untouched).
///
/// The buffers are recycled (the writer sends each emptied one back), so at most
/// `QUEUE_BATCHES + 2` of them ever exist per upload. Copying the network chunks instead of
/// queueing them costs one memcpy but lets hyper and multer reuse their read buffers at once;
/// holding on to their chunks made every read land in fresh memory, and the page faults cost
/// more than the whole write (measured: ~250 000 faults and ~2x the CPU per GiB).
pub struct FileSink {
    tx: mpsc::Sender<Msg>,
    free: std::sync::mpsc::Receiver<Vec<u8>>,
    buf: Vec<u8>,
    task: JoinHandle<Result<u64, UploadError>>,
}

impl FileSink {
    /// Starts the writer for `dest` (parents made with `dir_mode`).
    pub fn start(dest: PathBuf, dir_mode: u32) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE_BATCHES);
        let (free_tx, free) = std::sync::mpsc::channel();
        let task = tokio::task::spawn_blocking(move || write_file(&dest, dir_mode, rx, free_tx));
        FileSink { tx, free, buf: Vec::new(), task }
    }

    /// Queues a chunk; false once the writer has stopped with an error (then stop pushing and
    /// call [`FileSink::finish`] for the error).
    pub async fn push(&mut self, bytes: Bytes) -> bool {
        let mut data = &bytes[..];
        while !data.is_empty() {
            if self.buf.capacity() == 0 {
                self.buf = self.free.try_recv().unwrap_or_else(|_| Vec::with_capacity(BATCH_BYTES));
            }
            let n = data.len().min(self.buf.capacity() - self.buf.len());
            self.buf.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.buf.len() == self.buf.capacity() && !self.flush().await {
                return false;
            }
        }
        !self.tx.is_closed()
    }

    async fn flush(&mut self) -> bool {
        let buf = std::mem::take(&mut self.buf);
        buf.is_empty() || self.tx.send(Msg::Data(buf)).await.is_ok()
    }

    /// Writes what is left, commits the file, and returns how many bytes it holds.
    pub async fn finish(mut self) -> Result<u64, UploadError> {
        if self.flush().await {
            let _ = self.tx.send(Msg::Commit).await;
        }
        drop(self.tx);
        self.task
            .await
            .unwrap_or_else(|e| Err(UploadError::File(FileError::at(Stage::Write)(io::Error::other(e)))))
    }

    /// Abandons the file and waits until its temporary file is gone.
    pub async fn abort(self) {
        drop(self.tx);
        let _ = self.task.await;
    }
}

/// The blocking half of [`FileSink`].
fn write_file(
    dest: &Path,
    dir_mode: u32,
    mut rx: mpsc::Receiver<Msg>,
    free: std::sync::mpsc::Sender<Vec<u8>>,
) -> Result<u64, UploadError> {
    let dir = PathBuf::from(OsString::from_vec(fspath::dir(dest.as_os_str().as_bytes())));
    mkdir_all(&dir, dir_mode).map_err(|(failing, err)| UploadError::Mkdir {
        dir: dir.clone(),
        failing,
        err,
    })?;
    let mut file =
        AtomicFile::create(dest).map_err(|e| UploadError::File(FileError::at(Stage::Create)(e)))?;
    let mut written = 0u64;
    loop {
        match rx.blocking_recv() {
            Some(Msg::Data(mut buf)) => {
                file.write_all(&buf).map_err(|e| UploadError::File(FileError::at(Stage::Write)(e)))?;
                written += buf.len() as u64;
                buf.clear();
                let _ = free.send(buf);
            }
            Some(Msg::Commit) => {
                file.commit().map_err(UploadError::File)?;
                return Ok(written);
            }
            // Dropping `file` removes its temporary file.
            None => return Err(UploadError::Aborted),
        }
    }
}

/// A file written under a temporary name and moved into place by [`AtomicFile::commit`].
/// Until then (and if it is dropped instead) the destination keeps its old content and the
/// temporary file is removed on drop.
///
/// Behaviour kept from the reference, which wrote in place:
/// * symbolic links are followed, dangling ones included, and the link itself is never
///   replaced: the link chain is resolved (at most [`MAX_LINKS`] links) and the temporary file
///   is made in the directory of the final target, then renamed onto that target;
/// * an existing file keeps its permission bits, and its owner and group where we may chown
///   (as root); a new file gets `0666 & ~umask`;
/// * where a temporary file or the rename cannot work the destination is written in place:
///   existing targets that are not regular files (devices, FIFOs, `/proc` entries), directories
///   where we may not create files but the target itself is writable, and filesystems (FUSE /
///   S3 mounts, bind-mounted single files, sticky directories) whose rename fails with EXDEV,
///   EPERM, ENOTSUP, EBUSY… — there the finished temporary file is copied over the target;
/// * close errors are reported (on FUSE mounts the data is committed on close).
///
/// Not fsynced: the promise is about failed and interrupted requests, not power loss, and an
/// fsync per upload would cost disk speed that the reference (and `dd`) do not pay.
pub struct AtomicFile {
    /// The requested path with its symlink chain resolved.
    target: PathBuf,
    file: Option<File>,
    /// The temporary file; `None` when writing the target in place.
    temp: Option<tempfile::TempPath>,
}

impl AtomicFile {
    /// Prepares to write `path`. Errors are those of creating the destination.
    pub fn create(path: &Path) -> io::Result<AtomicFile> {
        let target = resolve_links(path)?;
        let existing = match fs::symlink_metadata(&target) {
            Ok(m) => Some(m),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        if let Some(m) = &existing {
            if m.is_dir() {
                return Err(io::Error::from_raw_os_error(libc::EISDIR));
            }
            if !m.is_file() {
                // Renaming over a device or FIFO would replace the node, not feed it.
                return Self::in_place(target);
            }
        }
        match temp_beside(&target, existing.as_ref()) {
            Ok(temp) => {
                let (file, temp) = temp.into_parts();
                Ok(AtomicFile { target, file: Some(file), temp: Some(temp) })
            }
            // No temporary file here (unwritable directory with a writable target, /proc,
            // a filesystem refusing chmod…): write in place, as the reference always did.
            Err(_) => Self::in_place(target),
        }
    }

    fn in_place(target: PathBuf) -> io::Result<AtomicFile> {
        let file = open_in_place(&target)?;
        Ok(AtomicFile { target, file: Some(file), temp: None })
    }

    /// The final path written (the requested one with its symlinks resolved).
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Whether the data goes to a temporary file (false: written in place).
    pub fn is_atomic(&self) -> bool {
        self.temp.is_some()
    }

    /// Closes the file (reporting close errors) and moves it into place.
    pub fn commit(mut self) -> Result<(), FileError> {
        let file = self.file.take().expect("file open until commit");
        close_checked(file).map_err(FileError::at(Stage::Close))?;
        let Some(temp) = self.temp.take() else { return Ok(()) };
        match temp.persist(&self.target) {
            Ok(()) => Ok(()),
            // The rename is refused (EXDEV/EPERM/ENOTSUP/EBUSY on FUSE mounts, bind-mounted
            // files, sticky directories): copy the finished file over the target in place.
            // Dropping the returned temporary path removes it.
            Err(e) => copy_in_place(&e.path, &self.target),
        }
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.as_mut().expect("file open until commit").write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.file.as_mut().expect("file open until commit").write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Follows the symlink chain of `path` to the path that is finally opened (which may not exist).
fn resolve_links(path: &Path) -> io::Result<PathBuf> {
    let mut current = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        match fs::symlink_metadata(&current) {
            Ok(m) if m.file_type().is_symlink() => {
                let link = fs::read_link(&current)?;
                current = match current.parent() {
                    Some(dir) if link.is_relative() => dir.join(link),
                    _ => link,
                };
            }
            _ => return Ok(current),
        }
    }
    Err(io::Error::from_raw_os_error(libc::ELOOP))
}

/// A new temporary file in the target's directory, with the target's mode (and owner) if it
/// exists.
fn temp_beside(target: &Path, existing: Option<&fs::Metadata>) -> io::Result<tempfile::NamedTempFile> {
    let name = target.file_name().ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    // A hidden name that says what it is; the base name is cut so the result stays < 255 bytes.
    let mut prefix = OsString::from(".");
    prefix.push(OsStr::from_bytes(&name.as_bytes()[..name.len().min(100)]));
    prefix.push(".");
    let temp = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".upload")
        .permissions(Permissions::from_mode(0o666))
        .tempfile_in(dir)?;
    if let Some(m) = existing {
        let ours = temp.as_file().metadata()?;
        if (ours.uid(), ours.gid()) != (m.uid(), m.gid()) {
            // Only root may give files away; others keep their own ownership, as with a copy.
            let _ = std::os::unix::fs::fchown(temp.as_file(), Some(m.uid()), Some(m.gid()));
        }
        // After chown, which may clear set-id bits.
        temp.as_file().set_permissions(Permissions::from_mode(m.mode() & 0o7777))?;
    }
    Ok(temp)
}

fn open_in_place(target: &Path) -> io::Result<File> {
    fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o666).open(target)
}

fn copy_in_place(from: &Path, target: &Path) -> Result<(), FileError> {
    let mut src = File::open(from).map_err(FileError::at(Stage::Write))?;
    let mut dst = open_in_place(target).map_err(FileError::at(Stage::Create))?;
    io::copy(&mut src, &mut dst).map_err(FileError::at(Stage::Write))?;
    close_checked(dst).map_err(FileError::at(Stage::Close))
}

/// Closes `file` and returns the error `close(2)` reports, which `File`'s drop ignores.
fn close_checked(file: File) -> io::Result<()> {
    use std::os::fd::IntoRawFd;
    let fd = file.into_raw_fd();
    // SAFETY: `fd` was just released by `file` and is closed exactly once.
    if unsafe { libc::close(fd) } == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    // On Linux the descriptor is gone even after EINTR; nothing is lost.
    if err.kind() == io::ErrorKind::Interrupted { Ok(()) } else { Err(err) }
}

// ------------------------------------------------------------------------------- paths

/// `mkdir -p` with `mode` for every directory it makes. On failure returns the directory that
/// could not be made (or that exists but is not a directory) and the error.
pub fn mkdir_all(dir: &Path, mode: u32) -> Result<(), (PathBuf, io::Error)> {
    let mut missing = Vec::new();
    let mut current = Some(dir);
    while let Some(p) = current {
        match fs::metadata(p) {
            Ok(m) if m.is_dir() => break,
            Ok(_) => return Err((p.to_path_buf(), io::Error::from_raw_os_error(libc::ENOTDIR))),
            Err(_) => missing.push(p),
        }
        current = p.parent().filter(|q| !q.as_os_str().is_empty());
    }
    for p in missing.into_iter().rev() {
        if let Err(e) = fs::DirBuilder::new().mode(mode).create(p) {
            // Someone else made it meanwhile: fine.
            if !fs::metadata(p).is_ok_and(|m| m.is_dir()) {
                return Err((p.to_path_buf(), e));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn umask() -> u32 {
        // SAFETY: umask is process-wide; setting it back at once keeps it unchanged.
        unsafe {
            let m = libc::umask(0o022);
            libc::umask(m);
            m
        }
    }

    fn leftovers(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".upload"))
            .collect();
        names.sort();
        names
    }

    #[test]
    fn atomic_commit_replaces_and_abort_keeps_old() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f.txt");
        fs::write(&p, b"old").unwrap();
        let mut f = AtomicFile::create(&p).unwrap();
        assert!(f.is_atomic());
        f.write_all(b"new content").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"old", "nothing visible before commit");
        assert_eq!(leftovers(d.path()).len(), 1);
        f.commit().unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"new content");
        assert!(leftovers(d.path()).is_empty());

        let mut f = AtomicFile::create(&p).unwrap();
        f.write_all(b"half").unwrap();
        drop(f); // abort
        assert_eq!(fs::read(&p).unwrap(), b"new content");
        assert!(leftovers(d.path()).is_empty());
    }

    #[test]
    fn abort_of_new_file_leaves_nothing() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("new.bin");
        let mut f = AtomicFile::create(&p).unwrap();
        f.write_all(&[1; 1000]).unwrap();
        drop(f);
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 0);
    }

    #[test]
    fn new_file_mode_follows_umask_and_existing_mode_is_kept() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("n");
        let mut f = AtomicFile::create(&p).unwrap();
        f.write_all(b"x").unwrap();
        f.commit().unwrap();
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o7777, 0o666 & !umask());

        fs::set_permissions(&p, Permissions::from_mode(0o741)).unwrap();
        let f = AtomicFile::create(&p).unwrap();
        f.commit().unwrap();
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o7777, 0o741);
        assert_eq!(fs::read(&p).unwrap(), b"", "empty upload truncates");
    }

    #[test]
    fn owner_is_kept_when_we_may_chown() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("owned");
        fs::write(&p, b"old").unwrap();
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        let want = if root {
            std::os::unix::fs::chown(&p, Some(4321), Some(4322)).unwrap();
            (4321, 4322)
        } else {
            let m = fs::metadata(&p).unwrap();
            (m.uid(), m.gid())
        };
        let mut f = AtomicFile::create(&p).unwrap();
        f.write_all(b"new").unwrap();
        f.commit().unwrap();
        let m = fs::metadata(&p).unwrap();
        assert_eq!((m.uid(), m.gid()), want);
        assert_eq!(fs::read(&p).unwrap(), b"new");
    }

    #[test]
    fn symlinks_are_written_through_and_kept() {
        let d = tempfile::tempdir().unwrap();
        let sub = d.path().join("sub");
        fs::create_dir(&sub).unwrap();
        fs::write(sub.join("real"), b"old").unwrap();
        // relative link into another directory, and a chain of two links
        symlink("sub/real", d.path().join("link")).unwrap();
        symlink("link", d.path().join("link2")).unwrap();
        let mut f = AtomicFile::create(&d.path().join("link2")).unwrap();
        assert_eq!(f.target(), sub.join("real"));
        f.write_all(b"through").unwrap();
        f.commit().unwrap();
        assert!(fs::symlink_metadata(d.path().join("link")).unwrap().file_type().is_symlink());
        assert!(fs::symlink_metadata(d.path().join("link2")).unwrap().file_type().is_symlink());
        assert_eq!(fs::read(sub.join("real")).unwrap(), b"through");

        // dangling link: the target is created, the link stays
        symlink(sub.join("later"), d.path().join("dangling")).unwrap();
        let mut f = AtomicFile::create(&d.path().join("dangling")).unwrap();
        f.write_all(b"born").unwrap();
        f.commit().unwrap();
        assert!(fs::symlink_metadata(d.path().join("dangling")).unwrap().file_type().is_symlink());
        assert_eq!(fs::read(sub.join("later")).unwrap(), b"born");
        assert!(leftovers(d.path()).is_empty() && leftovers(&sub).is_empty());
    }

    #[test]
    fn link_loops_and_directories_fail() {
        let d = tempfile::tempdir().unwrap();
        symlink("b", d.path().join("a")).unwrap();
        symlink("a", d.path().join("b")).unwrap();
        let e = AtomicFile::create(&d.path().join("a")).err().unwrap();
        assert_eq!(e.raw_os_error(), Some(libc::ELOOP));
        let e = AtomicFile::create(d.path()).err().unwrap();
        assert_eq!(e.raw_os_error(), Some(libc::EISDIR));
    }

    #[test]
    fn non_regular_targets_are_written_in_place() {
        let f = AtomicFile::create(Path::new("/dev/null")).unwrap();
        assert!(!f.is_atomic());
        f.commit().unwrap();
        use std::os::unix::fs::FileTypeExt;
        assert!(fs::metadata("/dev/null").unwrap().file_type().is_char_device());
    }

    #[test]
    fn failed_commit_cleans_the_temp_file() {
        // The destination's directory vanishes before the rename: commit fails, no leftovers.
        let d = tempfile::tempdir().unwrap();
        let sub = d.path().join("sub");
        fs::create_dir(&sub).unwrap();
        let p = sub.join("f");
        let mut f = AtomicFile::create(&p).unwrap();
        f.write_all(b"data").unwrap();
        // Make the target a non-empty directory so both the rename and the fallback fail.
        fs::create_dir(&p).unwrap();
        fs::write(p.join("x"), b"").unwrap();
        let e = f.commit().err().unwrap();
        assert_eq!(e.stage, Stage::Create);
        assert!(leftovers(&sub).is_empty());
    }

    #[test]
    fn index_extraction() {
        assert_eq!(extract_index("files[3].path"), "3");
        assert_eq!(extract_index("files[12].file"), "12");
        assert_eq!(extract_index("files[a b].file"), "a b");
        assert_eq!(extract_index("other.path"), "other.path");
        assert_eq!(extract_index("files[x.path"), "x.path");
    }

    #[test]
    fn mkdir_all_reports_the_failing_directory() {
        let d = tempfile::tempdir().unwrap();
        let deep = d.path().join("x/y/z");
        mkdir_all(&deep, 0o755).unwrap();
        assert_eq!(fs::metadata(d.path().join("x/y")).unwrap().mode() & 0o777, 0o755 & !umask());
        fs::write(d.path().join("file"), b"").unwrap();
        let (failing, err) = mkdir_all(&d.path().join("file/sub/dir"), 0o755).unwrap_err();
        assert_eq!(failing, d.path().join("file"));
        assert_eq!(err.raw_os_error(), Some(libc::ENOTDIR));
    }

    // ----------------------------------------------------------------- bulk parsing

    fn body(parts: &[(&str, &[u8])], close: bool) -> Vec<u8> {
        let mut b = Vec::new();
        for (name, data) in parts {
            b.extend_from_slice(
                format!("--BND\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"f\"\r\n\r\n")
                    .as_bytes(),
            );
            b.extend_from_slice(data);
            b.extend_from_slice(b"\r\n");
        }
        if close {
            b.extend_from_slice(b"--BND--\r\n");
        }
        b
    }

    fn run_bulk(raw: Vec<u8>) -> BulkOutcome {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        rt.block_on(async move {
            // Small chunks, to exercise parts spread over many reads.
            let chunks: Vec<Result<Bytes, io::Error>> =
                raw.chunks(7).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
            bulk(multer::Multipart::new(futures_util::stream::iter(chunks), "BND")).await
        })
    }

    #[test]
    fn bulk_writes_files_in_order_and_reports_per_file_errors() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("new/dir/a.txt");
        let b = d.path().join("b.bin");
        let blocker = d.path().join("plain");
        fs::write(&blocker, b"").unwrap();
        let bad = blocker.join("c.txt");
        let a_s = a.to_str().unwrap();
        let b_s = b.to_str().unwrap();
        let bad_s = bad.to_str().unwrap();
        let dir_s = d.path().to_str().unwrap();
        let e = d.path().join("empty");
        fs::write(&e, b"not empty yet").unwrap();
        let e_s = e.to_str().unwrap();
        let big = vec![7u8; 3 * BATCH_BYTES + 5];
        let raw = body(
            &[
                ("files[0].path", format!("  {a_s}\n").as_bytes()),
                ("files[0].file", b"alpha"),
                ("files[1].file", b"orphan"),
                ("files[2].path", b"   "),
                ("files[3].path", bad_s.as_bytes()),
                ("files[3].file", b"x"),
                ("files[4].path", dir_s.as_bytes()),
                ("files[4].file", b"x"),
                ("ignored", b"whatever"),
                ("files[5].path", b_s.as_bytes()),
                ("files[5].file", &big),
                ("files[6].path", e_s.as_bytes()),
                ("files[6].file", b""),
            ],
            true,
        );
        let out = run_bulk(raw);
        assert_eq!(
            out.errors,
            vec![
                "file[1]: missing .path metadata".to_string(),
                "path[2]: empty path".to_string(),
                format!("{bad_s}: mkdir {}: mkdir {}: not a directory", blocker.display(), blocker.display()),
                format!("{dir_s}: create: open {dir_s}: is a directory"),
            ]
        );
        assert_eq!(
            out.files,
            vec![
                Stored { path: a_s.into(), bytes: 5 },
                Stored { path: b_s.into(), bytes: big.len() as u64 },
                Stored { path: e_s.into(), bytes: 0 },
            ]
        );
        assert_eq!(fs::read(&a).unwrap(), b"alpha");
        assert_eq!(fs::read(&b).unwrap(), big);
        assert_eq!(fs::read(&e).unwrap(), b"");
        assert_eq!(fs::metadata(d.path().join("new")).unwrap().mode() & 0o777, 0o755 & !umask());
    }

    #[test]
    fn invalid_paths_are_refused_before_the_file_system() {
        let d = tempfile::tempdir().unwrap();
        let long = format!("{}/{}", d.path().display(), "n".repeat(256));
        let raw = body(
            &[
                ("files[0].path", b"/tmp/a\0b"),
                ("files[0].file", b"x"),
                ("files[1].path", long.as_bytes()),
                ("files[1].file", b"x"),
            ],
            true,
        );
        let out = run_bulk(raw);
        assert!(out.files.is_empty());
        assert_eq!(out.errors.len(), 4, "{:?}", out.errors);
        assert!(out.errors[0].starts_with("path[0]: invalid file path: a path cannot contain a NUL byte"));
        assert_eq!(out.errors[1], "file[0]: missing .path metadata");
        assert!(out.errors[2].starts_with("path[1]: invalid file path: a file name is longer than 255"));
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 0);
    }

    #[test]
    fn truncated_body_stops_with_reading_part_and_keeps_the_old_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("keep.txt");
        fs::write(&p, b"original").unwrap();
        let p_s = p.to_str().unwrap();
        let mut raw = body(&[("files[0].path", p_s.as_bytes()), ("files[0].file", &[9u8; 100_000])], false);
        raw.truncate(raw.len() - 50_000);
        let out = run_bulk(raw);
        assert!(out.files.is_empty());
        assert_eq!(out.errors.len(), 2, "{:?}", out.errors);
        assert!(out.errors[0].starts_with(&format!("{p_s}: write: ")), "{:?}", out.errors);
        assert!(out.errors[1].starts_with("reading part: "), "{:?}", out.errors);
        assert_eq!(fs::read(&p).unwrap(), b"original");
        assert!(leftovers(d.path()).is_empty());
    }

    #[test]
    fn missing_closing_boundary_after_complete_parts() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("ok.txt");
        let mut raw =
            body(&[("files[0].path", p.to_str().unwrap().as_bytes()), ("files[0].file", b"fine")], false);
        // The part's closing delimiter arrived, the end of the stream did not.
        raw.extend_from_slice(b"--BND");
        let out = run_bulk(raw);
        assert_eq!(out.files.len(), 1);
        assert_eq!(out.errors.len(), 1);
        assert!(out.errors[0].starts_with("reading part: "));
        assert_eq!(fs::read(&p).unwrap(), b"fine");
    }

    #[test]
    fn garbage_is_a_framing_error() {
        let out = run_bulk(b"this is not multipart at all".to_vec());
        assert!(out.files.is_empty());
        assert_eq!(out.errors.len(), 1);
        assert!(out.errors[0].starts_with("reading part: "));
    }

    #[test]
    fn error_texts() {
        let dest = Path::new("/d/f");
        let e = UploadError::File(FileError {
            stage: Stage::Close,
            err: io::Error::from_raw_os_error(libc::EIO),
        });
        assert_eq!(e.describe(dest), "/d/f: close: close /d/f: input/output error");
        let e = UploadError::File(FileError {
            stage: Stage::Create,
            err: io::Error::from_raw_os_error(libc::EACCES),
        });
        assert_eq!(e.describe(dest), "/d/f: create: open /d/f: permission denied");
        let e = UploadError::File(FileError {
            stage: Stage::Write,
            err: io::Error::from_raw_os_error(libc::ENOSPC),
        });
        assert_eq!(e.describe(dest), "/d/f: write: write /d/f: no space left on device");
        assert_eq!(trim_path(b" \t/x y \r\n".to_vec()), OsString::from("/x y"));
        assert_eq!(trim_path(b" /\xff \n".to_vec()), OsString::from_vec(b"/\xff".to_vec()));
    }
}
