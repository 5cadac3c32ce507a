//! The chat REPL as a person uses it, in a real terminal (tmux): type, watch the reply
//! stream, interrupt it with Ctrl-C, `/save`, `/exit`. Skipped, with a message, when tmux
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
        let session = format!("llmkit-repl-{}", std::process::id());
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
