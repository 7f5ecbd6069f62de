//! The language servers of the sandbox, keyed like the reference by `(languageId,
//! pathToProject)` with both strings verbatim (`/a` and `/a/` are two servers).
//!
//! Start and stop of one key run one at a time; calls to a running server run concurrently (its
//! client matches answers to requests by id), and different servers never wait on each other.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use lsp_bridge::Options;
use lsp_bridge::lsp_types as lsp;
use toolbox_envelope::sync::lock;

use super::error::{LspError, PathProblem};
use super::languages::{Languages, Missing};
use super::server::{Launch, Server};
use crate::env::ChildEnv;
use crate::reaper::Reaper;

type Key = (String, String);

/// One key's place: the running server, if any, and the lock its start and stop take.
#[derive(Default)]
struct Slot {
    server: Mutex<Option<Arc<Server>>>,
    lifecycle: tokio::sync::Mutex<()>,
}

impl Slot {
    fn current(&self) -> Option<Arc<Server>> {
        lock(&self.server).clone()
    }

    fn set(&self, server: Option<Arc<Server>>) -> Option<Arc<Server>> {
        std::mem::replace(&mut *lock(&self.server), server)
    }
}

pub struct Lsp {
    languages: Languages,
    max_servers: usize,
    options: Options,
    env: Arc<ChildEnv>,
    reaper: &'static Reaper,
    slots: Mutex<HashMap<Key, Arc<Slot>>>,
    /// Starts under way, counted against the limit before they finish.
    starting: AtomicUsize,
}

impl Lsp {
    pub fn new(
        languages: Languages,
        max_servers: usize,
        env: Arc<ChildEnv>,
        reaper: &'static Reaper,
    ) -> Self {
        Lsp {
            languages,
            max_servers,
            options: Options::default(),
            env,
            reaper,
            slots: Mutex::new(HashMap::new()),
            starting: AtomicUsize::new(0),
        }
    }

    /// Replaces the client options (tests shorten the request timeout).
    pub fn with_options(mut self, options: Options) -> Self {
        self.options = options;
        self
    }

    fn slot(&self, key: &Key) -> Option<Arc<Slot>> {
        lock(&self.slots).get(key).cloned()
    }

    /// Forgets a key's slot if it is still `slot` and holds no server.
    fn forget(&self, key: &Key, slot: &Arc<Slot>) {
        let mut slots = lock(&self.slots);
        if slots.get(key).is_some_and(|s| Arc::ptr_eq(s, slot)) && slot.current().is_none() {
            slots.remove(key);
        }
    }

    /// Servers running now.
    pub fn running(&self) -> usize {
        let slots: Vec<Arc<Slot>> = lock(&self.slots).values().cloned().collect();
        slots.iter().filter(|s| s.current().is_some_and(|srv| srv.is_running())).count()
    }

    /// Starts the server of a key; a running one is left as it is, one that died is replaced.
    pub async fn start(&self, language: &str, project: &str, root: &Path) -> Result<(), LspError> {
        if !crate::id::is_language_id(language) {
            return Err(LspError::InvalidLanguage(language.to_string()));
        }
        project_dir(root)?;
        let key: Key = (language.to_string(), project.to_string());
        let slot = lock(&self.slots).entry(key.clone()).or_default().clone();
        let _lifecycle = slot.lifecycle.lock().await;
        if let Some(server) = slot.current() {
            if server.is_running() {
                return Ok(());
            }
            slot.set(None);
        }
        let result = self.launch(language, project, root).await;
        match result {
            Ok(server) => {
                slot.set(Some(Arc::new(server)));
                Ok(())
            }
            Err(e) => {
                self.forget(&key, &slot);
                Err(e)
            }
        }
    }

