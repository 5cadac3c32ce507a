//! Writing results to stdout: text, streamed deltas and JSON; write errors (such as a closed
//! pipe) propagate so `main` can exit quietly.

use std::io::Write;

use anyhow::Result;
use serde::Serialize;

/// Writes text to stdout and flushes (so streamed tokens appear at once).
pub(crate) fn write(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// Writes a line to stdout.
pub(crate) fn line(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}

/// Writes a value as pretty JSON on one object per invocation.
pub(crate) fn json<T: Serialize>(value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    line(&text)
}

/// Masks a secret for display: `sk-…abcd`.
pub(crate) fn mask_key(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 8 {
        return "…".to_string();
    }
    let prefix: String = key
        .split('-')
        .next()
        .filter(|p| p.len() < 6 && key.contains('-'))
        .map_or(String::new(), |p| format!("{p}-"));
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{prefix}…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_masked() {
        assert_eq!(mask_key("sk-proj-abcdefghijklmnop1234"), "sk-…1234");
        assert_eq!(mask_key("abcdefghijklmnopqrst"), "…qrst");
        assert_eq!(mask_key("short"), "…");
        assert!(!mask_key("sk-abcdefghijklmnopqrstuvwxyz").contains("abcdef"));
    }
}
