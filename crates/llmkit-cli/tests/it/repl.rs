//! The chat REPL as a person uses it, in a real terminal (tmux): type, watch the reply
//! stream, interrupt it with Ctrl-C, `/save`, `/exit`; the tool approval prompt; Ctrl-C on
//! a background response. Skipped, with a message, when tmux
//! is not installed (`.ci/run` installs it, and sets `LLMKIT_REQUIRE_TOOLS=1` so that a
//! missing tmux fails there).

use std::process::Command;
use std::time::{Duration, Instant};

use llmkit_testkit::MockConfig;
use llmkit_testkit::fixtures::{REQUIRE_TOOLS_VAR, require_tool, skip_or_fail};

use crate::support::{Llmkit, Mock, stdout};

struct Tmux {
    session: String,
}

impl Tmux {
    fn start(command: &str) -> Option<Self> {
        // Unique per test: the tests of one binary run in parallel in one process.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let session = format!("llmkit-repl-{}-{n}", std::process::id());
        let ok = Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-s",
                &session,
                "-x",
                "160",
                "-y",
                "50",
                command,
            ])
            .status()
            .ok()?
            .success();
        ok.then_some(Self { session })
    }

    fn keys(&self, keys: &[&str]) {
        let status = Command::new("tmux")
            .args(["send-keys", "-t", &self.session])
            .args(keys)
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.session, "-S", "-200"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen satisfies `pred`, failing with the screen after `secs`.
    fn wait_for(&self, what: &str, secs: u64, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let screen = self.screen();
            if pred(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn alive(&self) -> bool {
        Command::new("tmux")
            .args(["has-session", "-t", &self.session])
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.session])
            .status();
    }
}

#[test]
fn repl_streams_interrupts_saves_and_exits() {
    if require_tool(&["tmux"]).is_none() {
        return;
    }
    // A slow stream, so Ctrl-C lands mid-reply.
    let mock = Mock::start(MockConfig {
        tokens_per_sec: Some(8.0),
        ..MockConfig::default()
    });
    let k = Llmkit::against(&mock);
    let home = k.home.path();
    let command = format!(
        "env -u OPENAI_ORG_ID -u OPENAI_PROJECT_ID -u LLMKIT_MODEL -u LLMKIT_PROFILE HOME={home} XDG_CONFIG_HOME={home}/config XDG_DATA_HOME={home}/data OPENAI_BASE_URL={url} OPENAI_API_KEY=sk-test {bin} chat; sleep 30",
        home = home.display(),
        url = mock.base_url(),
        bin = env!("CARGO_BIN_EXE_llmkit"),
    );
    let Some(tmux) = Tmux::start(&command) else {
        skip_or_fail(REQUIRE_TOOLS_VAR, "tmux could not start a session");
        return;
    };
    tmux.wait_for("the prompt", 20, |s| s.contains(">>>"));

    // Type a question; the reply (the mock echoes) streams in.
    tmux.keys(&["hello from the terminal", "Enter"]);
    tmux.wait_for("the streamed reply", 20, |s| {
        s.matches("hello from the terminal").count() >= 2 && s.trim_end().ends_with(">>>")
    });

    // A long reply, interrupted with Ctrl-C: the session stays open.
    let long = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty";
    tmux.keys(&[long, "Enter"]);
    tmux.wait_for("the reply to start", 20, |s| {
        s.matches("one two").count() >= 2
    });
    tmux.keys(&["C-c"]);
    let screen = tmux.wait_for("the interruption", 20, |s| s.contains("[interrupted]"));
    assert!(
        !screen.contains("nineteen twenty\n>>>"),
        "the reply was not cut:\n{screen}"
    );
    tmux.wait_for("the prompt after Ctrl-C", 20, |s| {
        s.trim_end().ends_with(">>>")
    });

    tmux.keys(&["/save terminal-session", "Enter"]);
    tmux.wait_for("the save notice", 20, |s| {
        s.contains("saved as `terminal-session`")
    });
    tmux.keys(&["/exit", "Enter"]);
    // The pane keeps running `sleep` after llmkit exits; the prompt must not come back.
    std::thread::sleep(Duration::from_millis(500));
    let before = tmux.screen();
    tmux.keys(&["still there?", "Enter"]);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !tmux.screen().contains("still there?\nstill there?"),
        "llmkit answered after /exit:\n{before}"
    );
    assert!(tmux.alive());

    // The saved session is in the store, with both turns.
    let mut k2 = Llmkit::bare();
    k2.cmd
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_DATA_HOME", home.join("data"));
    let o = k2.args(["sessions", "list"]).run();
    assert!(stdout(&o).contains("terminal-session"), "{}", stdout(&o));
}

