//! One running language server: its process group, the LSP client on its pipes, and the
//! documents it has open.
//!
//! The process is spawned through the reaper (the daemon's one `waitpid`) in a process group of
//! its own, so stopping it also stops what it started (`typescript-language-server` runs
//! `tsserver` children). When the server exits by itself the group is killed at once and the
//! next call says so; nothing is restarted behind the caller's back.

use std::collections::HashMap;
use std::ffi::OsString;
use std::hash::{Hash, Hasher};
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use lsp_bridge::lsp_types::{self as lsp, notification as note, request as req};
use lsp_bridge::{Client, Options};
use tokio::sync::{Mutex, watch};

use super::error::{LspError, PathProblem};
use super::languages::{Command, document_language};
use crate::reaper::{ExitStatus, Reaper};
use crate::signal::{GroupGuard, kill_group};

/// How long `initialize` may take: pyright and tsserver load their runtime first.
const INITIALIZE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long `shutdown` may take before the process group is killed.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the process has to exit after `exit` before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(1);
/// The largest document sent to a server: beyond this it is not source code a server can serve.
pub const MAX_DOCUMENT_BYTES: u64 = 32 << 20;
/// How much of a server's stderr an error message quotes.
const STDERR_QUOTED: usize = 1024;

/// What a server is started with.
pub struct Launch<'a> {
    pub language: &'a str,
    pub project: &'a str,
    pub root: &'a Path,
    pub command: &'a Command,
    pub env: Vec<(OsString, OsString)>,
    pub options: Options,
}

/// A document as last sent: its URI, version, and what identifies the content sent.
struct Doc {
    uri: lsp::Uri,
    version: i32,
    stamp: Stamp,
    digest: u64,
}

/// What changes when a file is written: checked before each request, so the text is only read
/// again when it may have changed.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    ino: u64,
}

impl Stamp {
    fn of(m: &std::fs::Metadata) -> Self {
        Stamp {
            len: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
            ino: m.ino(),
        }
    }
}

pub struct Server {
    language: String,
    project: String,
    pid: u32,
    client: Client,
    exit: watch::Receiver<Option<ExitStatus>>,
    docs: Mutex<HashMap<PathBuf, Doc>>,
}

