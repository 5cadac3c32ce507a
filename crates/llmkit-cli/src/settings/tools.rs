//! The tools group: the MCP servers the config file names (`[mcp.NAME]` tables), checked
//! once so that a bad table fails every command the same way, before anything starts.

use std::collections::BTreeMap;

use llmkit_tools::McpSpec;

use crate::config_file::McpFileConfig;
use crate::error::CliError;

/// The resolved `[mcp.*]` tables, by name.
#[derive(Debug, Clone, Default)]
pub(crate) struct ToolSettings {
    pub mcp: BTreeMap<String, McpSpec>,
}

impl ToolSettings {
    pub(super) fn resolve(tables: &BTreeMap<String, McpFileConfig>) -> Result<Self, CliError> {
        let mut mcp = BTreeMap::new();
        for (name, t) in tables {
            let spec = llmkit_tools::spec::mcp_from_table(
                name,
                t.command.clone(),
                t.args.clone(),
                t.url.clone(),
            )
            .map_err(|e| CliError::config(e.to_string(), e.hint().unwrap_or_default()))?;
            mcp.insert(name.clone(), spec);
        }
        Ok(Self { mcp })
    }
}
