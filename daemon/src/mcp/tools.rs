//! The tool table: one line per MCP tool, naming the toolbox operation it drives.
//!
//! A tool's input schema is not written here: [`super::schema`] builds it from the operation's
//! parameters and JSON body in the daemon's OpenAPI document, so the tools take exactly what the
//! HTTP API takes, under the same names.

/// How a tool turns its arguments into a request and the answer into MCP content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Arguments are the operation's parameters and JSON body; the answer is JSON text.
    Json,
    /// `GET /files/download`: text content for UTF-8, an embedded blob otherwise; `offset` and
    /// `length` become a `Range` header so a large file can be read in parts.
    FileRead,
    /// `POST /files/upload`: `content` (+ `encoding`) becomes the multipart `file` field.
    FileWrite,
    /// A screenshot route: the base64 image of the JSON answer becomes image content.
    Image,
}

/// One tool.
#[derive(Debug)]
pub struct ToolSpec {
    /// The MCP name, snake_case.
    pub name: &'static str,
    pub method: &'static str,
    /// The operation's path template, as in the OpenAPI document.
    pub path: &'static str,
    pub kind: Kind,
    pub description: &'static str,
    /// Parameters of the operation the tool does not offer (streaming variants that would never
    /// answer within a tool call).
    pub omit: &'static [&'static str],
    /// Query parameters sent when the caller gives none (the screenshot's format and quality).
    pub defaults: &'static [(&'static str, &'static str)],
}

const fn tool(
    name: &'static str,
    method: &'static str,
    path: &'static str,
    description: &'static str,
) -> ToolSpec {
    ToolSpec { name, method, path, kind: Kind::Json, description, omit: &[], defaults: &[] }
}

impl ToolSpec {
    const fn kind(mut self, kind: Kind) -> Self {
        self.kind = kind;
        self
    }

    const fn omit(mut self, omit: &'static [&'static str]) -> Self {
        self.omit = omit;
        self
    }

    const fn defaults(mut self, defaults: &'static [(&'static str, &'static str)]) -> Self {
        self.defaults = defaults;
        self
    }
}

