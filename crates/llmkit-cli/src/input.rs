//! Reading user input: prompt arguments, files and stdin, with clear errors for empty,
//! binary or non-UTF-8 input.

use std::io::{IsTerminal, Read};
use std::path::Path;

use crate::error::CliError;

/// Reads all of stdin as UTF-8.
pub(crate) fn read_stdin() -> Result<String, CliError> {
    let mut buf = Vec::new();
    std::io::stdin()
        .lock()
        .read_to_end(&mut buf)
        .map_err(|e| CliError::failure(format!("cannot read stdin: {e}"), None))?;
    decode(buf, "stdin")
}

/// True when stdin is piped or redirected rather than a terminal.
pub(crate) fn stdin_is_piped() -> bool {
    !std::io::stdin().is_terminal()
}

/// Reads a file (or stdin for `-`) as UTF-8 text.
pub(crate) fn read_text_file(path: &Path) -> Result<String, CliError> {
    if path.as_os_str() == "-" {
        return read_stdin();
    }
    let bytes = std::fs::read(path).map_err(|e| {
        CliError::usage(
            format!("cannot read {}: {e}", path.display()),
            "check the path and its permissions",
        )
    })?;
    decode(bytes, &path.display().to_string())
}

/// Decodes UTF-8, naming the byte offset of the first invalid sequence and refusing binary
/// data (NUL bytes).
pub(crate) fn decode(bytes: Vec<u8>, what: &str) -> Result<String, CliError> {
    if let Some(pos) = bytes.iter().position(|&b| b == 0) {
        return Err(CliError::usage(
            format!("{what} looks like a binary file (NUL byte at offset {pos})"),
            "pass a text file",
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        CliError::usage(
            format!(
                "{what} is not valid UTF-8 (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
            "convert it first, e.g. `iconv -f latin1 -t utf-8 FILE`",
        )
    })
}

/// The prompt for `ask`: the argument, stdin for `-` or no argument, and piped stdin
/// appended as context when both are given.
pub(crate) fn prompt_from(arg: Option<&str>) -> Result<String, CliError> {
    let text = match arg {
        None | Some("-") => {
            if arg.is_none() && !stdin_is_piped() {
                return Err(CliError::usage(
                    "no prompt given",
                    "pass a PROMPT argument or pipe text on stdin, e.g. `echo hi | llmkit ask`",
                ));
            }
            read_stdin()?
        }
        Some(p) if stdin_is_piped() => {
            let context = read_stdin()?;
            if context.trim().is_empty() {
                p.to_string()
            } else {
                format!("{p}\n\n{}", context.trim_end())
            }
        }
        Some(p) => p.to_string(),
    };
    if text.trim().is_empty() {
        return Err(CliError::usage(
            "the prompt is empty",
            "pass some text as PROMPT or on stdin",
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_utf8_names_the_offset() {
        let e = decode(b"abc\xff".to_vec(), "f").unwrap_err();
        assert!(e.message.contains("offset 3"), "{}", e.message);
        let e = decode(b"a\0b".to_vec(), "f").unwrap_err();
        assert!(e.message.contains("binary"));
        assert_eq!(decode("héllo".as_bytes().to_vec(), "f").unwrap(), "héllo");
    }
}
