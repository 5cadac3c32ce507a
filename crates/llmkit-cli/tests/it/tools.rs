//! Tool calling from the command line against the mock's `MOCK_TOOLS:` scripts: command
//! tools (`--tool`, `--tools FILE`), MCP's reference server (`--mcp`, `--mcp-url`), the
//! loop's limits, `--redact` through the loop, `--max-cost` before the step that would
//! cross it, the session's tool turns, and the errors of bad tool input.

use std::path::{Path, PathBuf};
use std::process::Command;

use llmkit_testkit::MOCK_TOOLS;
use llmkit_testkit::fixtures::require_tool;
use serde_json::{Value, json};

use crate::support::{Llmkit, Mock, assert_clear_error, stderr, stdout};

fn kit(mock: &Mock, dir: &Path) -> Llmkit {
    let mut k = Llmkit::against(mock);
    k.cmd
        .env("LLMKIT_STORE", dir.join("llmkit.db"))
        .env("LLMKIT_CONFIG", dir.join("config.toml"));
    k
}

fn script(steps: Value) -> String {
    format!("{MOCK_TOOLS} {steps}")
}

fn chat_bodies(mock: &Mock) -> Vec<Value> {
    mock.requests_to("/chat/completions")
        .into_iter()
        .map(|r| r["body"].clone())
        .collect()
}

/// A tool script in `dir`: records its stdin in `NAME.in`, prints `OUTPUT`.
fn recording_tool(dir: &Path, name: &str, output: &str) -> String {
    let path = dir.join(format!("{name}.sh"));
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\ncat > '{}/{name}.in'\nprintf '%s' '{output}'\n",
            dir.display()
        ),
    )
    .unwrap();
    format!("sh {}", path.display())
}

/// The most recent session with its messages (`sessions show --json`).
fn last_session(mock: &Mock, dir: &Path) -> Value {
    let o = kit(mock, dir).args(["sessions", "list", "--json"]).run();
    let list: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let id = list[0]["id"].as_str().unwrap().to_string();
    let o = kit(mock, dir)
        .args(["sessions", "show", "--json", &id])
        .run();
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_str(&stdout(&o)).unwrap()
}

#[test]
fn ask_runs_a_command_tool_and_answers_with_its_result() {
    let mock = Mock::default();
    let dir = tempfile::tempdir().unwrap();
    let tool = recording_tool(dir.path(), "weather", "18 C and sunny");
    let prompt = script(json!([[{"name": "get_weather", "arguments": {"city": "Paris"}}]]));
    let o = kit(&mock, dir.path())
        .args([
            "ask",
            "--tool",
            &format!("get_weather={tool}"),
            "--tools-debug",
            &prompt,
        ])
        .run();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "tool results: 18 C and sunny\n");
    assert!(
        stderr(&o).contains(r#"tool call: get_weather {"city":"Paris"}"#),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("tool result: get_weather: 18 C and sunny"),
        "{}",
        stderr(&o)
    );
    let input = std::fs::read_to_string(dir.path().join("weather.in")).unwrap();
    assert_eq!(input, r#"{"city":"Paris"}"#);
    // Two steps, each one ledger row; the session holds the call and its result.
    let o = kit(&mock, dir.path()).args(["usage", "--json"]).run();
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["total"]["requests"], 2, "{v}");
    let v = last_session(&mock, dir.path());
    let roles: Vec<&str> = v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "assistant", "tool", "assistant"], "{v}");
    assert_eq!(
        v["messages"][1]["tool_calls"][0]["function"]["name"],
        "get_weather"
    );
    // `-c` sends the stored tool turns back as they were.
    let o = kit(&mock, dir.path()).args(["ask", "-c", "thanks"]).run();
    assert!(o.status.success(), "{}", stderr(&o));
    let last = chat_bodies(&mock).pop().unwrap();
    let sent: Vec<&str> = last["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(sent, ["user", "assistant", "tool", "assistant", "user"]);
}

