//! Secrets at rest: a config file with a key that others can read gets a warning, and no
//! file llmkit writes (store, cache, ledger, batch state, outputs) holds the API key.

use std::path::Path;

use crate::support::{Llmkit, Mock, stderr};

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
fn no_file_llmkit_writes_holds_the_api_key() {
    let mock = Mock::default();
    let k = Llmkit::against(&mock);
    let home = k.home.path().to_path_buf();
    let run = |args: &[&str], stdin: Option<&str>| {
        let mut c = Llmkit::against(&mock);
        c.env_home(&home).cmd.env("OPENAI_API_KEY", KEY);
        c.args(args);
        let o = match stdin {
            Some(s) => c.run_with_stdin(s),
            None => c.run(),
        };
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
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
    run(&["usage"], None);
    assert!(output.exists());

    let tail = &KEY[KEY.len() - 8..];
    let mut files = Vec::new();
    walk(&home, &mut files);
    let config = home.join("config");
    let mut checked = 0;
    for f in files.iter().filter(|f| !f.starts_with(&config)) {
        let bytes = std::fs::read(f).unwrap();
        for needle in [KEY, tail] {
            assert!(
                !contains(&bytes, needle.as_bytes()),
                "{} holds `{needle}`",
                f.display()
            );
        }
        checked += 1;
    }
    // The store (with its journal files), the batch output and its state at least.
    assert!(checked >= 3, "{files:?}");
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