/// `llmkit ARGS` in a clean environment against `mock`, then its exit code on screen.
fn terminal_command(mock: &Mock, home: &std::path::Path, args: &str) -> String {
    format!(
        "env -u OPENAI_ORG_ID -u OPENAI_PROJECT_ID -u LLMKIT_MODEL -u LLMKIT_PROFILE HOME={home} XDG_CONFIG_HOME={home}/config XDG_DATA_HOME={home}/data OPENAI_BASE_URL={url} OPENAI_API_KEY=sk-test {bin} {args}; echo EXIT=$?; sleep 30",
        home = home.display(),
        url = mock.base_url(),
        bin = env!("CARGO_BIN_EXE_llmkit"),
    )
}

#[test]
fn approve_asks_in_the_terminal_before_each_tool_call() {
    if require_tool(&["tmux"]).is_none() {
        return;
    }
    let mock = Mock::default();
    let k = Llmkit::against(&mock);
    let home = k.home.path();
    let marker = home.join("ran");
    let script = r#"'MOCK_TOOLS: [[{"name": "touch_it", "arguments": {}}], [{"name": "touch_it", "arguments": {}}]]'"#;
    let args = format!(
        "ask --approve --tool 'touch_it=echo x >> {}' {script}",
        marker.display()
    );
    let Some(tmux) = Tmux::start(&terminal_command(&mock, home, &args)) else {
        skip_or_fail(REQUIRE_TOOLS_VAR, "tmux could not start a session");
        return;
    };
    tmux.wait_for("the first approval prompt", 20, |s| {
        s.contains("run tool `touch_it` with {}? [y/N]")
    });
    // Declined: the tool does not run, and the model is told so.
    tmux.keys(&["n", "Enter"]);
    tmux.wait_for("the second approval prompt", 20, |s| {
        s.matches("run tool `touch_it`").count() >= 2
    });
    assert!(!marker.exists(), "a declined tool ran");
    tmux.keys(&["y", "Enter"]);
    let screen = tmux.wait_for("the answer", 20, |s| s.contains("EXIT="));
    assert!(screen.contains("EXIT=0"), "{screen}");
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "x\n");
    assert!(screen.contains("tool results:"), "{screen}");
}

#[test]
fn ctrl_c_cancels_a_background_response_at_the_server() {
    if require_tool(&["tmux"]).is_none() {
        return;
    }
    // The response stays in progress for as long as the test needs.
    let mock = Mock::start(MockConfig {
        response_polls: 10_000,
        ..MockConfig::default()
    });
    let k = Llmkit::against(&mock);
    let home = k.home.path();
    let args = "--api responses ask --background 'a long report'";
    let Some(tmux) = Tmux::start(&terminal_command(&mock, home, args)) else {
        skip_or_fail(REQUIRE_TOOLS_VAR, "tmux could not start a session");
        return;
    };
    // Wait until llmkit is polling the background response.
    let deadline = Instant::now() + Duration::from_secs(20);
    while mock
        .server
        .requests()
        .iter()
        .filter(|r| r["method"] == "GET")
        .count()
        == 0
    {
        assert!(Instant::now() < deadline, "no poll:\n{}", tmux.screen());
        std::thread::sleep(Duration::from_millis(100));
    }
    tmux.keys(&["C-c"]);
    let screen = tmux.wait_for("the exit", 20, |s| s.contains("EXIT="));
    assert!(screen.contains("EXIT=130"), "{screen}");
    assert!(screen.contains("was cancelled at the server"), "{screen}");
    let created = mock.requests_to("/responses");
    assert_eq!(created[0]["body"]["background"], true, "{created:?}");
    let cancels = mock.requests_to("/cancel");
    assert_eq!(cancels.len(), 1, "{:?}", mock.server.requests());
    assert_eq!(cancels[0]["status"], 200);
}