#[test]
fn the_tool_loop_runs_over_the_responses_api_with_parallel_calls() {
    let mock = Mock::default();
    let dir = tempfile::tempdir().unwrap();
    let weather = recording_tool(dir.path(), "weather", "18 C");
    let time = recording_tool(dir.path(), "clock", "09:00");
    let prompt = script(json!([[
        {"name": "get_weather", "arguments": {"city": "Oslo"}},
        {"name": "get_time", "arguments": {"zone": "CET"}}
    ]]));
    for api in ["responses", "chat"] {
        let o = kit(&mock, dir.path())
            .args(["--api", api, "ask", "--no-stream"])
            .args(["--tool", &format!("get_weather={weather}")])
            .args(["--tool", &format!("get_time={time}")])
            .args([&prompt])
            .run();
        assert!(o.status.success(), "{api}: {}", stderr(&o));
        assert_eq!(stdout(&o), "tool results: 18 C | 09:00\n", "{api}");
    }
    let bodies: Vec<Value> = mock
        .requests_to("/responses")
        .into_iter()
        .map(|r| r["body"].clone())
        .collect();
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    // The second step sends both calls and both outputs back as Responses items.
    let kinds: Vec<&str> = bodies[1]["input"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"].as_str().unwrap_or("message"))
        .collect();
    assert_eq!(
        kinds,
        [
            "message",
            "function_call",
            "function_call",
            "function_call_output",
            "function_call_output"
        ],
        "{}",
        bodies[1]
    );
    assert_eq!(bodies[0]["tools"][0]["type"], "function");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("clock.in")).unwrap(),
        r#"{"zone":"CET"}"#
    );
}

