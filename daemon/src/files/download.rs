//! The transfers behind `GET`/`HEAD /files/download` (one file: [`open_single`], then
//! [`single_response`] over the shared static-file answer in `crate::static_file`) and
//! `POST /files/bulk-download` (many files as one streamed `multipart/form-data` answer, which is
//! how the SDKs download anything: [`bulk_body`]). Both speak HTTP by nature (ranges,
//! conditionals, multipart framing), so they build responses; which status an error gets is
//! decided in `api.rs`. Bulk bodies use the same bounded buffer pipeline as single files.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::Response;

use super::error::FsError;
use crate::static_file::{self, CHUNK, Gone, Sink, advise_sequential, channel_body, clear_nonblock, retry};

/// Fixed boundary of bulk-download answers; clients read it from the `Content-Type`.
pub const BULK_BOUNDARY: &str = "DAYTONA-FILE-BOUNDARY";

// ------------------------------------------------------------------------ filename encodings

/// The `filename="…"` value: quotes and backslashes escaped, CR/LF/NUL dropped, then one byte
/// per character, `_` for anything outside printable Latin-1. Not UTF-8: `é` is the byte 0xE9.
pub fn latin1_filename(name: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '\\' => out.extend_from_slice(b"\\\\"),
            '"' => out.extend_from_slice(b"\\\""),
            '\r' | '\n' | '\0' => {}
            c if (c as u32) > 0xFF => out.push(b'_'),
            c if (c as u32) < 0x20 || c as u32 == 0x7F => out.push(b'_'),
            c => out.push(c as u32 as u8),
        }
    }
    out
}

/// The RFC 5987 value after `utf-8''`: UTF-8 bytes, attr-chars kept, the rest `%XX` upper-case.
/// Clients match bulk-download parts to their requests by the decoded value, so it must be exact.
pub fn rfc5987_filename(name: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(name.len());
    for &b in name.as_bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        }
    }
    out
}

/// `<disposition>; filename="<latin-1>"; filename*=utf-8''<rfc5987>` as raw header bytes.
pub fn content_disposition(disposition: &str, name: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(disposition.len() + name.len() * 4 + 32);
    out.extend_from_slice(disposition.as_bytes());
    out.extend_from_slice(b"; filename=\"");
    out.extend_from_slice(&latin1_filename(name));
    out.extend_from_slice(b"\"; filename*=utf-8''");
    out.extend_from_slice(rfc5987_filename(name).as_bytes());
    out
}

// --------------------------------------------------------------------- GET /files/download

/// A file opened for the single-file route, with the metadata of what was opened.
pub struct Opened {
    file: File,
    meta: std::fs::Metadata,
}

/// Stats (following links) and opens `path` for the single-file route. A regular file is read
/// once before anything is answered (one byte, at offset 0), so a file that opens but cannot be
/// read (an I/O error, a `/proc` entry that refuses reads) is an error answer rather than a
/// `200` whose body breaks off.
pub fn open_single(path: &Path) -> Result<Opened, FsError> {
    let meta = std::fs::metadata(path).map_err(FsError::os(path))?;
    if meta.is_dir() {
        return Err(FsError::WrongKind("path must be a file".into()));
    }
    if !meta.is_file() && !meta.file_type().is_char_device() && !meta.file_type().is_block_device() {
        // FIFOs would block the open, sockets cannot be opened.
        return Err(FsError::WrongKind(format!(
            "path must be a regular file: {}",
            crate::fspath::display(path.as_os_str().as_encoded_bytes())
        )));
    }
    // O_NONBLOCK: should the path be swapped for a FIFO after the stat, the open cannot hang.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(FsError::os(path))?;
    clear_nonblock(&file);
    // Size and time of what was opened, even if the path was replaced in between.
    let meta = file.metadata().map_err(|err| FsError::Read { path: path.into(), err })?;
    // Devices are not probed: a terminal would block the read.
    if meta.is_file() {
        retry(|| file.read_at(&mut [0u8; 1], 0)).map_err(|err| FsError::Read { path: path.into(), err })?;
    }
    Ok(Opened { file, meta })
}

/// The single-file answer for `method` and the request's conditional and `Range` headers; `name`
/// goes into `Content-Disposition`.
pub fn single_response(opened: Opened, name: &str, method: &Method, req: &HeaderMap) -> Response {
    let Opened { file, meta } = opened;
    let mut extra = HeaderMap::new();
    extra.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_bytes(&content_disposition("attachment", name)).expect("no control bytes"),
    );
    extra.insert("content-description", HeaderValue::from_static("File Transfer"));
    extra.insert("content-transfer-encoding", HeaderValue::from_static("binary"));
    extra.insert(header::EXPIRES, HeaderValue::from_static("0"));
    extra.insert(header::CACHE_CONTROL, HeaderValue::from_static("must-revalidate"));
    extra.insert(header::PRAGMA, HeaderValue::from_static("public"));
    static_file::respond(file, &meta, "application/octet-stream", extra, method, req)
}

// ---------------------------------------------------------------- POST /files/bulk-download

