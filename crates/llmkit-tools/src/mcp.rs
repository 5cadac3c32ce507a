//! MCP servers on the official `rmcp` SDK: started over stdio (a child process) or reached
//! over streamable HTTP, their tools listed once at start and called by name.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::{CallToolRequestParams, ContentBlock};
use rmcp::service::RunningService;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{RoleClient, ServiceExt};
use serde_json::Value;
use tokio::io::AsyncReadExt;

use crate::error::ToolError;
use crate::spec::{McpSpec, McpTransport};
use crate::toolbox::ToolOutput;

/// The most of a server's stderr kept for error messages.
const STDERR_TAIL: usize = 2048;

/// A connected MCP server and the tools it offers.
pub struct McpServer {
    pub(crate) name: String,
    client: RunningService<RoleClient, ()>,
    pub(crate) tools: Vec<rmcp::model::Tool>,
    stderr: Arc<Mutex<String>>,
    call_timeout: Duration,
}

impl std::fmt::Debug for McpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpServer")
            .field("name", &self.name)
            .field("tools", &self.tools.len())
            .finish_non_exhaustive()
    }
}

impl McpServer {
    /// Starts or reaches the server, does the MCP handshake and lists its tools, within
    /// `timeout` (a server that exits, hangs or answers garbage is an error naming it).
    pub async fn connect(
        spec: &McpSpec,
        timeout: Duration,
        call_timeout: Duration,
    ) -> Result<Self, ToolError> {
        let stderr = Arc::new(Mutex::new(String::new()));
        let name = spec.name.clone();
        let fail = |stderr: &Arc<Mutex<String>>, message: String| {
            let tail = stderr
                .lock()
                .map(|s| s.trim().to_string())
                .unwrap_or_default();
            let message = if tail.is_empty() {
                message
            } else {
                format!("{message}; it printed: {tail}")
            };
            ToolError::mcp(&name, message)
        };
        let connect = async {
            let client = match &spec.transport {
                McpTransport::Stdio { program, args } => {
                    let mut cmd = tokio::process::Command::new(program);
                    cmd.args(args);
                    let (transport, err) = TokioChildProcess::builder(cmd)
                        .stderr(std::process::Stdio::piped())
                        .spawn()
                        .map_err(|e| {
                            ToolError::mcp(&name, format!("`{program}` cannot be started: {e}"))
                        })?;
                    if let Some(mut err) = err {
                        let sink = Arc::clone(&stderr);
                        tokio::spawn(async move {
                            let mut buf = [0u8; 1024];
                            while let Ok(n) = err.read(&mut buf).await {
                                if n == 0 {
                                    break;
                                }
                                if let Ok(mut s) = sink.lock() {
                                    s.push_str(&String::from_utf8_lossy(&buf[..n]));
                                    if s.len() > STDERR_TAIL {
                                        let cut = s.len() - STDERR_TAIL;
                                        let cut = (cut..s.len())
                                            .find(|i| s.is_char_boundary(*i))
                                            .unwrap_or(0);
                                        s.drain(..cut);
                                    }
                                }
                            }
                        });
                    }
                    ().serve(transport)
                        .await
                        .map_err(|e| fail(&stderr, format!("the MCP handshake failed: {e}")))?
                }
                McpTransport::Http { url } => {
                    // The workspace's reqwest brings no TLS provider of its own.
                    llmkit_client::install_crypto_provider();
                    let transport = StreamableHttpClientTransport::from_uri(url.as_str());
                    ().serve(transport)
                        .await
                        .map_err(|e| fail(&stderr, format!("the MCP handshake failed: {e}")))?
                }
            };
            let tools = client
                .list_all_tools()
                .await
                .map_err(|e| fail(&stderr, format!("listing its tools failed: {e}")))?;
            Ok::<_, ToolError>((client, tools))
        };
        let (client, tools) = tokio::time::timeout(timeout, connect).await.map_err(|_| {
            fail(
                &stderr,
                format!(
                    "it did not finish the MCP handshake within {} s",
                    timeout.as_secs()
                ),
            )
        })??;
        Ok(Self {
            name: spec.name.clone(),
            client,
            tools,
            stderr,
            call_timeout,
        })
    }

    /// Calls tool `tool` with `arguments` (an object). Failures the server reports, and a
    /// server that dies or stalls mid-call, are error results for the model.
    pub(crate) async fn call(
        &self,
        tool: &str,
        arguments: serde_json::Map<String, Value>,
    ) -> ToolOutput {
        let params = CallToolRequestParams::new(tool.to_string()).with_arguments(arguments);
        let call = tokio::time::timeout(self.call_timeout, self.client.call_tool(params)).await;
        match call {
            Err(_) => ToolOutput::error(format!(
                "the MCP tool `{tool}` timed out after {} s",
                self.call_timeout.as_secs()
            )),
            Ok(Err(e)) => {
                let tail = self
                    .stderr
                    .lock()
                    .map(|s| s.trim().to_string())
                    .unwrap_or_default();
                ToolOutput::error(format!(
                    "the MCP server `{}` failed the call to `{tool}`: {e}{}",
                    self.name,
                    if tail.is_empty() {
                        String::new()
                    } else {
                        format!(" ({tail})")
                    }
                ))
            }
            Ok(Ok(result)) => {
                let mut text = Vec::new();
                for block in &result.content {
                    match block {
                        ContentBlock::Text(t) => text.push(t.text.clone()),
                        ContentBlock::Image(_) => text.push("[an image]".into()),
                        ContentBlock::Audio(_) => text.push("[an audio clip]".into()),
                        ContentBlock::Resource(r) => text.push(
                            serde_json::to_string(&r.resource)
                                .unwrap_or_else(|_| "[a resource]".into()),
                        ),
                        ContentBlock::ResourceLink(r) => text.push(format!("[resource {}]", r.uri)),
                        // Content kinds newer than this SDK.
                        _ => text.push("[content]".into()),
                    }
                }
                if text.is_empty()
                    && let Some(s) = &result.structured_content
                {
                    text.push(s.to_string());
                }
                let text = text.join("\n");
                if result.is_error == Some(true) {
                    ToolOutput::error(text)
                } else {
                    ToolOutput::ok(text)
                }
            }
        }
    }
}