/// Every tool the daemon offers, in the order `tools/list` gives them.
#[rustfmt::skip] // a tool per entry, kept readable as a table
pub const TOOLS: &[ToolSpec] = &[
    // Processes.
    tool("execute_command", "POST", "/process/execute",
        "Run a shell command and wait for it: the answer holds its exit code and combined output. A non-zero exit code is a result, not an error."),
    tool("code_run", "POST", "/process/code-run",
        "Run a program in python, javascript or typescript and wait for it: exit code and output."),
    // Files.
    tool("file_list", "GET", "/files", "List a directory (the work directory when no path is given)."),
    tool("file_read", "GET", "/files/download",
        "Read a file: text for UTF-8 content, base64 in an embedded blob otherwise. `offset` and `length` (bytes) read a part of a large file.")
        .kind(Kind::FileRead),
    tool("file_write", "POST", "/files/upload",
        "Write a file (created or replaced) from `content`; with `encoding: base64` the content is base64-decoded first. Parent directories are created.")
        .kind(Kind::FileWrite),
    tool("file_find", "GET", "/files/find", "Search file contents under a directory for a pattern (like grep): matching lines with file and line number."),
    tool("file_search", "GET", "/files/search", "Find files whose names match a glob pattern under a directory."),
    tool("file_replace", "POST", "/files/replace", "Replace literal text in the given files."),
    tool("file_move", "POST", "/files/move", "Move or rename a file or directory."),
    tool("file_delete", "DELETE", "/files", "Delete a file, or a directory with `recursive`."),
    tool("file_info", "GET", "/files/info", "Details of a file or directory: size, mode, owner, modification time."),
    tool("file_mkdir", "POST", "/files/folder", "Create a directory (and its parents)."),
    // Sessions: long-lived shells whose commands keep their output.
    tool("session_create", "POST", "/process/session", "Create a named shell session; its commands share working directory and environment."),
    tool("session_execute", "POST", "/process/session/{sessionId}/exec",
        "Run a command in a session. Synchronous by default (exit code and output); with `runAsync` it returns the command id at once, for session_command_logs."),
    tool("session_command_logs", "GET", "/process/session/{sessionId}/command/{commandId}/logs",
        "The output of a command run in a session so far.")
        .omit(&["follow"]),
    tool("session_get", "GET", "/process/session/{sessionId}", "A session and the commands it has run, with their exit codes."),
    tool("session_list", "GET", "/process/session", "List the sessions."),
    tool("session_delete", "DELETE", "/process/session/{sessionId}", "Delete a session, ending its shell and commands."),
    // Git.
    tool("git_clone", "POST", "/git/clone", "Clone a repository into a directory."),
    tool("git_status", "GET", "/git/status", "The status of a repository: branch, ahead/behind, changed files."),
    tool("git_add", "POST", "/git/add", "Stage files for the next commit."),
    tool("git_commit", "POST", "/git/commit", "Commit the staged changes with a message and an author."),
    tool("git_branches", "GET", "/git/branches", "List the branches of a repository."),
    tool("git_create_branch", "POST", "/git/branches", "Create a branch."),
    tool("git_checkout", "POST", "/git/checkout", "Check out a branch or commit."),
    tool("git_log", "GET", "/git/history", "The commit history of the current branch."),
    tool("git_pull", "POST", "/git/pull", "Pull the current branch from its remote."),
    tool("git_push", "POST", "/git/push", "Push the current branch to its remote."),
    // Language servers.
    tool("lsp_start", "POST", "/lsp/start", "Start a language server for a project (python, typescript, javascript, or a configured one)."),
    tool("lsp_did_open", "POST", "/lsp/did-open", "Tell the language server a document was opened (before asking for its completions or symbols)."),
    tool("lsp_completions", "POST", "/lsp/completions", "Completion items at a position in a document."),
    tool("lsp_document_symbols", "GET", "/lsp/document-symbols", "The symbols defined in a document."),
    tool("lsp_workspace_symbols", "GET", "/lsp/workspacesymbols", "Search the project's symbols by name."),
    // The desktop (relayed to the computer-use agent; a desktop that cannot run is a tool error).
    tool("desktop_start", "POST", "/computeruse/start", "Start the desktop (X server, window manager, VNC) and wait until it is ready."),
    tool("desktop_status", "GET", "/computeruse/status", "Whether the desktop is running."),
    tool("desktop_stop", "POST", "/computeruse/stop", "Stop the desktop."),
    tool("screenshot", "GET", "/computeruse/screenshot/compressed",
        "A screenshot of the desktop as an image (JPEG by default; `format: png` for lossless, `scale` below 1 for a smaller image).")
        .kind(Kind::Image)
        .defaults(&[("format", "jpeg"), ("quality", "80")]),
    tool("mouse_move", "POST", "/computeruse/mouse/move", "Move the mouse pointer to a position."),
    tool("mouse_click", "POST", "/computeruse/mouse/click", "Click at a position (left button by default; double or more clicks, modifiers)."),
    tool("mouse_drag", "POST", "/computeruse/mouse/drag", "Drag from one position to another with a button held."),
    tool("mouse_scroll", "POST", "/computeruse/mouse/scroll", "Scroll at a position, up or down."),
    tool("keyboard_type", "POST", "/computeruse/keyboard/type", "Type text."),
    tool("keyboard_press", "POST", "/computeruse/keyboard/key", "Press a key, optionally with modifiers."),
    tool("keyboard_hotkey", "POST", "/computeruse/keyboard/hotkey", "Press a key combination such as `ctrl+c`."),
    tool("windows_list", "GET", "/computeruse/display/windows", "List the open windows with their positions and sizes."),
    tool("a11y_find", "POST", "/computeruse/a11y/find", "Find elements in the accessibility tree by role, name or state."),
    tool("a11y_invoke", "POST", "/computeruse/a11y/node/invoke", "Invoke an action (such as click) on an accessibility element found with a11y_find."),
    tool("a11y_set_value", "POST", "/computeruse/a11y/node/value", "Set the value of an editable accessibility element (a text field)."),
    tool("a11y_wait", "POST", "/computeruse/a11y/wait", "Wait until an accessibility condition holds (an element appears, goes, or gains or loses a state such as focused); answers as soon as it does, an error at the timeout."),
    tool("clipboard_get", "GET", "/computeruse/clipboard", "Read the desktop's clipboard (text)."),
    tool("clipboard_set", "POST", "/computeruse/clipboard", "Put text on the desktop's clipboard; it stays there for pasting after the call."),
];

#[cfg(test)]
mod tests {
    use super::TOOLS;

    #[test]
    fn names_are_unique_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for t in TOOLS {
            assert!(seen.insert(t.name), "{} twice", t.name);
            assert!(
                !t.name.is_empty()
                    && t.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{} is not snake_case",
                t.name
            );
            assert!(!t.description.is_empty(), "{} has no description", t.name);
        }
    }
}
