//! Tool definitions as data: command-backed tools (`--tool NAME=COMMAND` or a tools file's
//! `[tools.NAME]` tables) and MCP servers (`--mcp "COMMAND ARGS"`, `--mcp-url URL`, or a
//! config file's `[mcp.NAME]` tables). Parsed from text the binary read; no IO here.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::error::ToolError;

/// How long a command-backed tool may run when its definition does not say.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// A function the model may call, answered by running a command: the arguments go to its
/// stdin as JSON, its stdout is the result.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandSpec {
    pub name: String,
    pub description: Option<String>,
    /// JSON Schema of the arguments (an object schema).
    pub parameters: Value,
    /// Run with `sh -c`, so pipes and quoting work as in a shell.
    pub command: String,
    pub timeout: Duration,
}

/// Where an MCP server is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum McpTransport {
    /// A child process spoken to over stdin/stdout.
    Stdio { program: String, args: Vec<String> },
    /// A streamable HTTP endpoint.
    Http { url: String },
}

/// One MCP server whose tools the model may call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpSpec {
    /// Shown in messages; tools keep their own names.
    pub name: String,
    pub transport: McpTransport,
}

/// The schema of a tool that declares none: any object.
fn any_object() -> Value {
    serde_json::json!({"type": "object"})
}

/// `NAME=COMMAND` from `--tool`.
pub fn parse_tool_flag(flag: &str) -> Result<CommandSpec, ToolError> {
    let what = format!("--tool {flag}");
    let (name, command) = flag
        .split_once('=')
        .ok_or_else(|| ToolError::spec(&what, "expected NAME=COMMAND"))?;
    let name = check_name(&what, name.trim())?;
    let command = command.trim();
    if command.is_empty() {
        return Err(ToolError::spec(&what, "the command is empty"));
    }
    Ok(CommandSpec {
        name,
        description: None,
        parameters: any_object(),
        command: command.to_string(),
        timeout: DEFAULT_TIMEOUT,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolsFile {
    #[serde(default)]
    tools: BTreeMap<String, ToolTable>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolTable {
    command: String,
    description: Option<String>,
    parameters: Option<toml::Value>,
    timeout_secs: Option<f64>,
}

/// The `[tools.NAME]` tables of a tools file (`origin` names it in errors).
pub fn parse_tools_file(text: &str, origin: &str) -> Result<Vec<CommandSpec>, ToolError> {
    let file: ToolsFile = toml::from_str(text).map_err(|e| ToolError::spec(origin, e.message()))?;
    if file.tools.is_empty() {
        return Err(ToolError::spec(
            origin,
            "it defines no `[tools.NAME]` table",
        ));
    }
    file.tools
        .into_iter()
        .map(|(name, t)| {
            let what = format!("{origin}: tools.{name}");
            let name = check_name(&what, &name)?;
            if t.command.trim().is_empty() {
                return Err(ToolError::spec(&what, "`command` is empty"));
            }
            let parameters = match t.parameters {
                None => any_object(),
                Some(p) => {
                    let v = serde_json::to_value(p).map_err(|e| ToolError::spec(&what, e))?;
                    check_schema(&what, &v)?;
                    v
                }
            };
            let timeout = match t.timeout_secs {
                None => DEFAULT_TIMEOUT,
                Some(s) if s.is_finite() && s > 0.0 && s <= 86_400.0 => Duration::from_secs_f64(s),
                Some(s) => {
                    return Err(ToolError::spec(
                        &what,
                        format!("timeout_secs = {s} is not between 0 and 86400"),
                    ));
                }
            };
            Ok(CommandSpec {
                name,
                description: t.description,
                parameters,
                command: t.command,
                timeout,
            })
        })
        .collect()
}

/// `--mcp "COMMAND ARGS"`: split like a shell would (quotes, no expansion).
pub fn parse_mcp_command(line: &str) -> Result<McpSpec, ToolError> {
    let what = format!("--mcp {line}");
    let words = shlex::split(line).ok_or_else(|| ToolError::spec(&what, "unbalanced quotes"))?;
    let mut words = words.into_iter();
    let program = words
        .next()
        .ok_or_else(|| ToolError::spec(&what, "the command is empty"))?;
    let name = std::path::Path::new(&program)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("mcp")
        .to_string();
    Ok(McpSpec {
        name,
        transport: McpTransport::Stdio {
            program,
            args: words.collect(),
        },
    })
}

/// `--mcp-url URL`.
pub fn parse_mcp_url(url: &str) -> Result<McpSpec, ToolError> {
    let what = format!("--mcp-url {url}");
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(ToolError::spec(what, "expected an http:// or https:// URL"));
    }
    Ok(McpSpec {
        name: url.to_string(),
        transport: McpTransport::Http {
            url: url.to_string(),
        },
    })
}

/// A config file's `[mcp.NAME]` table: `command` (with optional `args`) or `url`.
pub fn mcp_from_table(
    name: &str,
    command: Option<String>,
    args: Vec<String>,
    url: Option<String>,
) -> Result<McpSpec, ToolError> {
    let what = format!("[mcp.{name}]");
    let transport = match (command, url) {
        (Some(program), None) if !program.trim().is_empty() => {
            McpTransport::Stdio { program, args }
        }
        (None, Some(url)) => parse_mcp_url(&url)?.transport,
        (Some(_), Some(_)) => {
            return Err(ToolError::spec(what, "set `command` or `url`, not both"));
        }
        _ => return Err(ToolError::spec(what, "set `command` (and `args`) or `url`")),
    };
    Ok(McpSpec {
        name: name.to_string(),
        transport,
    })
}

/// OpenAI's rule for function names: 1 to 64 of `a-z A-Z 0-9 _ -`.
fn check_name(what: &str, name: &str) -> Result<String, ToolError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(name.to_string())
    } else {
        Err(ToolError::spec(
            what,
            format!("`{name}` is not a tool name (1 to 64 letters, digits, `_` or `-`)"),
        ))
    }
}

fn check_schema(what: &str, schema: &Value) -> Result<(), ToolError> {
    if schema.get("type").and_then(Value::as_str) != Some("object") {
        return Err(ToolError::spec(
            what,
            "`parameters` must be an object schema ({ type = \"object\", properties = … })",
        ));
    }
    jsonschema::validator_for(schema).map(|_| ()).map_err(|e| {
        ToolError::spec(
            what,
            format!("`parameters` is not a valid JSON Schema: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tool_flag_is_name_equals_command() {
        let t = parse_tool_flag("now=date -u").unwrap();
        assert_eq!((t.name.as_str(), t.command.as_str()), ("now", "date -u"));
        assert_eq!(t.parameters, any_object());
        for bad in ["now", "=date", "now=", "bad name=date", "ü=date"] {
            let e = parse_tool_flag(bad).unwrap_err();
            assert!(matches!(e, ToolError::Spec { .. }), "{bad}: {e}");
        }
    }

    #[test]
    fn a_tools_file_holds_tables_with_schemas_and_timeouts() {
        let text = r#"
            [tools.get_weather]
            description = "Weather for a city"
            command = "./weather.sh"
            timeout_secs = 2.5
            parameters = { type = "object", properties = { city = { type = "string" } }, required = ["city"] }
        "#;
        let tools = parse_tools_file(text, "tools.toml").unwrap();
        assert_eq!(tools.len(), 1);
        assert_eq!(tools[0].timeout, Duration::from_millis(2500));
        assert_eq!(tools[0].parameters["required"][0], "city");
    }

    #[test]
    fn bad_tools_files_say_what_is_wrong() {
        let cases = [
            ("", "no `[tools.NAME]`"),
            ("[tools.a]\ncommand = \"x\"\nfoo = 1", "unknown field"),
            ("[tools.a]\ncommand = \"\"", "`command` is empty"),
            (
                "[tools.a]\ncommand = \"x\"\ntimeout_secs = -1",
                "not between",
            ),
            (
                "[tools.a]\ncommand = \"x\"\nparameters = { type = \"string\" }",
                "object schema",
            ),
            (
                "[tools.a]\ncommand = \"x\"\nparameters = { type = \"object\", required = 3 }",
                "valid JSON Schema",
            ),
            ("[tools.a]\ncommand = [", "tools.toml"),
        ];
        for (text, want) in cases {
            let e = parse_tools_file(text, "tools.toml")
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn mcp_commands_split_like_a_shell() {
        let s = parse_mcp_command("npx -y '@scope/server everything' stdio").unwrap();
        assert_eq!(
            s.transport,
            McpTransport::Stdio {
                program: "npx".into(),
                args: vec![
                    "-y".into(),
                    "@scope/server everything".into(),
                    "stdio".into()
                ]
            }
        );
        assert!(parse_mcp_command("").is_err());
        assert!(parse_mcp_command("npx 'open").is_err());
        assert!(parse_mcp_url("ftp://x").is_err());
        assert!(mcp_from_table("a", Some("x".into()), vec![], Some("http://y".into())).is_err());
        assert!(mcp_from_table("a", None, vec![], None).is_err());
    }
}
