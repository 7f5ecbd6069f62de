//! The client against real language servers (the test suite's dependency script,
//! `tests/ensure-deps`, installs pylsp and pyright). A server missing from PATH fails the test
//! and says which: a skipped test would pass without checking anything.

use std::process::Stdio;
use std::time::Duration;

use lsp_bridge::lsp_types::notification::{DidOpenTextDocument, Exit, Initialized};
use lsp_bridge::lsp_types::request::{Completion, DocumentSymbolRequest, Initialize, Shutdown};
use lsp_bridge::lsp_types::*;
use lsp_bridge::{Client, Options, file_uri};

fn on_path(cmd: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(cmd).is_file()))
}

async fn exercise(argv: &[&str]) {
    assert!(
        on_path(argv[0]),
        "{} is not on PATH: run tests/ensure-deps to install the pinned language servers",
        argv[0]
    );
    let project = tempfile::tempdir().unwrap();
    let file = project.path().join("my module.py");
    let text = "import os\n\ndef greet(name):\n    return name\n\nclass Thing:\n    pass\n\nos.pa";
    std::fs::write(&file, text).unwrap();

    // The caller spawns; the client only gets the pipes.
    let mut child = tokio::process::Command::new(argv[0])
        .args(&argv[1..])
        .current_dir(project.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let opts = Options { request_timeout: Duration::from_secs(60), ..Options::default() };
    let client =
        Client::new(child.stdout.take().unwrap(), child.stdin.take().unwrap(), child.stderr.take(), opts);

    let root = file_uri(project.path());
    #[allow(deprecated)]
    let init = InitializeParams {
        process_id: Some(std::process::id()),
        root_uri: Some(root.clone()),
        workspace_folders: Some(vec![WorkspaceFolder { uri: root, name: "project".into() }]),
        capabilities: ClientCapabilities {
            text_document: Some(TextDocumentClientCapabilities {
                document_symbol: Some(DocumentSymbolClientCapabilities {
                    hierarchical_document_symbol_support: Some(true),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let result = client.request::<Initialize>(init).await.unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    assert!(result.capabilities.completion_provider.is_some(), "{argv:?} offers completion");
    client.notify::<Initialized>(InitializedParams {}).unwrap();

    let uri = file_uri(&file);
    assert!(uri.as_str().ends_with("/my%20module.py"));
    client
        .notify::<DidOpenTextDocument>(DidOpenTextDocumentParams {
            text_document: TextDocumentItem::new(uri.clone(), "python".into(), 1, text.into()),
        })
        .unwrap();

    let symbols = client
        .request::<DocumentSymbolRequest>(DocumentSymbolParams {
            text_document: TextDocumentIdentifier::new(uri.clone()),
            work_done_progress_params: Default::default(),
            partial_result_params: Default::default(),
        })
        .await
        .unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    let names: Vec<String> = match symbols {
        Some(DocumentSymbolResponse::Flat(s)) => s.into_iter().map(|s| s.name).collect(),
        Some(DocumentSymbolResponse::Nested(s)) => s.into_iter().map(|s| s.name).collect(),
        None => Vec::new(),
    };
    assert!(
        names.contains(&"greet".to_owned()) && names.contains(&"Thing".to_owned()),
        "{argv:?}: {names:?}"
    );

    let completion = client
        .request::<Completion>(CompletionParams {
            text_document_position: TextDocumentPositionParams {
                text_document: TextDocumentIdentifier::new(uri),
                position: Position { line: 8, character: 5 },
            },
            work_done_progress_params: Default::default(),
            partial_result_params: Default::default(),
            context: None,
        })
        .await
        .unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    let labels: Vec<String> = match completion {
        Some(CompletionResponse::Array(items)) => items.into_iter().map(|i| i.label).collect(),
        Some(CompletionResponse::List(list)) => list.items.into_iter().map(|i| i.label).collect(),
        None => Vec::new(),
    };
    assert!(labels.iter().any(|l| l.starts_with("path")), "{argv:?}: {labels:?}");

    client.request::<Shutdown>(()).await.unwrap();
    client.notify::<Exit>(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), client.closed())
        .await
        .expect("the server exits after exit");
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "{argv:?} exited with {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pylsp() {
    exercise(&["pylsp"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyright() {
    exercise(&["pyright-langserver", "--stdio"]).await;
}
