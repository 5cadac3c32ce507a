//! Running a command-backed tool: `sh -c COMMAND`, the arguments as JSON on stdin, stdout as
//! the result, under a timeout. A failure becomes an error result for the model, never a
//! crash; only a command that cannot be started at all is a `ToolError`.

use std::process::Stdio;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use crate::error::ToolError;
use crate::spec::CommandSpec;
use crate::toolbox::ToolOutput;

/// The most of a tool's stdout (and stderr) kept; the rest is cut with a note, so that a
/// chatty tool cannot blow up the next request.
pub const MAX_OUTPUT_BYTES: usize = 256 * 1024;

/// Runs `spec` with `arguments` (JSON text) on its stdin.
pub(crate) async fn run(spec: &CommandSpec, arguments: &str) -> Result<ToolOutput, ToolError> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(&spec.command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| ToolError::Command {
            name: spec.name.clone(),
            command: spec.command.clone(),
            message: e.to_string(),
        })?;
    let mut stdin = child.stdin.take();
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let work = async {
        if let Some(mut s) = stdin.take() {
            // A tool that never reads its stdin closes the pipe: not a failure.
            let _ = s.write_all(arguments.as_bytes()).await;
            drop(s);
        }
        let (out, err) = tokio::join!(read_capped(stdout.as_mut()), read_capped(stderr.as_mut()));
        let status = child.wait().await;
        (status, out, err)
    };
    let Ok((status, out, err)) = tokio::time::timeout(spec.timeout, work).await else {
        // `kill_on_drop` ends the child with the future.
        return Ok(ToolOutput::error(format!(
            "the tool `{}` timed out after {:.1} s and was stopped",
            spec.name,
            spec.timeout.as_secs_f64()
        )));
    };
    let status = status.map_err(|e| ToolError::Command {
        name: spec.name.clone(),
        command: spec.command.clone(),
        message: e.to_string(),
    })?;
    if status.success() {
        return Ok(ToolOutput::ok(out));
    }
    // 127: `sh` found no such command.
    if status.code() == Some(127) {
        return Err(ToolError::Command {
            name: spec.name.clone(),
            command: spec.command.clone(),
            message: err.trim().to_string(),
        });
    }
    let code = status
        .code()
        .map_or_else(|| "a signal".to_string(), |c| format!("status {c}"));
    let detail = if err.trim().is_empty() { out } else { err };
    Ok(ToolOutput::error(format!(
        "the tool `{}` failed (exit {code}): {}",
        spec.name,
        detail.trim()
    )))
}

async fn read_capped<R: tokio::io::AsyncRead + Unpin>(r: Option<&mut R>) -> String {
    let Some(r) = r else { return String::new() };
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let mut cut = false;
    loop {
        match r.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = MAX_OUTPUT_BYTES.saturating_sub(buf.len());
                buf.extend_from_slice(&chunk[..n.min(room)]);
                // Keep draining, so the child is never blocked on a full pipe.
                cut |= n > room;
            }
        }
    }
    let mut text = String::from_utf8_lossy(&buf).into_owned();
    if cut {
        text.push_str(&format!("\n[output cut at {MAX_OUTPUT_BYTES} bytes]"));
    }
    text
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn tool(command: &str, timeout_ms: u64) -> CommandSpec {
        CommandSpec {
            name: "t".into(),
            description: None,
            parameters: serde_json::json!({"type": "object"}),
            command: command.into(),
            timeout: Duration::from_millis(timeout_ms),
        }
    }

    #[tokio::test]
    async fn the_arguments_arrive_on_stdin_and_stdout_is_the_result() {
        let out = run(&tool("cat", 5000), r#"{"city":"Paris"}"#)
            .await
            .unwrap();
        assert_eq!(out, ToolOutput::ok(r#"{"city":"Paris"}"#.to_string()));
    }

    #[tokio::test]
    async fn a_failing_tool_is_an_error_result_with_its_stderr() {
        let out = run(&tool("echo no city >&2; exit 3", 5000), "{}")
            .await
            .unwrap();
        assert!(out.is_error);
        assert!(
            out.text.contains("exit status 3") && out.text.contains("no city"),
            "{}",
            out.text
        );
    }

    #[tokio::test]
    async fn a_hanging_tool_is_stopped_at_its_timeout() {
        let started = std::time::Instant::now();
        let out = run(&tool("sleep 30", 200), "{}").await.unwrap();
        assert!(
            out.is_error && out.text.contains("timed out"),
            "{}",
            out.text
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn a_missing_command_is_a_tool_error() {
        let e = run(&tool("/no/such/tool-xyz", 5000), "{}")
            .await
            .unwrap_err();
        assert!(matches!(e, ToolError::Command { .. }), "{e}");
    }

    #[tokio::test]
    async fn huge_output_is_cut() {
        let out = run(
            &tool("head -c 1000000 /dev/zero | tr '\\0' a", 10_000),
            "{}",
        )
        .await
        .unwrap();
        assert!(out.text.len() < MAX_OUTPUT_BYTES + 100);
        assert!(out.text.ends_with("bytes]"));
    }
}
