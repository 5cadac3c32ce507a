//! The set of tools one run offers the model: their definitions for the request, and calls
//! dispatched by name to a command or an MCP server, with the arguments checked first.

use std::sync::Arc;
use std::time::Duration;

use llmkit_types::{FunctionDef, Tool};
use serde_json::Value;

use crate::command;
use crate::error::ToolError;
use crate::mcp::McpServer;
use crate::spec::{CommandSpec, McpSpec};

/// What a tool call gave back: the text for the model, and whether it is an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolOutput {
    pub text: String,
    pub is_error: bool,
}

impl ToolOutput {
    pub fn ok(text: String) -> Self {
        Self {
            text,
            is_error: false,
        }
    }

    pub fn error(text: String) -> Self {
        Self {
            text,
            is_error: true,
        }
    }

    /// The text sent back to the model as the tool message.
    pub fn for_model(&self) -> String {
        if self.is_error {
            format!("error: {}", self.text)
        } else {
            self.text.clone()
        }
    }
}

/// What the user sees of a tool.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolInfo {
    pub name: String,
    pub description: Option<String>,
    pub parameters: Value,
    /// `command`, or `mcp:SERVER`.
    pub source: String,
    /// The MCP server marks it destructive (or does not say it is read-only).
    pub destructive: bool,
}

enum Backing {
    Command(CommandSpec),
    Mcp { server: Arc<McpServer> },
}

struct Entry {
    info: ToolInfo,
    backing: Backing,
    validator: Option<jsonschema::Validator>,
}

/// A call the model asked for that cannot be made as asked: it goes back to the model as
/// an error result, and the loop counts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub String);

/// The tools of one run.
#[derive(Default)]
pub struct Toolbox {
    tools: Vec<Entry>,
    servers: Vec<Arc<McpServer>>,
}

impl std::fmt::Debug for Toolbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.tools.iter().map(|t| &t.info.name))
            .finish()
    }
}

impl Toolbox {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }

    /// The tools, in the order they were added.
    pub fn infos(&self) -> impl Iterator<Item = &ToolInfo> {
        self.tools.iter().map(|t| &t.info)
    }

    pub fn info(&self, name: &str) -> Option<&ToolInfo> {
        self.entry(name).map(|e| &e.info)
    }

    fn entry(&self, name: &str) -> Option<&Entry> {
        self.tools.iter().find(|t| t.info.name == name)
    }

    fn push(&mut self, info: ToolInfo, backing: Backing) -> Result<(), ToolError> {
        if self.entry(&info.name).is_some() {
            return Err(ToolError::Duplicate(info.name));
        }
        // A schema the validator refuses is checked by the model only; MCP servers' schemas
        // are theirs to get right.
        let validator = jsonschema::validator_for(&info.parameters).ok();
        self.tools.push(Entry {
            info,
            backing,
            validator,
        });
        Ok(())
    }

    /// Adds a command-backed tool after checking that its program exists (`sh`'s
    /// `command -v`, so builtins, PATH lookups and paths all count).
    pub async fn add_command(&mut self, spec: CommandSpec) -> Result<(), ToolError> {
        let program = shlex::split(&spec.command)
            .and_then(|w| w.into_iter().next())
            .unwrap_or_default();
        let found = tokio::process::Command::new("sh")
            .arg("-c")
            .arg("command -v -- \"$1\" >/dev/null")
            .arg("sh")
            .arg(&program)
            .status()
            .await
            .map(|s| s.success())
            .unwrap_or(false);
        if !found {
            return Err(ToolError::Command {
                name: spec.name.clone(),
                command: spec.command.clone(),
                message: format!("`{program}` is not a command on PATH nor an executable file"),
            });
        }
        let info = ToolInfo {
            name: spec.name.clone(),
            description: spec.description.clone(),
            parameters: spec.parameters.clone(),
            source: "command".into(),
            destructive: false,
        };
        self.push(info, Backing::Command(spec))
    }

    /// Connects to an MCP server and adds its tools.
    pub async fn add_mcp(
        &mut self,
        spec: &McpSpec,
        connect_timeout: Duration,
        call_timeout: Duration,
    ) -> Result<(), ToolError> {
        let server = Arc::new(McpServer::connect(spec, connect_timeout, call_timeout).await?);
        for t in &server.tools {
            let annotations = t.annotations.as_ref();
            // The MCP spec's defaults: a tool is destructive unless it says otherwise.
            let read_only = annotations.and_then(|a| a.read_only_hint).unwrap_or(false);
            let destructive =
                !read_only && annotations.and_then(|a| a.destructive_hint).unwrap_or(true);
            let info = ToolInfo {
                name: t.name.to_string(),
                description: t.description.as_ref().map(|d| d.to_string()),
                parameters: Value::Object((*t.input_schema).clone()),
                source: format!("mcp:{}", server.name),
                destructive,
            };
            self.push(
                info,
                Backing::Mcp {
                    server: Arc::clone(&server),
                },
            )?;
        }
        self.servers.push(server);
        Ok(())
    }

    /// The definitions sent with each request.
    pub fn definitions(&self) -> Vec<Tool> {
        self.tools
            .iter()
            .map(|t| {
                Tool::function(FunctionDef {
                    name: t.info.name.clone(),
                    description: t.info.description.clone(),
                    parameters: Some(t.info.parameters.clone()),
                    strict: None,
                })
            })
            .collect()
    }

    /// The arguments as an object, when they name a tool and match its schema.
    pub fn check(
        &self,
        name: &str,
        arguments: &str,
    ) -> Result<serde_json::Map<String, Value>, Malformed> {
        let Some(entry) = self.entry(name) else {
            let names: Vec<&str> = self.tools.iter().map(|t| t.info.name.as_str()).collect();
            return Err(Malformed(format!(
                "there is no tool named `{name}`; the tools are: {}",
                names.join(", ")
            )));
        };
        let text = if arguments.trim().is_empty() {
            "{}"
        } else {
            arguments
        };
        let value: Value = serde_json::from_str(text).map_err(|e| {
            Malformed(format!(
                "the arguments for `{name}` are not valid JSON ({e}); call it again with a JSON object"
            ))
        })?;
        if let Some(v) = &entry.validator {
            let errors: Vec<String> = v
                .iter_errors(&value)
                .map(|e| e.to_string())
                .take(3)
                .collect();
            if !errors.is_empty() {
                return Err(Malformed(format!(
                    "the arguments for `{name}` do not match its schema: {}",
                    errors.join("; ")
                )));
            }
        }
        match value {
            Value::Object(map) => Ok(map),
            _ => Err(Malformed(format!(
                "the arguments for `{name}` must be a JSON object"
            ))),
        }
    }

    /// Runs the tool with checked arguments.
    pub async fn call(
        &self,
        name: &str,
        arguments: serde_json::Map<String, Value>,
    ) -> Result<ToolOutput, ToolError> {
        let Some(entry) = self.entry(name) else {
            return Ok(ToolOutput::error(format!(
                "there is no tool named `{name}`"
            )));
        };
        match &entry.backing {
            Backing::Command(spec) => {
                let json = Value::Object(arguments).to_string();
                command::run(spec, &json).await
            }
            Backing::Mcp { server } => Ok(server.call(name, arguments).await),
        }
    }
}