impl Server {
    /// Spawns the server and runs the `initialize` handshake. A server that exits or fails the
    /// handshake is killed with its group.
    pub async fn start(reaper: &'static Reaper, launch: Launch<'_>) -> Result<Server, LspError> {
        let failed = |detail: String, stderr: String| LspError::StartFailed {
            language: launch.language.to_string(),
            program: launch.command.program.display().to_string(),
            detail,
            stderr,
        };
        let mut cmd = std::process::Command::new(&launch.command.program);
        cmd.args(&launch.command.args)
            .current_dir(launch.root)
            .env_clear()
            .envs(launch.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let (mut child, exit_wait) = tokio::task::spawn_blocking(move || reaper.spawn(&mut cmd))
            .await
            .map_err(|e| failed(e.to_string(), String::new()))?
            .map_err(|e| match crate::exhaust::Exhausted::of("cannot start the language server", &e) {
                Some(x) => LspError::Exhausted(x),
                None => failed(crate::text::os_error_text(&e), String::new()),
            })?;
        let pid = child.id();
        let mut guard = GroupGuard::new(pid);
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(failed("its pipes could not be set up".into(), String::new()));
        };
        let pipes = (|| {
            use tokio::net::unix::pipe;
            std::io::Result::Ok((
                pipe::Receiver::from_owned_fd(OwnedFd::from(stdout))?,
                pipe::Sender::from_owned_fd(OwnedFd::from(stdin))?,
                pipe::Receiver::from_owned_fd(OwnedFd::from(stderr))?,
            ))
        })();
        let (from_server, to_server, stderr) =
            pipes.map_err(|e| failed(crate::text::os_error_text(&e), String::new()))?;
        let client = Client::new(from_server, to_server, Some(stderr), launch.options);

        // The reaper reports the exit; what the server started dies with it.
        let (exit_tx, exit) = watch::channel(None);
        tokio::spawn(async move {
            let status = exit_wait.await;
            kill_group(pid, libc::SIGKILL);
            let _ = exit_tx.send(Some(status));
        });

        let server = Server {
            language: launch.language.to_string(),
            project: launch.project.to_string(),
            pid,
            client,
            exit,
            docs: Mutex::new(HashMap::new()),
        };
        let params = initialize_params(launch.root);
        if let Err(e) =
            server.client.request_with_timeout::<req::Initialize>(params, INITIALIZE_TIMEOUT).await
        {
            let detail = match server.exit_status(Duration::from_millis(300)).await {
                Some(status) => format!("it {} during initialize", describe(status)),
                None => format!("initialize failed: {e}"),
            };
            return Err(failed(detail, server.client.stderr_tail(STDERR_QUOTED)));
        }
        server
            .client
            .notify::<note::Initialized>(lsp::InitializedParams {})
            .map_err(|e| failed(e.to_string(), server.client.stderr_tail(STDERR_QUOTED)))?;
        guard.disarm();
        Ok(server)
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether the process is still there and its pipes still open.
    pub fn is_running(&self) -> bool {
        self.exit.borrow().is_none() && !self.client.is_closed()
    }

    /// The exit status, waiting up to `wait` for the reaper to report it.
    async fn exit_status(&self, wait: Duration) -> Option<ExitStatus> {
        let mut exit = self.exit.clone();
        let _ = tokio::time::timeout(wait, exit.wait_for(Option::is_some)).await;
        *exit.borrow()
    }

    /// Fails with what became of the server when it is not running any more.
    async fn check(&self) -> Result<(), LspError> {
        if self.is_running() {
            return Ok(());
        }
        Err(self.exited().await)
    }

    async fn exited(&self) -> LspError {
        let how = match self.exit_status(Duration::from_millis(300)).await {
            Some(status) => describe(status),
            None => "closed its pipes".to_string(),
        };
        LspError::Exited {
            language: self.language.clone(),
            project: self.project.clone(),
            how,
            stderr: self.client.stderr_tail(STDERR_QUOTED),
        }
    }

    /// A request failure in the caller's terms; a server that went away is reported as such.
    async fn failure(&self, e: lsp_bridge::Error) -> LspError {
        use lsp_bridge::Error as E;
        match e {
            E::Timeout { method, after } => LspError::Timeout { method, after },
            E::ResponseTooLarge { method, size, limit } => LspError::TooLarge { method, size, limit },
            // JSON-RPC's MethodNotFound: pylsp has no workspace/symbol, for one.
            E::Server { method, code: -32601, .. } => {
                LspError::NotSupported { language: self.language.clone(), method }
            }
            E::Server { method, code, message } => LspError::Request { method, code, message },
            E::Decode { method, detail } => LspError::BadAnswer { method, detail },
            // The queue to a server that stopped reading its input is full; it still runs.
            E::Io(detail) if self.is_running() => LspError::Stalled { detail },
            E::Closed { .. } | E::Io(_) => self.exited().await,
        }
    }

    /// Opens `file` (or, when it is open, sends what changed on disk since).
    pub async fn did_open(&self, file: &Path) -> Result<(), LspError> {
        self.check().await?;
        self.sync(file).await
    }

    /// Closes `file` if it is open; closing a document that is not open does nothing (servers
    /// treat a stray `didClose` as an error).
    pub async fn did_close(&self, file: &Path) -> Result<(), LspError> {
        self.check().await?;
        let Some(doc) = self.docs.lock().await.remove(file) else {
            return Ok(());
        };
        let params =
            lsp::DidCloseTextDocumentParams { text_document: lsp::TextDocumentIdentifier { uri: doc.uri } };
        match self.client.notify::<note::DidCloseTextDocument>(params) {
            Ok(()) => Ok(()),
            Err(e) => Err(self.failure(e).await),
        }
    }

    /// Makes the server's copy of `file` what is on disk: opens it when it is not open, sends
    /// the full text again (`didChange`) when it changed. The reference answers about the text
    /// as it was at `did-open`.
    async fn sync(&self, file: &Path) -> Result<(), LspError> {
        let mut docs = self.docs.lock().await;
        let meta = stat_document(file).await?;
        let stamp = Stamp::of(&meta);
        if docs.get(file).is_some_and(|d| d.stamp == stamp) {
            return Ok(());
        }
        let text = read_document(file).await?;
        let digest = digest(&text);
        let sent = match docs.get_mut(file) {
            Some(doc) if doc.digest == digest => {
                doc.stamp = stamp;
                Ok(())
            }
            Some(doc) => {
                // The stamp and digest move only once the change is on its way: a change that
                // could not be sent is sent again next time, not taken for the server's text.
                doc.version += 1;
                let version = doc.version;
                let uri = doc.uri.clone();
                let sent =
                    self.client.notify::<note::DidChangeTextDocument>(lsp::DidChangeTextDocumentParams {
                        text_document: lsp::VersionedTextDocumentIdentifier { uri, version },
                        content_changes: vec![lsp::TextDocumentContentChangeEvent {
                            range: None,
                            range_length: None,
                            text,
                        }],
                    });
                if sent.is_ok() {
                    doc.stamp = stamp;
                    doc.digest = digest;
                }
                sent
            }
            None => {
                let uri = lsp_bridge::file_uri(file);
                let item = lsp::TextDocumentItem {
                    uri: uri.clone(),
                    language_id: document_language(&self.language, file).to_string(),
                    version: 1,
                    text,
                };
                let sent = self.client.notify::<note::DidOpenTextDocument>(lsp::DidOpenTextDocumentParams {
                    text_document: item,
                });
                // Recorded as open only once the open is on its way.
                if sent.is_ok() {
                    docs.insert(file.to_path_buf(), Doc { uri, version: 1, stamp, digest });
                }
                sent
            }
        };
        drop(docs);
        match sent {
            Ok(()) => Ok(()),
            Err(e) => Err(self.failure(e).await),
        }
    }

    /// The URI the server knows `file` by, after bringing its text up to date.
    async fn synced_uri(&self, file: &Path) -> Result<lsp::Uri, LspError> {
        self.check().await?;
        self.sync(file).await?;
        let docs = self.docs.lock().await;
        Ok(docs.get(file).map_or_else(|| lsp_bridge::file_uri(file), |d| d.uri.clone()))
    }

    pub async fn completion(
        &self,
        file: &Path,
        position: lsp::Position,
        context: Option<lsp::CompletionContext>,
    ) -> Result<Option<lsp::CompletionResponse>, LspError> {
        let uri = self.synced_uri(file).await?;
        let params = lsp::CompletionParams {
            text_document_position: lsp::TextDocumentPositionParams {
                text_document: lsp::TextDocumentIdentifier { uri },
                position,
            },
            work_done_progress_params: Default::default(),
            partial_result_params: Default::default(),
            context,
        };
        match self.client.request::<req::Completion>(params).await {
            Ok(r) => Ok(r),
            Err(e) => Err(self.failure(e).await),
        }
    }

    pub async fn document_symbols(
        &self,
        file: &Path,
    ) -> Result<Option<lsp::DocumentSymbolResponse>, LspError> {
        let uri = self.synced_uri(file).await?;
        let params = lsp::DocumentSymbolParams {
            text_document: lsp::TextDocumentIdentifier { uri },
            work_done_progress_params: Default::default(),
            partial_result_params: Default::default(),
        };
        match self.client.request::<req::DocumentSymbolRequest>(params).await {
            Ok(r) => Ok(r),
            Err(e) => Err(self.failure(e).await),
        }
    }

    pub async fn workspace_symbols(
        &self,
        query: &str,
    ) -> Result<Option<lsp::WorkspaceSymbolResponse>, LspError> {
        self.check().await?;
        let params = lsp::WorkspaceSymbolParams {
            query: query.to_string(),
            work_done_progress_params: Default::default(),
            partial_result_params: Default::default(),
        };
        match self.client.request::<req::WorkspaceSymbolRequest>(params).await {
            Ok(r) => Ok(r),
            Err(e) => Err(self.failure(e).await),
        }
    }

    /// `shutdown` (briefly), `exit`, a moment to go, then the group is killed whatever happened:
    /// the reference sent `shutdown` as a notification and left every server running.
    pub async fn stop(&self) {
        if self.is_running() {
            // `exit` follows even when `shutdown` went unanswered: a server that is merely slow
            // may still go by itself, and the kill below comes either way.
            let _ = self.client.request_with_timeout::<req::Shutdown>((), SHUTDOWN_TIMEOUT).await;
            let _ = self.client.notify::<note::Exit>(());
            self.exit_status(EXIT_GRACE).await;
        }
        self.kill();
    }

    /// Kills the process group unless the reaper already saw the leader exit (then the exit
    /// watcher has killed the group).
    pub fn kill(&self) {
        if self.exit.borrow().is_none() {
            kill_group(self.pid, libc::SIGKILL);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// "exited with code 1", "was killed by signal 9".
fn describe(status: ExitStatus) -> String {
    match status {
        ExitStatus::Exited(code) => format!("exited with code {code}"),
        ExitStatus::Signaled(sig) => format!("was killed by signal {sig}"),
        ExitStatus::Unknown => "exited".to_string(),
    }
}

fn digest(text: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}

/// The metadata of a document to open: it must be a regular file (following links) no larger
/// than [`MAX_DOCUMENT_BYTES`].
async fn stat_document(file: &Path) -> Result<std::fs::Metadata, LspError> {
    let bad = |detail: String, kind| LspError::BadFile { path: file.to_path_buf(), detail, kind };
    let meta = tokio::fs::metadata(file)
        .await
        .map_err(|e| bad(crate::text::os_error_text(&e), PathProblem::of(&e)))?;
    if !meta.is_file() {
        return Err(bad("not a regular file".into(), PathProblem::Invalid));
    }
    if meta.len() > MAX_DOCUMENT_BYTES {
        return Err(bad(
            format!("{} bytes, over the {MAX_DOCUMENT_BYTES}-byte limit for a document", meta.len()),
            PathProblem::TooLarge,
        ));
    }
    Ok(meta)
}

/// How long reading one document may take: a file that never ends (a FIFO, `/proc/kmsg`) must not
/// hold the server's document lock.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// A document's text. LSP carries text as JSON strings, so bytes that are not UTF-8 become U+FFFD.
/// The read is bounded by [`MAX_DOCUMENT_BYTES`] whatever the file's stated size (`/proc` files
/// say 0 and may hold far more) and by [`READ_TIMEOUT`].
async fn read_document(file: &Path) -> Result<String, LspError> {
    use tokio::io::AsyncReadExt;
    let bad = |detail: String, kind| LspError::BadFile { path: file.to_path_buf(), detail, kind };
    let io = |e: std::io::Error| bad(crate::text::os_error_text(&e), PathProblem::of(&e));
    let read = async {
        let f = tokio::fs::File::open(file).await.map_err(io)?;
        let mut bytes = Vec::new();
        f.take(MAX_DOCUMENT_BYTES + 1).read_to_end(&mut bytes).await.map_err(io)?;
        Ok::<_, LspError>(bytes)
    };
    let bytes = tokio::time::timeout(READ_TIMEOUT, read)
        .await
        .map_err(|_| bad(format!("reading took over {}s", READ_TIMEOUT.as_secs()), PathProblem::Invalid))??;
    if bytes.len() as u64 > MAX_DOCUMENT_BYTES {
        return Err(bad(
            format!("over the {MAX_DOCUMENT_BYTES}-byte limit for a document"),
            PathProblem::TooLarge,
        ));
    }
    Ok(match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

/// The `initialize` request: the capabilities the reference announces (completion with
/// snippets and documentation formats, flat document symbols, workspace symbols), plus the
/// project as the one workspace folder.
fn initialize_params(root: &Path) -> lsp::InitializeParams {
    let root_uri = lsp_bridge::file_uri(root);
    let name = root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "/".into());
    let kinds = (1..=26).filter_map(|n| serde_json::from_value(serde_json::json!(n)).ok()).collect();
    let symbol_kinds = (1..=26).filter_map(|n| serde_json::from_value(serde_json::json!(n)).ok()).collect();
    #[allow(deprecated)]
    lsp::InitializeParams {
        process_id: Some(std::process::id()),
        root_uri: Some(root_uri.clone()),
        workspace_folders: Some(vec![lsp::WorkspaceFolder { uri: root_uri, name }]),
        client_info: Some(lsp::ClientInfo {
            name: "daytona-daemon".into(),
            version: Some(env!("CARGO_PKG_VERSION").to_string()),
        }),
        capabilities: lsp::ClientCapabilities {
            text_document: Some(lsp::TextDocumentClientCapabilities {
                synchronization: Some(lsp::TextDocumentSyncClientCapabilities {
                    dynamic_registration: Some(true),
                    ..Default::default()
                }),
                completion: Some(lsp::CompletionClientCapabilities {
                    dynamic_registration: Some(true),
                    context_support: Some(true),
                    completion_item: Some(lsp::CompletionItemCapability {
                        snippet_support: Some(true),
                        commit_characters_support: Some(true),
                        deprecated_support: Some(true),
                        preselect_support: Some(true),
                        documentation_format: Some(vec![
                            lsp::MarkupKind::Markdown,
                            lsp::MarkupKind::PlainText,
                        ]),
                        ..Default::default()
                    }),
                    completion_item_kind: Some(lsp::CompletionItemKindCapability { value_set: Some(kinds) }),
                    ..Default::default()
                }),
                document_symbol: Some(lsp::DocumentSymbolClientCapabilities {
                    dynamic_registration: Some(true),
                    symbol_kind: Some(lsp::SymbolKindCapability { value_set: Some(symbol_kinds) }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            workspace: Some(lsp::WorkspaceClientCapabilities {
                symbol: Some(lsp::WorkspaceSymbolClientCapabilities {
                    dynamic_registration: Some(true),
                    ..Default::default()
                }),
                workspace_folders: Some(true),
                configuration: Some(true),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_document_is_read_up_to_the_limit_whatever_its_stated_size() {
        // A FIFO states no size at all; what arrives through it past the limit is refused.
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("doc");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: plain syscall on a path in our own temporary directory.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let writer = std::thread::spawn({
            let fifo = fifo.clone();
            move || {
                use std::io::Write;
                let mut f = std::fs::OpenOptions::new().write(true).open(fifo).unwrap();
                let chunk = vec![b'x'; 1 << 20];
                for _ in 0..=(MAX_DOCUMENT_BYTES >> 20) {
                    if f.write_all(&chunk).is_err() {
                        break; // the reader stopped at the limit
                    }
                }
            }
        });
        match read_document(&fifo).await {
            Err(LspError::BadFile { kind: PathProblem::TooLarge, .. }) => {}
            other => panic!("{:?}", other.map(|t| t.len())),
        }
        drop(writer);
        // A /proc file says 0 bytes and is read whole.
        let status = read_document(Path::new("/proc/self/status")).await.unwrap();
        assert!(status.contains("Pid:"), "{status}");
    }
}
