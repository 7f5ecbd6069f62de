//! The `sftp` subsystem over the whole filesystem, with the daemon's permissions; relative
//! paths are against the daemon's working directory.
//!
//! Reads and writes go to the file one request at a time (the client pipelines them), so no
//! transfer is ever held in memory. A file opened for writing with truncation (what `put`, `scp`
//! and IDE uploads send) is written to a temporary file beside the target, which replaces the
//! target only when the client closes the handle: an upload cut off half-way leaves the old
//! file, or nothing, instead of a truncated target. Opens without truncation (resume, append)
//! write in place, as they must.

use std::collections::HashMap;
use std::fs::{self, File, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use russh::Channel;
use russh::server::{Handle, Msg};
use russh_sftp::protocol::{
    Attrs, Data, File as Entry, FileAttributes, Handle as SftpHandle, Name, OpenFlags, Packet, Status,
    StatusCode, Version,
};
use russh_sftp::server::StatusReply;
use tokio::io::{AsyncRead, AsyncWrite};

use super::ChannelSlot;

/// Largest read answered at once (OpenSSH asks for 32-256 KiB).
const MAX_READ: u32 = 256 * 1024;
/// Directory entries per `readdir` reply.
const DIR_BATCH: usize = 128;
/// Open handles per SFTP session.
const MAX_HANDLES: usize = 1024;

/// Runs SFTP on the channel until the client ends it, then closes the channel (the exit status
/// is sent by the connection handler when the client's end of file arrives).
pub async fn serve(channel: Channel<Msg>, handle: Handle, slot: ChannelSlot) {
    let id = channel.id();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let stream = Ending { inner: Some(channel.into_stream()), done: Some(done_tx) };
    russh_sftp::server::run(stream, Sftp::default()).await;
    // russh-sftp serves on a task of its own and drops the stream when the client is done; the
    // stream comes back here so that the end of file is queued before dropping it closes the
    // channel.
    let stream = done_rx.await.ok();
    let _ = handle.eof(id).await;
    let _ = handle.close(id).await;
    drop(stream);
    drop(slot);
}

/// A stream that, when dropped, hands its inner stream back through `done`.
struct Ending<S> {
    inner: Option<S>,
    done: Option<tokio::sync::oneshot::Sender<S>>,
}

impl<S> Ending<S> {
    fn inner(&mut self) -> &mut S {
        self.inner.as_mut().expect("present until dropped")
    }
}

impl<S> Drop for Ending<S> {
    fn drop(&mut self) {
        if let (Some(inner), Some(done)) = (self.inner.take(), self.done.take()) {
            let _ = done.send(inner);
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Ending<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(self.inner()).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Ending<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        std::pin::Pin::new(self.inner()).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(self.inner()).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(self.inner()).poll_shutdown(cx)
    }
}

/// An open file: written in place, or through a temporary file that replaces `target` on close.
struct OpenFile {
    file: Arc<File>,
    upload: Option<Upload>,
}

struct Upload {
    temp: tempfile::TempPath,
    target: PathBuf,
}

enum Open {
    File(OpenFile),
    Dir(Arc<Mutex<Option<fs::ReadDir>>>),
}

#[derive(Default)]
pub struct Sftp {
    handles: HashMap<String, Open>,
    next: u64,
}

/// An I/O error as an SFTP status with the error's text.
fn status(e: io::Error) -> StatusReply {
    let code = match e.kind() {
        io::ErrorKind::NotFound => StatusCode::NoSuchFile,
        io::ErrorKind::PermissionDenied => StatusCode::PermissionDenied,
        _ => StatusCode::Failure,
    };
    code.with_message(e.to_string())
}

fn ok(id: u32) -> Status {
    Status { id, status_code: StatusCode::Ok, error_message: "Ok".into(), language_tag: "en-US".into() }
}

/// Runs blocking filesystem work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> Result<T, StatusReply> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(status),
        Err(_) => Err(StatusCode::Failure.with_message("internal error")),
    }
}

