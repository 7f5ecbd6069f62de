//! The toolbox as a Model Context Protocol server on `/mcp`.
//!
//! Each MCP tool is one toolbox operation ([`tools::TOOLS`]): its input schema is built from
//! the operation in the daemon's own OpenAPI document ([`schema`]), and a call goes through the
//! in-process toolbox router ([`service`]), so a tool takes what the HTTP route takes and is
//! checked by the same request layer. [`api`] serves the protocol with the official SDK.

pub mod api;
pub mod schema;
pub mod service;
pub mod tools;
