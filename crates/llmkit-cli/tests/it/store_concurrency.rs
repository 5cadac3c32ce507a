//! One store written by many `llmkit` processes at once (never "database is locked"), and
//! killed with SIGKILL in the middle of its writes (the file stays sound and no committed
//! row is lost): issue 22 item 5.

use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::Duration;

use llmkit_testkit::MockConfig;
use llmkit_testkit::rng::SplitMix64;

use crate::support::{Llmkit, Mock, stderr};

/// `llmkit` against `mock` writing the store at `store` (each process has its own home).
fn on_store(mock: &Mock, store: &Path) -> Llmkit {
    let mut k = Llmkit::against(mock);
    k.cmd.env("LLMKIT_STORE", store);
    k
}

/// `PRAGMA integrity_check` of the store file.
fn integrity(store: &Path) -> String {
    let conn = rusqlite::Connection::open(store).unwrap();
    conn.query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0))
        .unwrap()
}

fn count(store: &Path, sql: &str) -> i64 {
    let conn = rusqlite::Connection::open(store).unwrap();
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// `count`, or 0 while the store is not there or still being created (progress polling).
fn count_so_far(store: &Path, sql: &str) -> i64 {
    if !store.exists() {
        return 0;
    }
    rusqlite::Connection::open_with_flags(store, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .and_then(|conn| conn.query_row(sql, [], |r| r.get(0)))
        .unwrap_or(0)
}

fn spawn(k: &mut Llmkit, stdin: Option<&str>) -> Child {
    use std::io::Write;
    let mut child = k
        .cmd
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes()).unwrap();
    }
    child
}

#[test]
fn issue22_eight_processes_writing_one_store_never_see_it_locked() {
    let mock = Mock::start(MockConfig {
        latency_ms: 5,
        ..MockConfig::default()
    });
    let dir = tempfile::tempdir().unwrap();
    // A store that does not exist yet: the first processes race to create and migrate it.
    let store = dir.path().join("shared.db");
    for round in 0..3 {
        let mut children: Vec<(String, Child)> = Vec::new();
        for p in 0..6 {
            // Distinct prompts, so each one writes a cache entry and a ledger row.
            let prompt = format!("round {round} process {p}");
            let mut k = on_store(&mock, &store);
            k.args(["ask", "-m", "gpt-4o-mini", "--no-stream", &prompt]);
            children.push((prompt, spawn(&mut k, None)));
        }
        for s in 0..2 {
            let name = format!("s{s}");
            let mut k = on_store(&mock, &store);
            k.args(["chat", "-s", &name, "-m", "gpt-4o-mini"]);
            let turns = format!("r{round} one\nr{round} two\nr{round} three\n");
            children.push((name, spawn(&mut k, Some(&turns))));
        }
        for (what, child) in children {
            let o: Output = child.wait_with_output().unwrap();
            let err = stderr(&o);
            assert!(o.status.success(), "round {round} {what}: {err}");
            assert!(!err.contains("locked"), "round {round} {what}: {err}");
        }
    }
    assert_eq!(integrity(&store), "ok");
    // 6 asks and 2 sessions × 3 turns, three times over.
    assert_eq!(count(&store, "SELECT COUNT(*) FROM ledger"), 3 * (6 + 6));
    // Each `ask` stores its own conversation; the two chat sessions were resumed by name.
    assert_eq!(count(&store, "SELECT COUNT(*) FROM sessions"), 3 * 6 + 2);
    assert_eq!(
        count(
            &store,
            "SELECT COUNT(*) FROM sessions WHERE name IN ('s0', 's1')"
        ),
        2
    );
    assert_eq!(
        count(
            &store,
            "SELECT COUNT(*) FROM messages m JOIN sessions s ON m.session_id = s.id \
             WHERE s.name IN ('s0', 's1') AND m.role = 'user'"
        ),
        3 * 2 * 3
    );
    assert_eq!(
        count(&store, "SELECT COUNT(*) FROM messages WHERE role = 'user'"),
        3 * (6 + 2 * 3)
    );
}