#[test]
fn batch_ask_rows_run_the_tool_loop_and_resume_with_the_same_command() {
    let mock = Mock::default();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let upper = d.join("upper.sh");
    std::fs::write(&upper, "#!/bin/sh\ntr a-z A-Z\n").unwrap();
    let tool = format!("sh {}", upper.display());
    let row = |city: &str| {
        let steps = json!([[{"name": "shout", "arguments": {"city": city}}]]);
        json!({"id": city, "text": script(steps)}).to_string()
    };
    std::fs::write(
        d.join("rows.jsonl"),
        format!("{}\n{}\n", row("oslo"), row("rome")),
    )
    .unwrap();
    let out = d.join("out.jsonl");
    let run = |extra: &[&str]| {
        kit(&mock, d)
            .args(["batch", "run", &d.join("rows.jsonl").display().to_string()])
            .args(["-o", &out.display().to_string(), "--task", "ask", "--quiet"])
            .args(["--tool", &format!("shout={tool}")])
            .args(extra)
            .run()
    };
    let o = run(&[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let text = |i: usize| {
        lines[i]["result"]["text"]
            .as_str()
            .or_else(|| lines[i]["response"]["body"]["choices"][0]["message"]["content"].as_str())
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(text(0), r#"tool results: {"CITY":"OSLO"}"#, "{}", lines[0]);
    assert_eq!(text(1), r#"tool results: {"CITY":"ROME"}"#, "{}", lines[1]);
    // Each row took two steps; each step is a ledger row.
    assert_eq!(chat_bodies(&mock).len(), 4);
    // Running the same command again finds the job done: nothing more is sent.
    let o = run(&[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(chat_bodies(&mock).len(), 4);
    // The flags a batch cannot honour are refused before anything runs.
    for (extra, needle) in [
        (vec!["--approve"], "are for ask and chat"),
        (vec!["--via", "openai-batch"], "cannot call local tools"),
    ] {
        let o = run(&extra);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert_clear_error(&o, needle);
    }
}

#[test]
fn task_commands_let_the_model_call_tools() {
    let mock = Mock::default();
    let dir = tempfile::tempdir().unwrap();
    let tool = recording_tool(dir.path(), "lookup", "Q3 revenue: 12 M");
    let text = script(json!([[{"name": "lookup", "arguments": {"metric": "revenue"}}]]));
    let o = kit(&mock, dir.path())
        .args(["summarize", "--tool", &format!("lookup={tool}"), &text])
        .run();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "tool results: Q3 revenue: 12 M");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("lookup.in")).unwrap(),
        r#"{"metric":"revenue"}"#
    );
    // The task's request offered the tool, and the result went back before the answer.
    let bodies = chat_bodies(&mock);
    assert_eq!(bodies[0]["tools"][0]["function"]["name"], "lookup");
    assert!(
        bodies[1]["messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["role"] == "tool"),
        "{}",
        bodies[1]
    );
    // A loop that stops is the task's error, with the loop's hint.
    let o = kit(&mock, dir.path())
        .args([
            "summarize",
            "--max-tool-calls",
            "1",
            "--tool",
            &format!("lookup={tool}"),
        ])
        .args([&script(json!([[
            {"name": "lookup", "arguments": {}},
            {"name": "lookup", "arguments": {}}
        ]]))])
        .run();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_clear_error(&o, "more than 1 tool call");
}

#[test]
fn a_tools_file_gives_schemas_and_timeouts() {
    let mock = Mock::default();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tools.toml");
    std::fs::write(
        &file,
        r#"
[tools.get_weather]
description = "The weather in a city"
command = "printf 'rain in '; cat"
parameters = { type = "object", properties = { city = { type = "string" } }, required = ["city"] }

[tools.slow]
description = "Never answers"
command = "sleep 60"
timeout_secs = 0.5
"#,
    )
    .unwrap();
    let prompt = script(
        json!([[{"name": "get_weather", "arguments": {"city": "Oslo"}},
                                {"name": "slow", "arguments": {}}]]),
    );
    let started = std::time::Instant::now();
    let o = kit(&mock, dir.path())
        .args(["ask", "--tools", file.to_str().unwrap(), &prompt])
        .run();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(started.elapsed().as_secs() < 20);
    assert_eq!(
        stdout(&o),
        "tool results: rain in {\"city\":\"Oslo\"} | error: the tool `slow` timed out after 0.5 s and was stopped\n"
    );
    let first = &chat_bodies(&mock)[0];
    assert_eq!(
        first["tools"][0]["function"]["description"],
        "The weather in a city"
    );
    assert_eq!(
        first["tools"][0]["function"]["parameters"]["required"][0],
        "city"
    );
}

#[test]
fn the_chain_limit_stops_with_a_clear_error_and_keeps_the_calls() {
    let mock = Mock::default();
    let dir = tempfile::tempdir().unwrap();
    let step = json!([{"name": "now", "arguments": {}}]);
    let prompt = script(json!([step, step, step, step]));
    let o = kit(&mock, dir.path())
        .args([
            "ask",
            "--tool",
            "now=date -u",
            "--max-tool-calls",
            "2",
            &prompt,
        ])
        .run();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_clear_error(&o, "more than 2 tool calls");
    assert!(stderr(&o).contains("--max-tool-calls"));
    assert_eq!(chat_bodies(&mock).len(), 3);
    let v = last_session(&mock, dir.path());
    let tools = v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .count();
    assert_eq!(tools, 2, "{v}");
}

#[test]
fn redaction_holds_through_the_loop() {
    let mock = Mock::default();
    let dir = tempfile::tempdir().unwrap();
    let tool = recording_tool(
        dir.path(),
        "crm",
        "bob@example.com is customer 42, phone +1 415 555 2671",
    );
    let prompt = script(json!([[{"name": "lookup", "arguments": {"email": "bob@example.com"}}]]));
    let o = kit(&mock, dir.path())
        .args([
            "--redact",
            "ask",
            "--tool",
            &format!("lookup={tool}"),
            &prompt,
        ])
        .run();
    assert!(o.status.success(), "{}", stderr(&o));
    // The tool saw the real address; the user sees the real answer.
    let input = std::fs::read_to_string(dir.path().join("crm.in")).unwrap();
    assert_eq!(input, r#"{"email":"bob@example.com"}"#);
    assert_eq!(
        stdout(&o),
        "tool results: bob@example.com is customer 42, phone +1 415 555 2671\n"
    );
    // The provider never did: not in the prompt, not in the tool result sent back.
    let log = serde_json::to_string(&mock.server.requests()).unwrap();
    for secret in ["bob@example.com", "415 555 2671"] {
        assert!(!log.contains(secret), "{secret} reached the mock: {log}");
    }
    assert!(log.contains("<EMAIL_1>"), "{log}");
}

#[test]
fn max_cost_stops_the_loop_before_the_step_that_would_cross_it() {
    let mock = Mock::default();
    let dir = tempfile::tempdir().unwrap();
    // The tool's answer makes the next prompt about 8,000 tokens ($0.0012 at gpt-4o-mini's
    // price): over the cap with the answer's budget, while the first step is far under it.
    let big = dir.path().join("big.sh");
    std::fs::write(
        &big,
        "#!/bin/sh\nyes 'word' | head -n 8000 | tr '\\n' ' '\n",
    )
    .unwrap();
    let prompt = script(json!([[{"name": "big", "arguments": {}}]]));
    let o = kit(&mock, dir.path())
        .args([
            "ask",
            "-m",
            "gpt-4o-mini",
            "--max-cost",
            "0.001",
            "--max-tokens",
            "100",
            "--tool",
            &format!("big=sh {}", big.display()),
            &prompt,
        ])
        .run();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_clear_error(&o, "the tool loop stopped after 1 step(s)");
    assert!(stderr(&o).contains("--max-cost"), "{}", stderr(&o));
    // The first step was sent; the second never was.
    assert_eq!(chat_bodies(&mock).len(), 1);
}

#[test]
fn bad_tool_input_gets_one_clear_error_and_sends_nothing() {
    let mock = Mock::default();
    let dir = tempfile::tempdir().unwrap();
    let bad_file = dir.path().join("bad.toml");
    std::fs::write(
        &bad_file,
        "[tools.x]\ncommand = \"cat\"\nparameters = { type = \"string\" }\n",
    )
    .unwrap();
    let cases: Vec<(Vec<String>, i32, &str)> = vec![
        (
            vec!["--tools".into(), "/no/such/tools.toml".into()],
            2,
            "/no/such/tools.toml",
        ),
        (
            vec!["--tools".into(), bad_file.display().to_string()],
            2,
            "object schema",
        ),
        (
            vec!["--tool".into(), "now".into()],
            2,
            "expected NAME=COMMAND",
        ),
        (
            vec!["--tool".into(), "x=/no/such/program".into()],
            2,
            "cannot be run",
        ),
        (
            vec![
                "--tool".into(),
                "a=cat".into(),
                "--tool".into(),
                "a=cat".into(),
            ],
            2,
            "two tools are named `a`",
        ),
        (
            vec!["--mcp".into(), "sh -c 'echo broken >&2; exit 3'".into()],
            1,
            "MCP server",
        ),
        (
            vec!["--mcp".into(), "sh -c 'echo garbage; sleep 1'".into()],
            1,
            "MCP server",
        ),
        (
            vec!["--mcp".into(), "/no/such/server".into()],
            1,
            "cannot be started",
        ),
        (
            vec!["--mcp-url".into(), "ftp://x".into()],
            2,
            "http:// or https://",
        ),
    ];
    for (flags, code, needle) in cases {
        let mut args = vec!["ask".to_string()];
        args.extend(flags.clone());
        args.push("hello".into());
        let o = kit(&mock, dir.path()).args(&args).run();
        assert_eq!(o.status.code(), Some(code), "{flags:?}: {}", stderr(&o));
        assert_clear_error(&o, needle);
    }
    assert!(chat_bodies(&mock).is_empty());
    // Nothing was stored either.
    let o = kit(&mock, dir.path()).args(["sessions", "list"]).run();
    assert!(stdout(&o).starts_with("no sessions yet"), "{}", stdout(&o));
}

/// MCP's reference server, installed once with `npm ci` from the pinned lock beside this
/// file into target/mcp; `None` (SKIP, or a failure under CI) without node and npm.
fn everything_server() -> Option<PathBuf> {
    require_tool(&["node"])?;
    require_tool(&["npm"])?;
    let modules = crate::support::npm_installed(
        "mcp",
        "@modelcontextprotocol/server-everything/dist/index.js",
    )?;
    Some(modules.join("@modelcontextprotocol/server-everything/dist/index.js"))
}

#[test]
fn the_mcp_reference_server_is_called_over_stdio_and_http() {
    let Some(server) = everything_server() else {
        return;
    };
    let mock = Mock::default();
    let dir = tempfile::tempdir().unwrap();
    let prompt = script(
        json!([[{"name": "echo", "arguments": {"message": "hi from llmkit"}},
                                {"name": "get-sum", "arguments": {"a": 2, "b": 40}}]]),
    );
    let mcp = format!("node {} stdio", server.display());
    let o = kit(&mock, dir.path())
        .args(["ask", "--mcp", &mcp, "--tool", "now=date -u", &prompt])
        .run();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.starts_with("tool results: Echo: hi from llmkit | "),
        "{out}"
    );
    assert!(out.contains("42"), "{out}");
    // Its tools and the command tool were offered together, with their schemas.
    let first = &chat_bodies(&mock)[0];
    let names: Vec<&str> = first["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"echo") && names.contains(&"get-sum") && names.contains(&"now"),
        "{names:?}"
    );
    // The same server named in the config file.
    std::fs::write(
        dir.path().join("config.toml"),
        format!(
            "[mcp.everything]\ncommand = \"node\"\nargs = [\"{}\", \"stdio\"]\n",
            server.display()
        ),
    )
    .unwrap();
    let prompt = script(json!([[{"name": "echo", "arguments": {"message": "named"}}]]));
    let o = kit(&mock, dir.path())
        .args(["ask", "--mcp", "everything", &prompt])
        .run();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "tool results: Echo: named\n");
    // Over streamable HTTP.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new("node")
        .args([server.to_str().unwrap(), "streamableHttp"])
        .env("PORT", port.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/mcp");
    let up = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    assert!(up, "the reference server did not listen on {port}");
    let prompt = script(json!([[{"name": "echo", "arguments": {"message": "over http"}}]]));
    let o = kit(&mock, dir.path())
        .args(["ask", "--mcp-url", &url, &prompt])
        .run();
    let _ = child.kill();
    let _ = child.wait();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "tool results: Echo: over http\n");
}