/// The attributes of `meta`, with the file type kept in the permission bits (symbolic links
/// included, which russh-sftp's own conversion reports as regular files).
pub fn attributes(meta: &fs::Metadata) -> FileAttributes {
    FileAttributes {
        size: Some(meta.size()),
        uid: Some(meta.uid()),
        gid: Some(meta.gid()),
        permissions: Some(meta.mode()),
        atime: Some(meta.atime().clamp(0, u32::MAX as i64) as u32),
        mtime: Some(meta.mtime().clamp(0, u32::MAX as i64) as u32),
        ..Default::default()
    }
}

/// Applies the settable attributes: size, owner, mode, times.
fn set_attributes(path: &Path, file: Option<&File>, attrs: &FileAttributes) -> io::Result<()> {
    if let Some(size) = attrs.size {
        match file {
            Some(f) => f.set_len(size)?,
            None => fs::OpenOptions::new().write(true).open(path)?.set_len(size)?,
        }
    }
    if attrs.uid.is_some() || attrs.gid.is_some() {
        std::os::unix::fs::chown(path, attrs.uid, attrs.gid)?;
    }
    if let Some(mode) = attrs.permissions {
        let perms = Permissions::from_mode(mode & 0o7777);
        match file {
            Some(f) => f.set_permissions(perms)?,
            None => fs::set_permissions(path, perms)?,
        }
    }
    if let (Some(atime), Some(mtime)) = (attrs.atime, attrs.mtime) {
        let times = fs::FileTimes::new()
            .set_accessed(std::time::UNIX_EPOCH + std::time::Duration::from_secs(atime.into()))
            .set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime.into()));
        match file {
            Some(f) => f.set_times(times)?,
            None => File::options().write(true).open(path).or_else(|_| File::open(path))?.set_times(times)?,
        }
    }
    Ok(())
}

/// `path` made absolute against the working directory, `.` and `..` resolved lexically.
pub fn normalize(path: &str) -> PathBuf {
    let base = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let joined = if path.is_empty() { base } else { base.join(path) };
    let mut out = PathBuf::from("/");
    for c in joined.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            _ => {}
        }
    }
    out
}

/// Whether an open with these flags is a whole-file upload that can go through a temporary file.
fn is_replacing_upload(flags: OpenFlags, existing: Option<&fs::Metadata>) -> bool {
    let writes = flags.contains(OpenFlags::WRITE);
    let replaces =
        flags.contains(OpenFlags::TRUNCATE) || (flags.contains(OpenFlags::CREATE) && existing.is_none());
    let plain_target = existing.is_none_or(|m| m.file_type().is_file());
    writes
        && replaces
        && !flags.contains(OpenFlags::APPEND)
        && !flags.contains(OpenFlags::EXCLUDE)
        && plain_target
}

/// A temporary file beside `target`, with the target's mode and owner when it exists, else
/// `mode` (less the umask).
fn temp_beside(
    target: &Path,
    existing: Option<&fs::Metadata>,
    mode: u32,
) -> io::Result<(File, tempfile::TempPath)> {
    let name = target.file_name().ok_or_else(|| io::Error::from_raw_os_error(libc::EISDIR))?;
    let dir = target.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut prefix = std::ffi::OsString::from(".");
    prefix.push(name);
    let temp = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".upload")
        .permissions(Permissions::from_mode(mode))
        .tempfile_in(dir)?;
    if let Some(m) = existing {
        let _ = std::os::unix::fs::fchown(temp.as_file(), Some(m.uid()), Some(m.gid()));
        temp.as_file().set_permissions(Permissions::from_mode(m.mode() & 0o7777))?;
    }
    Ok(temp.into_parts())
}

fn open_file(path: PathBuf, flags: OpenFlags, attrs: FileAttributes) -> io::Result<OpenFile> {
    let mode = attrs.permissions.map_or(0o666, |m| m & 0o7777);
    let existing = fs::metadata(&path).ok();
    let linked = fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink());
    if !linked && is_replacing_upload(flags, existing.as_ref()) {
        // Fall back to writing in place where no temporary file can be made (a directory we
        // may not write to, holding a file we may).
        if let Ok((file, temp)) = temp_beside(&path, existing.as_ref(), mode) {
            return Ok(OpenFile { file: Arc::new(file), upload: Some(Upload { temp, target: path }) });
        }
    }
    let file = fs::OpenOptions::new()
        .read(flags.contains(OpenFlags::READ))
        .write(flags.contains(OpenFlags::WRITE))
        .append(flags.contains(OpenFlags::APPEND))
        .create(flags.contains(OpenFlags::CREATE) && !flags.contains(OpenFlags::EXCLUDE))
        .create_new(flags.contains(OpenFlags::CREATE) && flags.contains(OpenFlags::EXCLUDE))
        .truncate(flags.contains(OpenFlags::TRUNCATE))
        .mode(mode)
        .open(&path)?;
    Ok(OpenFile { file: Arc::new(file), upload: None })
}

