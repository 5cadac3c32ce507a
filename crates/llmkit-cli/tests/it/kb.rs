//! `llmkit kb` and `ask --kb` against the mock: ingest with change detection, search,
//! grounded answers with citation checks, the no-answer path and clear errors.

use std::path::Path;

use serde_json::Value;

use crate::support::{Llmkit, Mock, assert_clear_error, stderr, stdout};

const MODEL: &str = "text-embedding-3-small";

fn write_corpus(dir: &Path) {
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(
        dir.join("bees.md"),
        "# Bees\n\n## Honey\nWorker bees make honey from flower nectar and store it in wax comb.\n\n## Queen\nThe queen bee lays every egg in the hive.\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("sub/tides.txt"),
        "Ocean tides rise and fall twice a day because the Moon pulls on the sea.\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("sub/volcano.html"),
        "<html><body><h1>Volcanoes</h1><p>Magma rises through the crust and erupts as lava.</p></body></html>",
    )
    .unwrap();
    std::fs::write(dir.join("image.png"), [0u8, 1, 2]).unwrap();
    std::fs::write(dir.join(".gitignore"), "ignored.md\n").unwrap();
    std::fs::write(dir.join("ignored.md"), "secret gitignored text\n").unwrap();
}

fn kb(mock: &Mock, data: &Path, args: &[&str]) -> std::process::Output {
    let mut k = Llmkit::against(mock);
    k.cmd.env("XDG_DATA_HOME", data);
    k.args(args).run()
}

fn embedding_calls(mock: &Mock) -> Vec<Value> {
    mock.requests_to("/embeddings")
}

fn chat_calls(mock: &Mock) -> usize {
    mock.requests_to("/chat/completions").len()
}

