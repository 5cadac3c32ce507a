//! Tool calling for llmkit: tools backed by commands or by MCP servers (`Toolbox`), and the
//! loop that runs a model's tool calls through the request pipeline (`ToolLoop`).
//!
//! Definitions are parsed from text the binary read (`spec`); this crate reads no files and
//! no environment, and starts processes only for the tools and servers it was given.

mod command;
mod error;
mod mcp;
pub mod spec;
mod tool_loop;
mod toolbox;

pub use command::MAX_OUTPUT_BYTES;
pub use error::ToolError;
pub use mcp::McpServer;
pub use spec::{CommandSpec, McpSpec, McpTransport};
pub use tool_loop::{
    Approval, Approve, DEFAULT_MAX_CALLS, LoopResult, MALFORMED_RETRIES, Observe, ToolLoop,
};
pub use toolbox::{Malformed, ToolInfo, ToolOutput, Toolbox};