    async fn launch(&self, language: &str, project: &str, root: &Path) -> Result<Server, LspError> {
        let path = self.env.get("PATH");
        let command = self.languages.resolve(language, path.as_deref()).map_err(|m| match m {
            Missing::Unsupported { supported } => {
                LspError::Unsupported { language: language.to_string(), supported }
            }
            Missing::NotInstalled { looked_for } => {
                LspError::NotInstalled { language: language.to_string(), looked_for }
            }
        })?;
        // Reserve a place before the (slow) start, so concurrent starts cannot pass the limit.
        let reserved = self.starting.fetch_add(1, Ordering::SeqCst);
        let _release = Release(&self.starting);
        if self.running() + reserved >= self.max_servers {
            return Err(LspError::TooMany { limit: self.max_servers });
        }
        let launch = Launch {
            language,
            project,
            root,
            command: &command,
            env: self.env.snapshot_with([]),
            options: self.options.clone(),
        };
        Server::start(self.reaper, launch).await
    }

    /// Stops the server of a key; a key with no server is already stopped.
    pub async fn stop(&self, language: &str, project: &str) {
        let key: Key = (language.to_string(), project.to_string());
        let Some(slot) = self.slot(&key) else { return };
        let _lifecycle = slot.lifecycle.lock().await;
        if let Some(server) = slot.set(None) {
            server.stop().await;
        }
        self.forget(&key, &slot);
    }

    /// The server of a key, running or not; `NotStarted` when there is none.
    pub fn server(&self, language: &str, project: &str) -> Result<Arc<Server>, LspError> {
        let key: Key = (language.to_string(), project.to_string());
        self.slot(&key).and_then(|s| s.current()).ok_or_else(|| LspError::NotStarted {
            language: language.to_string(),
            project: project.to_string(),
        })
    }

    pub async fn did_open(&self, language: &str, project: &str, file: &Path) -> Result<(), LspError> {
        self.server(language, project)?.did_open(file).await
    }

    pub async fn did_close(&self, language: &str, project: &str, file: &Path) -> Result<(), LspError> {
        self.server(language, project)?.did_close(file).await
    }

    pub async fn completion(
        &self,
        language: &str,
        project: &str,
        file: &Path,
        position: lsp::Position,
        context: Option<lsp::CompletionContext>,
    ) -> Result<Option<lsp::CompletionResponse>, LspError> {
        self.server(language, project)?.completion(file, position, context).await
    }

    pub async fn document_symbols(
        &self,
        language: &str,
        project: &str,
        file: &Path,
    ) -> Result<Option<lsp::DocumentSymbolResponse>, LspError> {
        self.server(language, project)?.document_symbols(file).await
    }

    pub async fn workspace_symbols(
        &self,
        language: &str,
        project: &str,
        query: &str,
    ) -> Result<Option<lsp::WorkspaceSymbolResponse>, LspError> {
        self.server(language, project)?.workspace_symbols(query).await
    }

    /// Stops every server (daemon shutdown): all at once, each with its short grace.
    pub async fn shutdown(&self) {
        let slots: Vec<Arc<Slot>> = lock(&self.slots).drain().map(|(_, s)| s).collect();
        let servers: Vec<Arc<Server>> = slots.iter().filter_map(|s| s.set(None)).collect();
        futures_util::future::join_all(servers.iter().map(|s| s.stop())).await;
    }

    /// Kills every server at once, without a goodbye (the daemon is going away now).
    pub fn kill_all(&self) {
        for slot in lock(&self.slots).values() {
            if let Some(server) = slot.current() {
                server.kill();
            }
        }
    }
}

/// Gives back a start reservation however the start ends.
struct Release<'a>(&'a AtomicUsize);

impl Drop for Release<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The project must be a directory: a server rooted at a file or at nothing serves nothing.
fn project_dir(root: &Path) -> Result<(), LspError> {
    let bad = |detail: String, kind| LspError::BadProject { path: root.to_path_buf(), detail, kind };
    match std::fs::metadata(root) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(bad("pathToProject is not a directory".into(), PathProblem::Invalid)),
        Err(e) => Err(bad(crate::text::os_error_text(&e), PathProblem::of(&e))),
    }
}