/// Why one requested path of a bulk download gives an `error` part instead of a `file` part.
#[derive(Debug)]
pub enum BulkError {
    /// Refused before the OS saw it (empty, a NUL byte, too long); the text says why.
    Invalid(String),
    /// A directory.
    Directory,
    /// A FIFO or a socket: reading it could block forever or is impossible.
    NotRegular,
    /// `open` or `fstat` (`op`) failed.
    Os { op: &'static str, err: io::Error },
}

/// One requested path: as the client spelled it (echoed in the part's headers) and where to
/// open it, or why not.
pub type BulkItem = (String, Result<PathBuf, BulkError>);

/// Renders the JSON body of an `error` part for a requested path.
pub type ErrorPart = fn(&str, &BulkError) -> Vec<u8>;

/// A streamed bulk-download body: the parts are written by a blocking thread as hyper sends
/// them.
pub fn bulk_body(items: Vec<BulkItem>, error_part: ErrorPart) -> Body {
    let (body, sink) = channel_body(CHUNK);
    tokio::task::spawn_blocking(move || stream_bulk(sink, items, error_part));
    body
}

/// Writes every part (an `error` part rendered by `error_part` for each path that cannot be
/// read), then the closing delimiter. Stops early, *without* the closing delimiter,
/// when a file cannot be read to its end, so clients see the answer as truncated.
pub fn stream_bulk(mut sink: Sink, items: Vec<BulkItem>, error_part: ErrorPart) {
    for (i, (path, full)) in items.into_iter().enumerate() {
        let path = path.as_str();
        let first = i == 0;
        let sent = match full.and_then(|full| open_bulk(&full)) {
            Ok((mut file, size)) => {
                let head = part_head(first, "file", path, guess_mime(path), Some(size));
                if sink.send(head).is_err() {
                    return;
                }
                advise_sequential(&file);
                match sink.copy_to_eof(&mut file) {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) => {
                        tracing::warn!(path, error = %e, "bulk download stopped: read failed");
                        return;
                    }
                    Err(Gone) => Err(Gone),
                }
            }
            Err(err) => {
                let mut part = part_head(first, "error", path, "application/json; charset=utf-8", None);
                part.extend_from_slice(&error_part(path, &err));
                sink.send(part)
            }
        };
        if sent.is_err() {
            return;
        }
    }
    let _ = sink.send(format!("\r\n--{BULK_BOUNDARY}--\r\n"));
}

/// Delimiter and headers of one part, with headers in Go's (sorted) order.
pub fn part_head(first: bool, name: &str, path: &str, content_type: &str, length: Option<u64>) -> Vec<u8> {
    let mut out = Vec::with_capacity(160 + path.len() * 4);
    if !first {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{BULK_BOUNDARY}\r\nContent-Disposition: ").as_bytes());
    out.extend_from_slice(&content_disposition(&format!("form-data; name=\"{name}\""), path));
    out.extend_from_slice(b"\r\n");
    if let Some(n) = length {
        out.extend_from_slice(format!("Content-Length: {n}\r\n").as_bytes());
    }
    out.extend_from_slice(format!("Content-Type: {content_type}\r\n\r\n").as_bytes());
    out
}

fn guess_mime(path: &str) -> &'static str {
    mime_guess::from_path(path).first_raw().unwrap_or("application/octet-stream")
}