impl Sftp {
    fn add(&mut self, open: Open) -> Result<String, StatusReply> {
        if self.handles.len() >= MAX_HANDLES {
            return Err(StatusCode::Failure.with_message("too many open handles"));
        }
        self.next += 1;
        let h = self.next.to_string();
        self.handles.insert(h.clone(), open);
        Ok(h)
    }

    fn file(&self, handle: &str) -> Result<Arc<File>, StatusReply> {
        match self.handles.get(handle) {
            Some(Open::File(f)) => Ok(f.file.clone()),
            _ => Err(StatusCode::Failure.with_message("invalid handle")),
        }
    }
}

impl russh_sftp::server::Handler for Sftp {
    type Error = StatusReply;

    fn unimplemented(&self) -> Self::Error {
        StatusCode::OpUnsupported.into()
    }

    async fn init(
        &mut self,
        _version: u32,
        _extensions: HashMap<String, String>,
    ) -> Result<Version, Self::Error> {
        let mut v = Version::new();
        // Lets `rename` replace an existing target, as OpenSSH clients expect where offered.
        v.extensions.insert("posix-rename@openssh.com".into(), "1".into());
        Ok(v)
    }

    async fn open(
        &mut self,
        id: u32,
        filename: String,
        pflags: OpenFlags,
        attrs: FileAttributes,
    ) -> Result<SftpHandle, Self::Error> {
        let path = normalize(&filename);
        let file = blocking(move || open_file(path, pflags, attrs)).await?;
        Ok(SftpHandle { id, handle: self.add(Open::File(file))? })
    }

    async fn close(&mut self, id: u32, handle: String) -> Result<Status, Self::Error> {
        match self.handles.remove(&handle) {
            Some(Open::File(OpenFile { file, upload: Some(up) })) => {
                blocking(move || {
                    drop(file);
                    up.temp.persist(&up.target).map_err(|e| e.error)
                })
                .await?;
                Ok(ok(id))
            }
            Some(_) => Ok(ok(id)),
            None => Err(StatusCode::Failure.with_message("invalid handle")),
        }
    }

