//! Secrets at rest: a config file with a key that others can read gets a warning, and no
//! file llmkit writes (store with sessions, cache, ledger and the gateway's keys; batch state
//! and outputs; eval checkpoints, runs and reports; knowledge bases) holds the API key or a
//! virtual key's secret.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;

use crate::support::{Llmkit, Mock, stderr, stdout};

const KEY: &str = "sk-proj-LLMKITSECRETTEST0123456789QWERTZUI";

#[cfg(unix)]
#[test]
fn a_config_key_readable_by_others_is_warned_about_once() {
    use std::os::unix::fs::PermissionsExt;
    let mock = Mock::default();
    let mut k = Llmkit::against(&mock);
    let path = k.config_path();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, format!("api_key = \"{KEY}\"\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = k.args(["ask", "-m", "gpt-4o-mini", "hi"]).run();
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    let want = format!(
        "warning: {p} holds an API key and is readable by others (mode 0644); run chmod 600 {p}",
        p = path.display()
    );
    assert_eq!(err.matches(&want).count(), 1, "{err}");

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let o = Llmkit::against(&mock)
        .env_home(k.home.path())
        .args(["ask", "-m", "gpt-4o-mini", "hi"])
        .run();
    assert!(!stderr(&o).contains("readable by others"), "{}", stderr(&o));

    // A readable file without a key is no secret.
    std::fs::write(&path, "model = \"gpt-4o-mini\"\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = Llmkit::against(&mock)
        .env_home(k.home.path())
        .args(["ask", "hi"])
        .run();
    assert!(!stderr(&o).contains("readable by others"), "{}", stderr(&o));
}

#[test]
fn no_file_llmkit_writes_holds_the_api_key_or_a_virtual_key() {
    let mock = Mock::default();
    let k = Llmkit::against(&mock);
    let home = k.home.path().to_path_buf();
    let command = |key: &str| {
        let mut c = Llmkit::against(&mock);
        c.env_home(&home).cmd.env("OPENAI_API_KEY", key);
        c
    };
    let run = |args: &[&str], stdin: Option<&str>| -> String {
        let mut c = command(KEY);
        c.args(args);
        let o = match stdin {
            Some(s) => c.run_with_stdin(s),
            None => c.run(),
        };
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        stdout(&o)
    };
    run(&["ask", "-m", "gpt-4o-mini", "hello there"], None);
    run(&["ask", "-m", "gpt-4o-mini", "hello there"], None); // served from the cache
    run(
        &["chat", "-s", "secret-test", "-m", "gpt-4o-mini"],
        Some("hi\nand again\n"),
    );
    run(&["sentiment", "-m", "gpt-4o-mini", "I love this"], None);
    let input = home.join("rows.jsonl");
    std::fs::write(&input, "{\"text\":\"one\"}\n{\"text\":\"two\"}\n").unwrap();
    let output = home.join("out.jsonl");
    let (i, o) = (input.to_str().unwrap(), output.to_str().unwrap());
    run(
        &[
            "batch",
            "run",
            i,
            "-o",
            o,
            "--task",
            "ask",
            "-m",
            "gpt-4o-mini",
            "--quiet",
        ],
        None,
    );
    run(&["batch", "status"], None);
    run(&["usage"], None);
    assert!(output.exists());

    // An eval run: its checkpoints, the saved run and an HTML report.
    let data = home.join("eval.jsonl");
    std::fs::write(&data, "{\"text\":\"I love it\",\"label\":\"positive\"}\n").unwrap();
    let spec = home.join("eval.toml");
    std::fs::write(
        &spec,
        "dataset = \"eval.jsonl\"\ntask = \"sentiment\"\ninput = \"text\"\nexpected = \"label\"\n\
         metrics = [\"accuracy\"]\n[[variants]]\nmodel = \"gpt-4o-mini\"\n",
    )
    .unwrap();
    let html = home.join("report.html");
    run(
        &[
            "eval",
            "run",
            "--html",
            html.to_str().unwrap(),
            spec.to_str().unwrap(),
        ],
        None,
    );
    assert!(html.exists());

    // A knowledge base, built with API embeddings.
    let doc = home.join("notes.md");
    std::fs::write(&doc, "# Bees\n\nBees make honey from nectar.\n").unwrap();
    run(
        &[
            "kb",
            "create",
            "notes",
            "--embedding-model",
            "text-embedding-3-small",
        ],
        None,
    );
    run(&["kb", "add", "notes", doc.to_str().unwrap()], None);
    run(
        &[
            "ask",
            "-m",
            "gpt-4o-mini",
            "--kb",
            "notes",
            "what do bees make?",
        ],
        None,
    );

    // The gateway: a virtual key, and a request through it with that key.
    let created = run(&["keys", "create", "--name", "ci"], None);
    let secret = created
        .lines()
        .find_map(|l| l.strip_prefix("secret:"))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| panic!("no secret in {created}"));
    let mut serve = command(KEY);
    serve.args(["serve", "--port", "0"]);
    let mut child = serve
        .cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let addr = first
        .trim()
        .strip_prefix("llmkit gateway listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {first}"))
        .to_string();
    let through = command(&secret)
        .args(["--base-url", &format!("{addr}/v1")])
        .args(["ask", "-m", "gpt-4o-mini", "--no-stream", "via the gateway"])
        .run();
    let _ = child.kill();
    let _ = child.wait();
    assert!(through.status.success(), "{}", stderr(&through));
    assert!(stdout(&through).contains("via the gateway"));

    let tail = &KEY[KEY.len() - 8..];
    let secret_tail = &secret[secret.len() - 8..];
    let mut files = Vec::new();
    walk(&home, &mut files);
    let config = home.join("config");
    let mut checked = Vec::new();
    for f in files.iter().filter(|f| !f.starts_with(&config)) {
        let bytes = std::fs::read(f).unwrap();
        for needle in [KEY, tail, secret.as_str(), secret_tail] {
            assert!(
                !contains(&bytes, needle.as_bytes()),
                "{} holds `{needle}`",
                f.display()
            );
        }
        checked.push(f.display().to_string());
    }
    // The store (with its journal files), the batch output and its state, the eval run and
    // report, and the knowledge base at least.
    assert!(checked.len() >= 6, "{checked:?}");
    for what in ["out.jsonl", "report.html", "eval/runs/"] {
        assert!(
            checked.iter().any(|f| f.contains(what)),
            "{what} not among {checked:?}"
        );
    }
}

fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}