/// Runs `command(round)` `rounds` times, each killed with SIGKILL at a random moment after
/// it has committed something (`progress` of the store grew); checks the file after each
/// kill. Returns how many runs were killed before they finished.
fn kill_at_random(
    mock: &Mock,
    store: &Path,
    rounds: usize,
    seed: u64,
    progress: impl Fn(&Path) -> i64,
    mut command: impl FnMut(usize) -> (Vec<String>, Option<String>),
) -> usize {
    let mut rng = SplitMix64::new(seed);
    let mut killed = 0;
    for round in 0..rounds {
        let (args, stdin) = command(round);
        let start = progress(store);
        let mut k = on_store(mock, store);
        k.args(&args);
        let mut child = spawn(&mut k, stdin.as_deref());
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while progress(store) <= start
            && child.try_wait().unwrap().is_none()
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(rng.next_u64() % 150));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            killed += 1;
        }
        let _ = child.wait_with_output().unwrap();
        assert_eq!(integrity(store), "ok", "after round {round}");
    }
    killed
}

#[test]
fn issue22_sigkill_mid_chat_turn_keeps_the_store_sound_and_committed_turns() {
    let mock = Mock::start(MockConfig {
        latency_ms: 30,
        ..MockConfig::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store.db");
    let mut before = 0;
    let killed = kill_at_random(&mock, &store, 12, 22, user_turns, |round| {
        // The user turns committed so far survive every later kill.
        let now = user_turns(&store);
        assert!(now >= before, "round {round}: {now} turns, {before} before");
        before = now;
        let turns: String = (0..20)
            .map(|t| format!("round {round} turn {t}\n"))
            .collect();
        (
            ["chat", "-s", "killed", "-m", "gpt-4o-mini"]
                .map(String::from)
                .to_vec(),
            Some(turns),
        )
    });
    assert!(killed >= 6, "only {killed} runs were killed");
    assert!(
        user_turns(&store) > 0,
        "the kills must land after turns were stored"
    );
    // Every stored assistant turn answers a stored user turn.
    let assistant = count(
        &store,
        "SELECT COUNT(*) FROM messages WHERE role = 'assistant'",
    );
    assert!(assistant <= user_turns(&store));
    // The session still works after the kills.
    let o = on_store(&mock, &store)
        .args(["chat", "-s", "killed", "-m", "gpt-4o-mini"])
        .run_with_stdin("after the kills\n");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(integrity(&store), "ok");
}

fn user_turns(store: &Path) -> i64 {
    count_so_far(store, "SELECT COUNT(*) FROM messages WHERE role = 'user'")
}

#[test]
fn issue22_sigkill_mid_batch_keeps_checkpoints_and_the_ledger() {
    let mock = Mock::start(MockConfig {
        latency_ms: 50,
        ..MockConfig::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store.db");
    let input = dir.path().join("rows.jsonl");
    let rows: Vec<String> = (0..2000)
        .map(|i| format!("{{\"text\": \"row {i}\"}}"))
        .collect();
    std::fs::write(&input, rows.join("\n")).unwrap();
    let output: PathBuf = dir.path().join("out.jsonl");
    let args = [
        "batch",
        "run",
        input.to_str().unwrap(),
        "-o",
        output.to_str().unwrap(),
        "--task",
        "ask",
        "-m",
        "gpt-4o-mini",
        "--concurrency",
        "32",
        "--quiet",
    ]
    .map(String::from)
    .to_vec();
    let mut last = (0, 0);
    let killed = kill_at_random(&mock, &store, 10, 5, checkpoints, |round| {
        // Every run but the first resumes the job where the last kill left it.
        let now = (checkpoints(&store), ledger_rows(&store));
        assert!(
            now.0 >= last.0 && now.1 >= last.1,
            "round {round}: (checkpoints, ledger rows) went from {last:?} to {now:?}"
        );
        last = now;
        // The spend of every checkpointed row is in the ledger: a row that will not be sent
        // again must not take its ledger row with it when the process dies.
        let (ledger, checkpointed) = spend(&store);
        assert!(
            ledger + 1e-9 >= checkpointed,
            "round {round}: the ledger holds ${ledger} but the checkpoints ${checkpointed}"
        );
        (args.clone(), None)
    });
    assert!(killed >= 8, "only {killed} runs were killed");
    let done = checkpoints(&store);
    assert!(
        done > 0 && done < 2000,
        "{done} rows committed: the kills must land mid-job"
    );
    // Resume to the end: every row is written once, and each done row has its ledger row.
    let o = on_store(&mock, &store).args(&args).run();
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&output).unwrap();
    assert_eq!(text.lines().count(), 2000);
    assert_eq!(integrity(&store), "ok");
    assert!(ledger_rows(&store) >= 2000);
}

fn checkpoints(store: &Path) -> i64 {
    // Rows written to the output plus finished rows waiting to be written.
    count_so_far(
        store,
        "SELECT (SELECT COALESCE(SUM(rows_written), 0) FROM batch_jobs) \
         + (SELECT COUNT(*) FROM batch_rows)",
    )
}

/// (the ledger's spend, the spend of the rows checkpointed: written or waiting).
fn spend(store: &Path) -> (f64, f64) {
    if !store.exists() {
        return (0.0, 0.0);
    }
    let conn = rusqlite::Connection::open(store).unwrap();
    conn.query_row(
        "SELECT (SELECT COALESCE(SUM(cost_usd), 0.0) FROM ledger), \
                (SELECT COALESCE(SUM(spent_usd), 0.0) FROM batch_jobs) \
                + (SELECT COALESCE(SUM(cost_usd), 0.0) FROM batch_rows)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .unwrap()
}

fn ledger_rows(store: &Path) -> i64 {
    count_so_far(store, "SELECT COUNT(*) FROM ledger")
}

#[test]
fn issue22_a_reservation_of_a_killed_process_counts_until_its_lease_expires() {
    // The answer takes long enough for the process to be killed while its reservation is
    // held.
    let slow = Mock::start(MockConfig {
        latency_ms: 20_000,
        ..MockConfig::default()
    });
    let fast = Mock::default();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("llmkit.db");
    let config = dir.path().join("config.toml");
    // Each request's estimate is about $1 (input at $100,000 per 1M tokens, free output):
    // one fits a $1.5 budget, two do not.
    std::fs::write(
        &config,
        "budget_daily_usd = 1.5\n[models.\"gpt-4o-mini\"]\ninput_per_mtok = 100000.0\noutput_per_mtok = 0.0\n",
    )
    .unwrap();
    let ask = |mock: &Mock| {
        let mut k = on_store(mock, &store);
        k.cmd.env("LLMKIT_CONFIG", &config);
        k.args(["ask", "--no-stream", "--max-tokens", "5", "spend it"]);
        k
    };
    let reservations = |s: &Path| count_so_far(s, "SELECT COUNT(*) FROM budget_reservations");
    let mut child = spawn(&mut ask(&slow), None);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while reservations(&store) == 0 {
        assert!(std::time::Instant::now() < deadline, "no reservation");
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap(); // SIGKILL, with the reservation held
    let _ = child.wait_with_output().unwrap();
    assert_eq!(integrity(&store), "ok");
    assert_eq!(reservations(&store), 1);
    // The dead process's reservation still counts: nothing is sent.
    let o = ask(&fast).run();
    assert!(!o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("daily budget reached"),
        "{}",
        stderr(&o)
    );
    assert!(fast.requests_to("/chat/completions").is_empty());
    // Once its lease (10 minutes) has run out it is released, and the request goes.
    let conn = rusqlite::Connection::open(&store).unwrap();
    conn.execute("UPDATE budget_reservations SET ts = ts - 601", [])
        .unwrap();
    drop(conn);
    let o = ask(&fast).run();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(fast.requests_to("/chat/completions").len(), 1);
    assert_eq!(reservations(&store), 0);
    assert_eq!(integrity(&store), "ok");
}

/// Runs `script` as root of its own user and mount namespace (`unshare`), where it may
/// mount a small tmpfs: a real full disk without privileges on the host.
fn in_namespace(script: &str, envs: &[(&str, &Path)]) -> Option<Output> {
    llmkit_testkit::fixtures::require_tool(&["unshare"])?;
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(["--user", "--map-root-user", "--mount", "sh", "-c", script]);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    Some(cmd.output().unwrap())
}

#[test]
fn issue22_a_full_disk_is_a_clear_error_and_leaves_the_store_sound() {
    let mock = Mock::default();
    let dir = tempfile::tempdir().unwrap();
    let fs = dir.path().join("small-fs");
    let out = dir.path().join("out");
    std::fs::create_dir_all(&fs).unwrap();
    std::fs::create_dir_all(&out).unwrap();
    // Asks on a 640 KiB file system until one fails; the store is copied out before the
    // namespace (and its tmpfs) goes away.
    let script = r#"
set -u
mount -t tmpfs -o size=640k tmpfs "$FS" || { echo "no tmpfs" > "$OUT/skip"; exit 0; }
i=0
while [ $i -lt 400 ]; do
  i=$((i + 1))
  "$BIN" ask --no-stream "$(printf 'a%.0s' $(seq 1 1500)) $i" > /dev/null 2> "$OUT/err"
  code=$?
  if [ "$code" -ne 0 ]; then
    echo "$code" > "$OUT/code"
    break
  fi
done
echo "$i" > "$OUT/runs"
"$BIN" sessions list --json > "$OUT/list" 2> "$OUT/list.err"; echo "$?" > "$OUT/list.code"
cp "$FS/llmkit.db" "$OUT/llmkit.db"
[ -f "$FS/llmkit.db-wal" ] && cp "$FS/llmkit.db-wal" "$OUT/llmkit.db-wal"
exit 0
"#;
    let k = Llmkit::against(&mock);
    let envs: Vec<(String, std::ffi::OsString)> = k
        .cmd
        .get_envs()
        .filter_map(|(key, v)| Some((key.to_str()?.to_string(), v?.to_os_string())))
        .collect();
    let store = fs.join("llmkit.db");
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_llmkit"));
    let mut named: Vec<(&str, &Path)> = vec![
        ("FS", fs.as_path()),
        ("OUT", out.as_path()),
        ("BIN", bin.as_path()),
        ("LLMKIT_STORE", store.as_path()),
    ];
    for (key, v) in &envs {
        named.push((key.as_str(), Path::new(v)));
    }
    let Some(o) = in_namespace(script, &named) else {
        return;
    };
    assert!(o.status.success(), "{}", stderr(&o));
    if out.join("skip").exists() {
        llmkit_testkit::fixtures::skip_or_fail(
            llmkit_testkit::fixtures::REQUIRE_TOOLS_VAR,
            "tmpfs cannot be mounted in a user namespace here",
        );
        return;
    }
    let runs: i64 = std::fs::read_to_string(out.join("runs"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let err = std::fs::read_to_string(out.join("err")).unwrap();
    assert!(
        (4..400).contains(&runs),
        "{runs} runs: the disk filled too soon or never"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("code")).unwrap().trim(),
        "1"
    );
    // One clear error with a hint, never a panic.
    assert!(err.contains("error: cannot write the store"), "{err}");
    assert!(
        err.contains("the disk is full") || err.contains("disk I/O error"),
        "{err}"
    );
    assert!(err.contains("\nhint: free space"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // Reading still works on the full disk, and every turn committed before is there.
    assert_eq!(
        std::fs::read_to_string(out.join("list.code"))
            .unwrap()
            .trim(),
        "0"
    );
    let copy = out.join("llmkit.db");
    assert_eq!(integrity(&copy), "ok");
    let answered = count(
        &copy,
        "SELECT COUNT(*) FROM messages WHERE role = 'assistant'",
    );
    assert!(
        answered >= runs - 1,
        "{answered} answers stored of {} runs",
        runs - 1
    );
}