    async fn read(&mut self, id: u32, handle: String, offset: u64, len: u32) -> Result<Data, Self::Error> {
        let file = self.file(&handle)?;
        let data = blocking(move || {
            let mut buf = vec![0u8; len.min(MAX_READ) as usize];
            let n = loop {
                match file.read_at(&mut buf, offset) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    r => break r?,
                }
            };
            buf.truncate(n);
            Ok(buf)
        })
        .await?;
        if data.is_empty() && len > 0 {
            return Err(StatusCode::Eof.into());
        }
        Ok(Data { id, data })
    }

    async fn write(
        &mut self,
        id: u32,
        handle: String,
        offset: u64,
        data: Vec<u8>,
    ) -> Result<Status, Self::Error> {
        let file = self.file(&handle)?;
        blocking(move || file.write_all_at(&data, offset)).await?;
        Ok(ok(id))
    }

    async fn lstat(&mut self, id: u32, path: String) -> Result<Attrs, Self::Error> {
        let path = normalize(&path);
        let meta = blocking(move || fs::symlink_metadata(path)).await?;
        Ok(Attrs { id, attrs: attributes(&meta) })
    }

    async fn stat(&mut self, id: u32, path: String) -> Result<Attrs, Self::Error> {
        let path = normalize(&path);
        let meta = blocking(move || fs::metadata(path)).await?;
        Ok(Attrs { id, attrs: attributes(&meta) })
    }

    async fn fstat(&mut self, id: u32, handle: String) -> Result<Attrs, Self::Error> {
        let file = self.file(&handle)?;
        let meta = blocking(move || file.metadata()).await?;
        Ok(Attrs { id, attrs: attributes(&meta) })
    }

    async fn setstat(&mut self, id: u32, path: String, attrs: FileAttributes) -> Result<Status, Self::Error> {
        let path = normalize(&path);
        blocking(move || set_attributes(&path, None, &attrs)).await?;
        Ok(ok(id))
    }

    async fn fsetstat(
        &mut self,
        id: u32,
        handle: String,
        attrs: FileAttributes,
    ) -> Result<Status, Self::Error> {
        let (file, path) = match self.handles.get(&handle) {
            Some(Open::File(f)) => (f.file.clone(), f.upload.as_ref().map(|u| u.temp.to_path_buf())),
            _ => return Err(StatusCode::Failure.with_message("invalid handle")),
        };
        blocking(move || {
            // Owner changes need a path; an in-place handle's path is not kept, so use the fd.
            if attrs.uid.is_some() || attrs.gid.is_some() {
                std::os::unix::fs::fchown(&*file, attrs.uid, attrs.gid)?;
            }
            let rest = FileAttributes { uid: None, gid: None, ..attrs };
            set_attributes(path.as_deref().unwrap_or(Path::new("")), Some(&file), &rest)
        })
        .await?;
        Ok(ok(id))
    }

    async fn opendir(&mut self, id: u32, path: String) -> Result<SftpHandle, Self::Error> {
        let path = normalize(&path);
        let dir = blocking(move || fs::read_dir(path)).await?;
        Ok(SftpHandle { id, handle: self.add(Open::Dir(Arc::new(Mutex::new(Some(dir)))))? })
    }

    async fn readdir(&mut self, id: u32, handle: String) -> Result<Name, Self::Error> {
        let Some(Open::Dir(dir)) = self.handles.get(&handle) else {
            return Err(StatusCode::Failure.with_message("invalid handle"));
        };
        let dir = dir.clone();
        let files = blocking(move || {
            let mut guard = dir.lock().unwrap_or_else(|e| e.into_inner());
            let mut files = Vec::new();
            if let Some(iter) = guard.as_mut() {
                for entry in iter.by_ref() {
                    let Ok(entry) = entry else { continue };
                    let Ok(meta) = entry.metadata() else { continue };
                    files.push(Entry::new(entry.file_name().to_string_lossy(), attributes(&meta)));
                    if files.len() >= DIR_BATCH {
                        break;
                    }
                }
                if files.is_empty() {
                    *guard = None;
                }
            }
            Ok(files)
        })
        .await?;
        if files.is_empty() {
            return Err(StatusCode::Eof.into());
        }
        Ok(Name { id, files })
    }

    async fn remove(&mut self, id: u32, filename: String) -> Result<Status, Self::Error> {
        let path = normalize(&filename);
        blocking(move || fs::remove_file(path)).await?;
        Ok(ok(id))
    }

    async fn mkdir(&mut self, id: u32, path: String, attrs: FileAttributes) -> Result<Status, Self::Error> {
        let path = normalize(&path);
        let mode = attrs.permissions.map_or(0o777, |m| m & 0o7777);
        blocking(move || fs::DirBuilder::new().mode(mode).create(path)).await?;
        Ok(ok(id))
    }

    async fn rmdir(&mut self, id: u32, path: String) -> Result<Status, Self::Error> {
        let path = normalize(&path);
        blocking(move || fs::remove_dir(path)).await?;
        Ok(ok(id))
    }

    async fn realpath(&mut self, id: u32, path: String) -> Result<Name, Self::Error> {
        let lexical = normalize(&path);
        let real = blocking(move || Ok(fs::canonicalize(&lexical).unwrap_or(lexical))).await?;
        Ok(Name { id, files: vec![Entry::dummy(real.to_string_lossy())] })
    }

    async fn rename(&mut self, id: u32, oldpath: String, newpath: String) -> Result<Status, Self::Error> {
        let (from, to) = (normalize(&oldpath), normalize(&newpath));
        blocking(move || {
            // SFTP v3: a rename does not replace an existing target (posix-rename does).
            if fs::symlink_metadata(&to).is_ok() {
                return Err(io::Error::from(io::ErrorKind::AlreadyExists));
            }
            fs::rename(from, to)
        })
        .await?;
        Ok(ok(id))
    }

    async fn readlink(&mut self, id: u32, path: String) -> Result<Name, Self::Error> {
        let path = normalize(&path);
        let target = blocking(move || fs::read_link(path)).await?;
        Ok(Name { id, files: vec![Entry::dummy(target.to_string_lossy())] })
    }

    async fn symlink(
        &mut self,
        id: u32,
        linkpath: String,
        targetpath: String,
    ) -> Result<Status, Self::Error> {
        // OpenSSH sends the link's target first and the link second (the reverse of the draft,
        // and every client follows OpenSSH); russh-sftp names the fields after the draft.
        let (target, link) = (linkpath, targetpath);
        let link = normalize(&link);
        blocking(move || std::os::unix::fs::symlink(target, link)).await?;
        Ok(ok(id))
    }

    async fn extended(&mut self, id: u32, request: String, data: Vec<u8>) -> Result<Packet, Self::Error> {
        match request.as_str() {
            "posix-rename@openssh.com" => {
                let mut rest = data.as_slice();
                let from = take_string(&mut rest).ok_or(StatusCode::BadMessage)?;
                let to = take_string(&mut rest).ok_or(StatusCode::BadMessage)?;
                let (from, to) = (normalize(&from), normalize(&to));
                blocking(move || fs::rename(from, to)).await?;
                Ok(Packet::Status(ok(id)))
            }
            _ => Err(StatusCode::OpUnsupported.into()),
        }
    }
}

