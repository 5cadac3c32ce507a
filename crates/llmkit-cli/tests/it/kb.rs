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
    mock.server
        .requests()
        .into_iter()
        .filter(|r| {
            r["path"]
                .as_str()
                .is_some_and(|p| p.ends_with("/embeddings"))
        })
        .collect()
}

fn chat_calls(mock: &Mock) -> usize {
    mock.server
        .requests()
        .iter()
        .filter(|r| {
            r["path"]
                .as_str()
                .is_some_and(|p| p.ends_with("/chat/completions"))
        })
        .count()
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
