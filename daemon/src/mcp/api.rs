//! `/mcp`: the Model Context Protocol's Streamable HTTP transport, served by the official SDK
//! (rmcp), over the tools of [`super::service`].
//!
//! The transport runs stateless with JSON answers: every tool is one request and one answer,
//! and the state a client works on (files, sessions, repositories, the desktop) lives in the
//! daemon, not in an MCP session. So there is no session table to grow, any number of clients
//! work side by side, no server-sent event stream stays open (a `GET` is 405), and nothing of
//! `/mcp` outlives a tool call when the daemon drains at shutdown. Clients of every protocol
//! revision the SDK knows are served: the `initialize` handshake of the older ones and the
//! per-request `server/discover` of the current one.

use std::sync::Arc;

use axum::Router;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation, ListToolsResult,
    PaginatedRequestParams, ResourceContents, ServerCapabilities, ServerConfig, Tool, ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};

use super::service::{Content, MAX_OUTPUT, Outcome, Toolbox};

/// What the server says of itself to a client.
const INSTRUCTIONS: &str = "Tools to work inside this sandbox: run commands and programs, read, write and search \
files, keep shell sessions, use git and language servers, and see and drive the desktop. Each tool is one call \
of the sandbox's toolbox API; a failed call is a tool error whose text starts with the API's error code.";

/// The `/mcp` route over `inner`, the toolbox router its tools call (without `/mcp`), whose
/// operations the document `doc` gives describes. The tools and their schemas are built on the first `/mcp`
/// request, not here: rendering the document and deriving 51 schemas would otherwise be the
/// largest part of the daemon's start-up, paid by every sandbox whether it uses MCP or not.
pub fn routes(
    inner: Router,
    doc: impl Fn() -> Arc<utoipa::openapi::OpenApi> + Clone + Send + Sync + 'static,
) -> Router {
    let server: Arc<std::sync::OnceLock<Server>> = Arc::default();
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(None)
        // The SDK's default accepts only loopback Host names (against DNS rebinding of a
        // local server). The daemon is reached through the sandbox proxy under any name, and
        // `/mcp` gives nothing the rest of the port does not: the authentication in front of
        // the whole port is what guards it.
        .disable_allowed_hosts();
    let service = StreamableHttpService::new(
        // The SDK asks for a server per request; they all share the one built first.
        move || Ok(server.get_or_init(|| Server::build(inner.clone(), &doc())).clone()),
        // Stateless: no session is ever made, so none is kept.
        Arc::new(NeverSessionManager::default()),
        config,
    );
    Router::new().route_service("/mcp", service)
}

/// The MCP server: the tools, each with its protocol description built once.
#[derive(Clone)]
pub struct Server {
    toolbox: Toolbox,
    tools: Arc<[Tool]>,
}

impl Server {
    /// The server over the tools `doc` describes, calling `inner`.
    fn build(inner: Router, doc: &utoipa::openapi::OpenApi) -> Self {
        let doc = serde_json::to_value(doc).unwrap_or_default();
        let (toolbox, errors) = Toolbox::new(inner, &doc, MAX_OUTPUT);
        for e in errors {
            // A tool out of step with the document is left out rather than offered wrong.
            tracing::error!("MCP tool left out: {e}");
        }
        Server::new(toolbox)
    }

    pub fn new(toolbox: Toolbox) -> Self {
        let tools = toolbox
            .tools()
            .iter()
            .map(|t| {
                // GET operations change nothing. Others are left to the protocol's default
                // (may be destructive): a command or a write can destroy anything.
                let annotations = ToolAnnotations::new().read_only(t.spec.method == "GET");
                Tool::new(t.spec.name, t.spec.description, t.op.schema.clone()).with_annotations(annotations)
            })
            .collect();
        Server { toolbox, tools }
    }
}

impl ServerHandler for Server {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(
                Implementation::new("daytona-toolbox", crate::state::VERSION)
                    .with_title("Daytona sandbox toolbox"),
            )
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(self.tools.to_vec()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.tools.iter().find(|t| t.name == name).cloned()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let args = request.arguments.unwrap_or_default();
        // The SDK hands the HTTP request's head to the handler.
        let authorization = context
            .extensions
            .get::<axum::http::request::Parts>()
            .and_then(|parts| parts.headers.get(axum::http::header::AUTHORIZATION))
            .cloned();
        // The SDK runs the handler in a task of its own, outside the routes' panic guard: a
        // panic would leave the request unanswered, so it becomes an error answer here.
        let call = futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(self.toolbox.call(
            &request.name,
            args,
            authorization,
        )));
        // A client that cancels the call drops the request it made (a command's process group
        // is killed with it, as when an HTTP client goes away).
        let outcome = tokio::select! {
            outcome = call => match outcome {
                Ok(outcome) => outcome,
                Err(_) => {
                    tracing::error!(tool = %request.name, "an MCP tool call panicked");
                    return Err(McpError::internal_error("the tool failed unexpectedly", None));
                }
            },
            () = context.ct.cancelled() => return Err(McpError::internal_error("the call was cancelled", None)),
        };
        match outcome {
            Some(outcome) => Ok(result(outcome).into()),
            // An unknown tool is a protocol error, not a tool result (the spec's rule).
            None => Err(McpError::invalid_params(format!("unknown tool {:?}", request.name), None)),
        }
    }
}

fn result(outcome: Outcome) -> CallToolResult {
    let content = outcome
        .content
        .into_iter()
        .map(|c| match c {
            Content::Text(text) => ContentBlock::text(text),
            Content::Image { data, mime } => ContentBlock::image(data, mime),
            Content::Blob { uri, data } => ContentBlock::resource(
                ResourceContents::blob(data, uri).with_mime_type("application/octet-stream"),
            ),
        })
        .collect();
    if outcome.is_error { CallToolResult::error(content) } else { CallToolResult::success(content) }
}

#[cfg(test)]
mod tests;