/// One SSH `string` (u32 length, bytes) from the front of `buf`.
fn take_string(buf: &mut &[u8]) -> Option<String> {
    let len = u32::from_be_bytes(buf.get(..4)?.try_into().ok()?) as usize;
    let s = buf.get(4..4 + len)?;
    let out = String::from_utf8_lossy(s).into_owned();
    *buf = &buf[4 + len..];
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploads_with_truncation_go_through_a_temporary_file() {
        let w = OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE;
        assert!(is_replacing_upload(w, None));
        assert!(is_replacing_upload(OpenFlags::WRITE | OpenFlags::CREATE, None));
        // Resume and append need the existing bytes.
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        fs::write(&f, b"x").unwrap();
        let m = fs::metadata(&f).unwrap();
        assert!(!is_replacing_upload(OpenFlags::WRITE | OpenFlags::CREATE, Some(&m)));
        assert!(!is_replacing_upload(w | OpenFlags::APPEND, Some(&m)));
        assert!(!is_replacing_upload(w | OpenFlags::EXCLUDE, None));
        assert!(!is_replacing_upload(OpenFlags::READ, None));
    }

    #[test]
    fn an_unclosed_upload_leaves_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("t.txt");
        fs::write(&target, b"old").unwrap();
        fs::set_permissions(&target, Permissions::from_mode(0o640)).unwrap();
        let flags = OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE;
        let open = open_file(target.clone(), flags, FileAttributes::default()).unwrap();
        open.file.write_all_at(b"new, half", 0).unwrap();
        let temp = open.upload.as_ref().unwrap().temp.to_path_buf();
        assert_eq!(fs::metadata(&temp).unwrap().mode() & 0o777, 0o640);
        drop(open);
        assert_eq!(fs::read(&target).unwrap(), b"old");
        assert!(!temp.exists());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_closed_upload_replaces_the_target() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("t.txt");
        let flags = OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE;
        let open = open_file(target.clone(), flags, FileAttributes::default()).unwrap();
        open.file.write_all_at(b"new", 0).unwrap();
        let up = open.upload.unwrap();
        drop(open.file);
        up.temp.persist(&up.target).unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"new");
    }

    #[test]
    fn paths_are_made_absolute_lexically() {
        assert_eq!(normalize("/a/b/../c/./d"), PathBuf::from("/a/c/d"));
        assert_eq!(normalize("/.."), PathBuf::from("/"));
        assert!(normalize("x").is_absolute());
    }

    #[test]
    fn ssh_strings() {
        let mut b: &[u8] = &[0, 0, 0, 2, b'a', b'b', 0, 0, 0, 0, 0, 0, 0, 9];
        assert_eq!(take_string(&mut b).as_deref(), Some("ab"));
        assert_eq!(take_string(&mut b).as_deref(), Some(""));
        assert_eq!(take_string(&mut b), None);
    }
}