#[test]
fn kb_ingest_search_and_incremental_updates() {
    let mock = Mock::default();
    let data = tempfile::tempdir().unwrap();
    let docs = tempfile::tempdir().unwrap();
    write_corpus(docs.path());
    let d = data.path();
    let o = kb(
        &mock,
        d,
        &["kb", "create", "notes", "--embedding-model", MODEL],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_clear_error(&kb(&mock, d, &["kb", "create", "notes"]), "already exists");
    assert_clear_error(
        &kb(&mock, d, &["kb", "search", "notes", "bees"]),
        "is empty",
    );

    let missing = docs.path().join("missing.md");
    let bad = docs.path().join("data.xyz");
    std::fs::write(&bad, "?").unwrap();
    let path = docs.path().to_str().unwrap();
    let o = kb(
        &mock,
        d,
        &[
            "kb",
            "add",
            "notes",
            path,
            missing.to_str().unwrap(),
            bad.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("missing.md: no such file"), "{err}");
    assert!(err.contains("data.xyz: unsupported file type"), "{err}");
    assert!(
        stdout(&o).contains("3 file(s) indexed (4 chunks)"),
        "{}",
        stdout(&o)
    );
    let first = embedding_calls(&mock);
    assert_eq!(first.len(), 1, "one batched request");

    let o = kb(&mock, d, &["kb", "stats", "notes", "--json"]);
    let stats: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(stats["documents"], 3);
    assert_eq!(stats["chunks"], 4);
    assert_eq!(stats["model"], MODEL);
    assert!(stats["dims"].as_u64().unwrap() > 0);

    // Unchanged: no embedding work at all.
    let o = kb(&mock, d, &["kb", "add", "notes", path]);
    assert!(
        stdout(&o).contains("0 file(s) indexed (0 chunks), 3 unchanged"),
        "{}",
        stdout(&o)
    );
    assert_eq!(embedding_calls(&mock).len(), 1);

    // A changed file re-embeds only its own chunk.
    std::fs::write(
        docs.path().join("sub/tides.txt"),
        "Tides rise and fall twice daily: the Moon and the Sun pull on the oceans.\n",
    )
    .unwrap();
    let o = kb(&mock, d, &["kb", "add", "notes", path]);
    assert!(
        stdout(&o).contains("1 file(s) indexed (1 chunks), 2 unchanged"),
        "{}",
        stdout(&o)
    );
    let calls = embedding_calls(&mock);
    assert_eq!(calls.len(), 2);
    let input = &calls[1]["body"]["input"];
    assert_eq!(input.as_array().map(Vec::len), Some(1), "{input}");
    assert!(input[0].as_str().unwrap().contains("Sun"));

    let o = kb(
        &mock,
        d,
        &[
            "kb",
            "search",
            "notes",
            "who lays the eggs queen bee",
            "--json",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let res: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let top = &res["results"][0];
    assert!(
        top["source"].as_str().unwrap().ends_with("bees.md"),
        "{res}"
    );
    assert_eq!(top["location"], "Bees > Queen");
    let text = stdout(&kb(
        &mock,
        d,
        &["kb", "search", "notes", "gitignored secret"],
    ));
    assert!(!text.contains("ignored.md"), "{text}");

    // Sync drops deleted files.
    std::fs::remove_file(docs.path().join("sub/volcano.html")).unwrap();
    let o = kb(&mock, d, &["kb", "sync", "notes"]);
    assert!(
        stdout(&o).contains("1 document(s) dropped"),
        "{}",
        stdout(&o)
    );

    let o = kb(&mock, d, &["kb", "list"]);
    assert_eq!(stdout(&o), "notes\n");
    assert!(kb(&mock, d, &["kb", "remove", "notes"]).status.success());
    assert_clear_error(&kb(&mock, d, &["kb", "stats", "notes"]), "does not exist");
}

#[test]
fn ask_kb_cites_sources_and_refuses_without_them() {
    let mock = Mock::default();
    let data = tempfile::tempdir().unwrap();
    let docs = tempfile::tempdir().unwrap();
    write_corpus(docs.path());
    let d = data.path();
    assert!(
        kb(&mock, d, &["kb", "create", "n", "--embedding-model", MODEL])
            .status
            .success()
    );
    assert!(
        kb(&mock, d, &["kb", "add", "n", docs.path().to_str().unwrap()])
            .status
            .success()
    );

    // The scripted answer cites a real source and one that does not exist.
    let q = "MOCK_REPLY: The queen bee lays the eggs in the hive [1]. Also [9].";
    let o = kb(
        &mock,
        d,
        &["ask", "--kb", "n", "--min-score", "0.1", "--json", q],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let res: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(res["answered"], true);
    assert_eq!(res["citations"]["used"], serde_json::json!([1]));
    assert_eq!(res["citations"]["invalid"], serde_json::json!([9]));
    assert!(
        res["cited_sources"][0]["path"]
            .as_str()
            .unwrap()
            .ends_with("bees.md"),
        "{res}"
    );
    assert!(
        stderr(&o).contains("cites sources that do not exist: [9]"),
        "{}",
        stderr(&o)
    );
    let chat = mock
        .server
        .requests()
        .into_iter()
        .rfind(|r| {
            r["path"]
                .as_str()
                .is_some_and(|p| p.ends_with("/chat/completions"))
        })
        .unwrap();
    let system = chat["body"]["messages"][0]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        system.contains("[1] (") && system.contains("ONLY the numbered sources"),
        "{system}"
    );

    // Out of corpus: the fixed answer, and no chat request.
    let before = chat_calls(&mock);
    let o = kb(
        &mock,
        d,
        &[
            "ask",
            "--kb",
            "n",
            "--min-score",
            "0.1",
            "quantum chromodynamics gluon",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), llmkit_kb_no_answer());
    assert_eq!(chat_calls(&mock), before);

    assert_clear_error(
        &kb(&mock, d, &["ask", "--kb", "nope", "x"]),
        "does not exist",
    );
}

fn llmkit_kb_no_answer() -> &'static str {
    "The knowledge base does not contain an answer to this question."
}

/// Creates knowledge base `n` from the corpus through the mock.
fn filled(mock: &Mock, d: &Path, docs: &Path) {
    let o = kb(mock, d, &["kb", "create", "n", "--embedding-model", MODEL]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = kb(mock, d, &["kb", "add", "n", docs.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
}

fn last_chat_system(mock: &Mock) -> String {
    let chat = mock
        .server
        .requests()
        .into_iter()
        .rfind(|r| {
            r["path"]
                .as_str()
                .is_some_and(|p| p.ends_with("/chat/completions"))
        })
        .unwrap();
    chat["body"]["messages"][0]["content"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn kb_stdin(mock: &Mock, data: &Path, args: &[&str], input: &str) -> std::process::Output {
    let mut k = Llmkit::against(mock);
    k.cmd.env("XDG_DATA_HOME", data);
    k.args(args).run_with_stdin(input)
}

#[test]
fn qa_and_chat_kb_ground_every_turn() {
    let mock = Mock::default();
    let data = tempfile::tempdir().unwrap();
    let docs = tempfile::tempdir().unwrap();
    write_corpus(docs.path());
    let d = data.path();
    filled(&mock, d, docs.path());

    // qa --kb: no --context needed, the same grounded answer as ask --kb.
    let q = "MOCK_REPLY: The queen bee lays the eggs [1]. See also [7].";
    let o = kb(
        &mock,
        d,
        &["qa", "--kb", "n", "--min-score", "0.1", "--json", q],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let res: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(res["answered"], true);
    assert_eq!(res["citations"]["used"], serde_json::json!([1]));
    assert_eq!(res["citations"]["invalid"], serde_json::json!([7]));
    let sources: Vec<&str> = res["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["path"].as_str().unwrap())
        .collect();
    for c in res["cited_sources"].as_array().unwrap() {
        assert!(sources.contains(&c["path"].as_str().unwrap()), "{res}");
    }
    assert!(last_chat_system(&mock).contains("ONLY the numbered sources"));
    let before = chat_calls(&mock);
    let o = kb(
        &mock,
        d,
        &[
            "qa",
            "--kb",
            "n",
            "--min-score",
            "0.1",
            "quantum chromodynamics gluon",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), llmkit_kb_no_answer());
    assert_eq!(
        chat_calls(&mock),
        before,
        "no model asked below the threshold"
    );

    // chat --kb, piped: each line is retrieved for; the refusal costs no request.
    let before = chat_calls(&mock);
    let input =
        "MOCK_REPLY: Worker bees make honey from nectar [1].\nquantum chromodynamics gluon\n";
    let o = kb_stdin(
        &mock,
        d,
        &["chat", "--kb", "n", "--min-score", "0.1"],
        input,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("Worker bees make honey from nectar [1]."),
        "{out}"
    );
    assert!(out.contains("[1] ") && out.contains("bees.md"), "{out}");
    assert!(out.contains(llmkit_kb_no_answer()), "{out}");
    assert_eq!(chat_calls(&mock), before + 1);
    let system = last_chat_system(&mock);
    assert!(
        system.contains("[1] (") && system.contains("bees.md"),
        "{system}"
    );

    // Empty knowledge bases are clear errors for every command.
    assert!(kb(&mock, d, &["kb", "create", "empty"]).status.success());
    for cmd in ["ask", "qa"] {
        assert_clear_error(&kb(&mock, d, &[cmd, "--kb", "empty", "x"]), "is empty");
    }
    assert_clear_error(
        &kb_stdin(&mock, d, &["chat", "--kb", "empty"], "hello\n"),
        "is empty",
    );
}

#[test]
fn support_role_takes_a_kb_from_its_file_or_the_flag() {
    let mock = Mock::default();
    let data = tempfile::tempdir().unwrap();
    let docs = tempfile::tempdir().unwrap();
    write_corpus(docs.path());
    let d = data.path();
    filled(&mock, d, docs.path());

    // The built-in support role with --kb: its prompt and the numbered sources together.
    let o = kb_stdin(
        &mock,
        d,
        &[
            "chat",
            "--role",
            "support",
            "--kb",
            "n",
            "--min-score",
            "0.1",
        ],
        "MOCK_REPLY: The queen lays every egg [1].\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let system = last_chat_system(&mock);
    assert!(system.contains("customer-support agent"), "{system}");
    assert!(system.contains("ONLY the numbered sources"), "{system}");
    assert!(stdout(&o).contains("bees.md"), "{}", stdout(&o));

    // A role file naming the knowledge base; --kb overrides it.
    let mut k = Llmkit::against(&mock);
    let roles = k.home.path().join("config/llmkit/roles");
    std::fs::create_dir_all(&roles).unwrap();
    std::fs::write(
        roles.join("helpdesk.toml"),
        "system = \"You are the helpdesk.\"\nkb = \"n\"\n",
    )
    .unwrap();
    let q = "MOCK_REPLY: Magma erupts as lava [1].";
    let o = k
        .args([
            "ask",
            "--role",
            "helpdesk",
            "--min-score",
            "0.1",
            "--json",
            q,
        ])
        .cmd
        .env("XDG_DATA_HOME", d)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let res: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(res["answered"], true, "{res}");
    let system = last_chat_system(&mock);
    assert!(system.starts_with("You are the helpdesk."), "{system}");
    assert!(system.contains("Sources:"), "{system}");
    std::fs::write(
        roles.join("helpdesk.toml"),
        "system = \"You are the helpdesk.\"\nkb = \"gone\"\n",
    )
    .unwrap();
    let mut k2 = Llmkit::against(&mock);
    std::fs::create_dir_all(k2.home.path().join("config/llmkit")).unwrap();
    let copy = k2.home.path().join("config/llmkit/roles");
    std::fs::create_dir_all(&copy).unwrap();
    std::fs::copy(roles.join("helpdesk.toml"), copy.join("helpdesk.toml")).unwrap();
    k2.cmd.env("XDG_DATA_HOME", d);
    assert_clear_error(
        &k2.args(["ask", "--role", "helpdesk", "x"]).run(),
        "`gone` does not exist",
    );
    let mut k3 = Llmkit::against(&mock);
    let copy = k3.home.path().join("config/llmkit/roles");
    std::fs::create_dir_all(&copy).unwrap();
    std::fs::copy(roles.join("helpdesk.toml"), copy.join("helpdesk.toml")).unwrap();
    k3.cmd.env("XDG_DATA_HOME", d);
    let o = k3
        .args([
            "ask",
            "--role",
            "helpdesk",
            "--kb",
            "n",
            "--min-score",
            "0.1",
            q,
        ])
        .run();
    assert!(
        o.status.success(),
        "--kb overrides the role's: {}",
        stderr(&o)
    );
}

const RULES: &str = r#"
must = ["Answer in at most two sentences."]
forbidden = [{ topic = "competitors", keywords = ["Globex"] }]

[glossary]
"sign in" = ["log in", "login"]
"#;

#[test]
fn rules_go_into_the_prompt_and_violations_are_reported() {
    let mock = Mock::default();
    let data = tempfile::tempdir().unwrap();
    let docs = tempfile::tempdir().unwrap();
    write_corpus(docs.path());
    let d = data.path();
    let rules = docs.path().join("rules.toml");
    std::fs::write(&rules, RULES).unwrap();
    let r = rules.to_str().unwrap();
    let bad = "MOCK_REPLY: Please log in first. Globex sells honey too.";

    // Without a knowledge base: ask, qa and chat.
    let o = kb(&mock, d, &["ask", "--rules", r, "--json", bad]);
    assert!(o.status.success(), "{}", stderr(&o));
    let res: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        res["rule_violations"],
        serde_json::json!([
            {"kind": "glossary", "found": "log in", "preferred": "sign in"},
            {"kind": "forbidden_topic", "topic": "competitors", "found": "Globex"},
        ]),
        "{res}"
    );
    let err = stderr(&o);
    assert!(err.contains("warning: rule violation: glossary"), "{err}");
    let system = last_chat_system(&mock);
    assert!(
        system.contains("Answer in at most two sentences.")
            && system.contains("Say \"sign in\", never \"log in\" or \"login\".")
            && system.contains("competitors"),
        "{system}"
    );
    let o = kb(&mock, d, &["ask", "--rules", r, "MOCK_REPLY: Sign in [1]."]);
    assert!(o.status.success() && !stderr(&o).contains("rule violation"));

    let ctx = docs.path().join("bees.md");
    let o = kb(
        &mock,
        d,
        &[
            "qa",
            "--rules",
            r,
            "--context",
            ctx.to_str().unwrap(),
            "--json",
            "Who lays eggs?",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let res: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(res["rule_violations"].is_array(), "{res}");
    assert!(last_chat_system(&mock).contains("Say \"sign in\""));

    let o = kb_stdin(&mock, d, &["chat", "--rules", r], &format!("{bad}\n"));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("forbidden topic `competitors`"),
        "{}",
        stderr(&o)
    );
    assert!(last_chat_system(&mock).contains("Say \"sign in\""));

    // With a knowledge base: the rules sit beside the sources.
    filled(&mock, d, docs.path());
    let q = "MOCK_REPLY: To log in, ask the queen bee [1].";
    let o = kb(
        &mock,
        d,
        &[
            "ask",
            "--kb",
            "n",
            "--rules",
            r,
            "--min-score",
            "0.1",
            "--json",
            q,
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let res: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(res["rule_violations"][0]["found"], "log in", "{res}");
    let system = last_chat_system(&mock);
    assert!(
        system.contains("Sources:") && system.contains("Say \"sign in\""),
        "{system}"
    );

    // A malformed rule file is a clear usage error.
    let broken = docs.path().join("broken.toml");
    std::fs::write(&broken, "must = 3\n").unwrap();
    assert_clear_error(
        &kb(
            &mock,
            d,
            &["ask", "--rules", broken.to_str().unwrap(), "hi"],
        ),
        "invalid rule file",
    );
}

#[test]
fn remote_embeddings_resume_after_an_interrupted_add() {
    // Slow answers, so the add can be killed part-way.
    let mock = Mock::start(llmkit_testkit::MockConfig {
        latency_ms: 150,
        ..llmkit_testkit::MockConfig::default()
    });
    let data = tempfile::tempdir().unwrap();
    let docs = tempfile::tempdir().unwrap();
    // Three long files of many chunks each, so the kill lands inside the first file: its
    // first batches are embedded but the file is not stored yet.
    for f in 0..3 {
        let text: String = (0..170)
            .map(|i| format!("File {f} sentence {i} talks about subject {f}-{i} at length. "))
            .collect();
        std::fs::write(docs.path().join(format!("long{f}.txt")), text).unwrap();
    }
    let d = data.path();
    assert!(
        kb(&mock, d, &["kb", "create", "n", "--embedding-model", MODEL])
            .status
            .success()
    );
    let path = docs.path().to_str().unwrap();
    let mut k = Llmkit::against(&mock);
    k.cmd
        .env("XDG_DATA_HOME", d)
        .args([
            "kb",
            "add",
            "n",
            path,
            "--batch-size",
            "2",
            "--concurrency",
            "1",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = k.cmd.spawn().unwrap();
    // With one request in flight, a third request means the first two batches are stored.
    while embedding_calls(&mock).len() < 3 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the add ended too early"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let first: Vec<Value> = embedding_calls(&mock);
    let done: Vec<String> = first[..2]
        .iter()
        .flat_map(|r| r["body"]["input"].as_array().cloned().unwrap_or_default())
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    assert_eq!(done.len(), 4);

    let o = kb(
        &mock,
        d,
        &[
            "kb",
            "add",
            "n",
            path,
            "--batch-size",
            "2",
            "--concurrency",
            "3",
            "--rpm",
            "600",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("3 file(s) indexed"), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("reused from an interrupted add"),
        "{}",
        stdout(&o)
    );
    let again: Vec<String> = embedding_calls(&mock)[first.len()..]
        .iter()
        .flat_map(|r| r["body"]["input"].as_array().cloned().unwrap_or_default())
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    for t in &done {
        assert!(!again.contains(t), "{t} was embedded twice");
    }
    let o = kb(&mock, d, &["kb", "stats", "n", "--json"]);
    let stats: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let chunks = stats["chunks"].as_u64().unwrap() as usize;
    assert!(chunks >= 15, "{stats}");
    assert!(
        again.len() + done.len() <= chunks,
        "{} re-sent",
        again.len()
    );

    // A third add finds nothing to do and sends nothing.
    let before = embedding_calls(&mock).len();
    let o = kb(&mock, d, &["kb", "add", "n", path]);
    assert!(stdout(&o).contains("3 unchanged"), "{}", stdout(&o));
    assert_eq!(embedding_calls(&mock).len(), before);
}

#[test]
fn bad_input_warns_and_dimension_mismatch_is_clear() {
    let mock = Mock::default();
    let data = tempfile::tempdir().unwrap();
    let docs = tempfile::tempdir().unwrap();
    let d = data.path();
    let o = kb(&mock, d, &["kb", "create", "n", "--embedding-model", MODEL]);
    assert!(o.status.success(), "{}", stderr(&o));
    let created = stdout(&o);
    let kb_file = Path::new(created.trim().rsplit(" at ").next().unwrap()).to_path_buf();
    std::fs::write(docs.path().join("good.md"), "# Good\n\nBees make honey.\n").unwrap();
    std::fs::write(
        docs.path().join("latin1.txt"),
        [0x63, 0x61, 0x66, 0xe9, 0xff],
    )
    .unwrap();
    std::fs::write(docs.path().join("rows.csv"), "id,body\n1,hello\n").unwrap();
    std::fs::write(docs.path().join("paper.pdf"), "%PDF-1.4 not really").unwrap();
    let empty_path = tempfile::tempdir().unwrap();
    let mut k = Llmkit::against(&mock);
    k.cmd.env("XDG_DATA_HOME", d).env("PATH", empty_path.path());
    let o = k
        .args(["kb", "add", "n", docs.path().to_str().unwrap()])
        .run();
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("latin1.txt: not UTF-8 text"), "{err}");
    assert!(
        err.contains("rows.csv: CSV/JSONL files need --text-column"),
        "{err}"
    );
    assert!(
        err.contains("paper.pdf: `pdftotext` is not installed") && err.contains("poppler-utils"),
        "{err}"
    );
    assert!(
        stdout(&o).contains("1 file(s) indexed (1 chunks)") && stdout(&o).contains("3 skipped"),
        "{}",
        stdout(&o)
    );

    // A knowledge base whose vectors came from another server (3-d): a clear error when
    // searching or adding, nothing written.
    let dir = kb_file.parent().unwrap();
    let mut odd = llmkit_kb::Kb::create(dir, "odd", MODEL).unwrap();
    odd.replace_document(
        "/elsewhere/a.md",
        "h",
        &[llmkit_kb::NewChunk {
            text: "bees".into(),
            location: String::new(),
        }],
        &[vec![1.0, 0.0, 0.0]],
    )
    .unwrap();
    drop(odd);
    let o = kb(&mock, d, &["kb", "search", "odd", "bees"]);
    assert_clear_error(&o, "dimension mismatch");
    assert!(stderr(&o).contains("holds 3-d vectors"), "{}", stderr(&o));
    assert_clear_error(
        &kb(&mock, d, &["ask", "--kb", "odd", "bees?"]),
        "dimension mismatch",
    );
    assert_clear_error(
        &kb(
            &mock,
            d,
            &[
                "kb",
                "add",
                "odd",
                docs.path().join("good.md").to_str().unwrap(),
            ],
        ),
        "dimension mismatch",
    );
    let o = kb(&mock, d, &["kb", "stats", "odd", "--json"]);
    let stats: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(stats["chunks"], 1, "the failed add stored nothing");
}

#[test]
fn kb_answers_on_the_local_model_cite_retrieved_sources() {
    use crate::support::{CHAT_MODEL, EMBED_MODEL, have_models};
    if !have_models(&[CHAT_MODEL, EMBED_MODEL]) {
        return;
    }
    let docs = tempfile::tempdir().unwrap();
    write_corpus(docs.path());
    let k = || {
        let mut k = Llmkit::bare();
        k.cmd.env("XDG_DATA_HOME", docs.path().join("data"));
        k
    };
    let o = k().args(["kb", "create", "local"]).run();
    assert!(o.status.success(), "{}", stderr(&o));
    let o = k()
        .args(["kb", "add", "local", docs.path().to_str().unwrap()])
        .run();
    assert!(o.status.success(), "{}", stderr(&o));
    for (cmd, q) in [
        ("ask", "Who lays every egg in the hive?"),
        ("qa", "Why do ocean tides rise and fall?"),
    ] {
        let o = k()
            .args([
                cmd,
                "--kb",
                "local",
                "--temperature",
                "0",
                "--max-tokens",
                "80",
                "--json",
                q,
            ])
            .run();
        assert!(o.status.success(), "{}", stderr(&o));
        let res: Value = serde_json::from_str(&stdout(&o)).unwrap();
        assert_eq!(res["answered"], true, "{res}");
        let n = res["sources"].as_array().unwrap().len();
        for c in res["citations"]["used"].as_array().unwrap() {
            let c = c.as_u64().unwrap() as usize;
            assert!((1..=n).contains(&c), "{res}");
        }
        let paths: Vec<&Value> = res["sources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| &s["path"])
            .collect();
        for c in res["cited_sources"].as_array().unwrap() {
            assert!(paths.contains(&&c["path"]), "{res}");
        }
    }
    let o = k()
        .args([
            "ask",
            "--kb",
            "local",
            "--json",
            "What is the airspeed of an unladen swallow?",
        ])
        .run();
    assert!(o.status.success(), "{}", stderr(&o));
    let res: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(res["answered"], false, "{res}");
    assert_eq!(res["text"], llmkit_kb_no_answer());
    let o = k()
        .args(["chat", "--kb", "local", "--max-tokens", "40"])
        .run_with_stdin("Which quantum field theory describes gluons?\n");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains(llmkit_kb_no_answer()), "{}", stdout(&o));
}