/// Opens one requested file (following links) and takes its size from the open descriptor, so
/// size and content belong to the same inode even if the path is replaced meanwhile.
pub fn open_bulk(full: &Path) -> Result<(File, u64), BulkError> {
    // O_NONBLOCK so that a FIFO cannot hang the open; it is cleared again for what is kept.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(full)
        .map_err(|err| BulkError::Os { op: "open", err })?;
    let meta = file.metadata().map_err(|err| BulkError::Os { op: "stat", err })?;
    if meta.is_dir() {
        return Err(BulkError::Directory);
    }
    if meta.file_type().is_fifo() || meta.file_type().is_socket() {
        return Err(BulkError::NotRegular);
    }
    clear_nonblock(&file);
    Ok((file, meta.size()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    // ---------------------------------------------------------------- encodings (§4.1)

    fn cd(name: &str) -> Vec<u8> {
        content_disposition("attachment", name)
    }

    #[test]
    fn encodings_of_every_spec_example() {
        assert_eq!(cd("hello.txt"), b"attachment; filename=\"hello.txt\"; filename*=utf-8''hello.txt");
        assert_eq!(
            cd("日本語.txt"),
            b"attachment; filename=\"___.txt\"; filename*=utf-8''%E6%97%A5%E6%9C%AC%E8%AA%9E.txt"
        );
        assert_eq!(
            cd("file (1).txt"),
            b"attachment; filename=\"file (1).txt\"; filename*=utf-8''file%20%281%29.txt"
        );
        assert_eq!(cd(r#"a"b\c"#), br#"attachment; filename="a\"b\\c"; filename*=utf-8''a%22b%5Cc"#);
        assert_eq!(latin1_filename("hello\tworld.txt"), b"hello_world.txt");
        assert_eq!(rfc5987_filename("hello\tworld.txt"), "hello%09world.txt");
    }

    #[test]
    fn latin1_is_one_raw_byte_per_character() {
        assert_eq!(latin1_filename("é"), vec![0xE9]);
        assert_eq!(latin1_filename("ÿ€"), vec![0xFF, b'_']);
        assert_eq!(latin1_filename("a\r\nb\0c"), b"abc");
        assert_eq!(latin1_filename("\x7f\x01"), b"__");
        assert_eq!(rfc5987_filename("a\0b"), "a%00b");
        assert_eq!(rfc5987_filename("é"), "%C3%A9");
        assert_eq!(rfc5987_filename("!#$&+-.^_`|~azAZ09"), "!#$&+-.^_`|~azAZ09");
        assert_eq!(rfc5987_filename("/tmp/a b;c=d'e*%"), "%2Ftmp%2Fa%20b%3Bc%3Dd%27e%2A%25");
        // Raw bytes >= 0x80 are legal header bytes (obs-text).
        assert!(HeaderValue::from_bytes(&cd("café \"x\"")).is_ok());
    }

    // --------------------------------------------------------------- bulk framing

    /// Runs the bulk writer on a blocking thread and collects the whole body.
    fn bulk_with_chunk(items: Vec<BulkItem>, chunk: usize, error_part: ErrorPart) -> Vec<u8> {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).build().unwrap();
        rt.block_on(async move {
            let (body, sink) = channel_body(chunk);
            tokio::task::spawn_blocking(move || stream_bulk(sink, items, error_part));
            let mut stream = body.into_data_stream();
            let mut out = Vec::new();
            while let Some(c) = stream.next().await {
                out.extend_from_slice(&c.unwrap());
            }
            out
        })
    }

    #[test]
    fn bulk_large_file_spans_many_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(dir.path().join("big"), &data).unwrap();
        let items = vec![("big".to_string(), Ok(dir.path().join("big")))];
        let body = bulk_with_chunk(items, 4096, |_, _| unreachable!("no error part"));
        let head = part_head(true, "file", "big", "application/octet-stream", Some(300_000));
        assert!(body.starts_with(&head));
        let rest = &body[head.len()..];
        assert_eq!(&rest[..data.len()], &data[..]);
        assert_eq!(&rest[data.len()..], format!("\r\n--{BULK_BOUNDARY}--\r\n").as_bytes());
    }

    #[test]
    fn a_file_that_opens_but_cannot_be_read_is_a_read_error() {
        // Address 0 of our own memory is never mapped: the open succeeds, the read fails (EIO).
        let e = open_single(Path::new("/proc/self/mem")).err().unwrap();
        assert!(matches!(e, FsError::Read { ref err, .. } if err.raw_os_error() == Some(libc::EIO)), "{e:?}");
        assert!(open_single(Path::new("/dev/null")).is_ok(), "devices are not probed");
        let dir = tempfile::tempdir().unwrap();
        let e = open_single(dir.path()).err().unwrap();
        assert!(matches!(e, FsError::WrongKind(ref m) if m == "path must be a file"), "{e:?}");
        let empty = dir.path().join("empty");
        std::fs::write(&empty, b"").unwrap();
        assert!(open_single(&empty).is_ok(), "an empty file reads 0 bytes, no error");
    }

    #[test]
    fn fifo_is_refused_not_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: mkfifo with a valid C string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        assert!(matches!(open_bulk(&fifo).unwrap_err(), BulkError::NotRegular));
        assert!(matches!(open_bulk(dir.path()).unwrap_err(), BulkError::Directory));
        let e = open_bulk(&dir.path().join("missing")).unwrap_err();
        assert!(
            matches!(e, BulkError::Os { op: "open", ref err } if err.kind() == io::ErrorKind::NotFound),
            "{e:?}"
        );
    }

    // ------------------------------------------------------------------ truncation

    /// A sink whose reads fail after the first chunk must end the stream without the closing
    /// delimiter (clients detect the truncation) and without an error frame.
    #[test]
    fn read_failure_ends_the_bulk_stream_without_closing_boundary() {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).build().unwrap();
        rt.block_on(async {
            let (body, mut sink) = channel_body(8);
            tokio::task::spawn_blocking(move || {
                sink.send(part_head(true, "file", "x", "text/plain", Some(100))).unwrap();
                let mut calls = 0;
                let r = sink
                    .pump(usize::MAX, |b| {
                        calls += 1;
                        b[..3].copy_from_slice(b"abc");
                        Ok(3)
                    })
                    .unwrap();
                assert_eq!(r.unwrap(), 3);
                let r = sink.pump(usize::MAX, |_| Err(io::Error::from_raw_os_error(libc::EIO))).unwrap();
                assert!(r.is_err());
                // stream_bulk returns here, dropping the sink.
            });
            let mut out = Vec::new();
            let mut stream = body.into_data_stream();
            while let Some(c) = stream.next().await {
                out.extend_from_slice(&c.expect("clean end, no error frame"));
            }
            let text = String::from_utf8(out).unwrap();
            assert!(text.ends_with("\r\n\r\nabc"), "{text}");
            assert!(!text.contains(&format!("--{BULK_BOUNDARY}--")));
        });
    }
}
