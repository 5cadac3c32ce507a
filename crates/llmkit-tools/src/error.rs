//! `ToolError`: what can go wrong defining, starting or running tools, and the tool loop's
//! stops, each with a `hint()`.

use llmkit_client::ClientError;

/// A failure of tool definitions, tool sources or the tool loop.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ToolError {
    /// A tools file or `--tool` flag that does not parse.
    #[error("{what}: {message}")]
    Spec { what: String, message: String },
    /// Two tools with one name.
    #[error("two tools are named `{0}`")]
    Duplicate(String),
    /// A tool's command cannot be started (not found, not executable).
    #[error("tool `{name}`: the command `{command}` cannot be run: {message}")]
    Command {
        name: String,
        command: String,
        message: String,
    },
    /// An MCP server that cannot be started or reached, or that breaks the protocol.
    #[error("MCP server `{server}`: {message}")]
    Mcp { server: String, message: String },
    /// The loop reached `--max-tool-calls`.
    #[error("the model asked for more than {limit} tool calls")]
    TooManyCalls { limit: usize },
    /// The model sent unusable arguments again after being told twice.
    #[error("the model sent malformed arguments for `{name}` {count} times: {message}")]
    MalformedArguments {
        name: String,
        count: usize,
        message: String,
    },
    /// A step of the loop failed in the request pipeline (budget, cap, server).
    #[error("the tool loop stopped after {steps} step(s): {source}")]
    Step {
        steps: usize,
        #[source]
        source: Box<ClientError>,
    },
}

impl ToolError {
    pub(crate) fn spec(what: impl Into<String>, message: impl std::fmt::Display) -> Self {
        Self::Spec {
            what: what.into(),
            message: message.to_string(),
        }
    }

    pub(crate) fn mcp(server: impl Into<String>, message: impl std::fmt::Display) -> Self {
        Self::Mcp {
            server: server.into(),
            message: message.to_string(),
        }
    }

    /// What to do about it.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            Self::Spec { .. } => "a tool is `--tool NAME=COMMAND`, or a `[tools.NAME]` table with \
                                  `command`, `description`, `parameters` (a JSON Schema) and \
                                  `timeout_secs`; see the README's Tools section"
                .into(),
            Self::Duplicate(_) => {
                "give each tool (and each MCP server's tools) a distinct name".into()
            }
            Self::Command { .. } => {
                "check the command's path and that it is executable (it runs under `sh -c`)".into()
            }
            Self::Mcp { .. } => {
                "check that the server starts on its own (`--mcp \"COMMAND ARGS\"` runs \
                                 it over stdio; `--mcp-url` needs a streamable HTTP endpoint)"
                    .into()
            }
            Self::TooManyCalls { .. } => {
                "raise --max-tool-calls, or ask for something that needs fewer calls".into()
            }
            Self::MalformedArguments { .. } => {
                "try a stronger model, or describe the tool's parameters more plainly".into()
            }
            Self::Step { source, .. } => return source.hint(),
        })
    }

    /// The pipeline error behind a failed step, for callers that map client errors.
    pub fn client_error(&self) -> Option<&ClientError> {
        match self {
            Self::Step { source, .. } => Some(source.as_ref()),
            _ => None,
        }
    }
}
