//! `models pull` against a stand-in Hub (`HF_ENDPOINT`), and `models list --local`.

use std::io::{Read, Write};
use std::net::TcpListener;

use serde_json::Value;

use crate::support::{Llmkit, assert_clear_error, stderr, stdout};

/// Serves one response with `body` on a local port (a stand-in Hub) and returns the port and
/// the request it received.
fn one_shot_hub(body: &'static [u8]) -> (u16, std::thread::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut sock, _) = listener.accept().unwrap();
        let mut buf = [0u8; 4096];
        let n = sock.read(&mut buf).unwrap();
        let request = String::from_utf8_lossy(&buf[..n]).to_string();
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        sock.write_all(head.as_bytes()).unwrap();
        sock.write_all(body).unwrap();
        request
    });
    (port, server)
}

/// `llmkit` with the stand-in Hub at `port` and its models directory inside its home.
fn with_hub(port: u16) -> (Llmkit, std::path::PathBuf) {
    let mut k = Llmkit::bare();
    let models = k.home.path().join("models");
    k.cmd
        .env("HF_ENDPOINT", format!("http://127.0.0.1:{port}"))
        .env("LLMKIT_MODELS_DIR", &models);
    (k, models)
}

const HUB_FILE: &str = "hf:someone/Some-GGUF/sub/some-model.Q4_K_M.gguf@v1";

#[test]
fn pull_of_a_catalogued_model_is_pinned_and_checked() {
    // The stand-in Hub serves the wrong bytes: the checksum catches it and nothing stays.
    let (port, server) = one_shot_hub(b"not the real model");
    let (mut k, models) = with_hub(port);
    let o = k.args(["models", "pull", "smollm2-360m"]).run();
    assert_clear_error(&o, "checksum mismatch");
    let request = server.join().unwrap();
    assert!(
        request.starts_with(
            "GET /HuggingFaceTB/SmolLM2-360M-Instruct-GGUF/resolve/593b5a2e04c8f3e4ee880263f93e0bd2901ad47f/smollm2-360m-instruct-q8_0.gguf "
        ),
        "downloads are pinned to the checksum's commit: {request}"
    );
    let left: Vec<_> = std::fs::read_dir(&models).unwrap().collect();
    assert!(left.is_empty(), "neither the file nor a .partial is left");
}

#[test]
fn pull_of_any_hub_file_installs_it_for_local_use() {
    let (port, server) = one_shot_hub(b"fake gguf bytes");
    let (mut k, models) = with_hub(port);
    let o = k.args(["models", "pull", HUB_FILE]).run();
    assert!(o.status.success(), "{}", stderr(&o));
    let request = server.join().unwrap();
    assert!(
        request.starts_with("GET /someone/Some-GGUF/resolve/v1/sub/some-model.Q4_K_M.gguf "),
        "{request}"
    );
    // The sha256 of "fake gguf bytes", printed for the user to pin.
    assert!(stdout(&o).contains("sha256 "), "{}", stdout(&o));
    assert!(stdout(&o).contains("-m local:some-model.Q4_K_M.gguf"));
    let installed: Vec<_> = std::fs::read_dir(&models).unwrap().collect();
    assert_eq!(installed.len(), 1, "no .partial file is left behind");

    let mut k = Llmkit::bare();
    k.cmd.env("LLMKIT_MODELS_DIR", &models);
    let o = k.args(["models", "list", "--local", "--json"]).run();
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let entry = v["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "local:some-model.Q4_K_M.gguf")
        .unwrap_or_else(|| panic!("the pulled file is listed: {v}"));
    assert_eq!(entry["installed"], true);
    assert_eq!(entry["size_bytes"], 15);

    // Pulling again does not download (no server is listening any more).
    let (mut k, _) = with_hub(port);
    k.cmd.env("LLMKIT_MODELS_DIR", &models);
    let o = k.args(["models", "pull", HUB_FILE]).run();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("already installed"));
}

#[test]
fn pull_of_a_malformed_hub_file_says_how_to_write_one() {
    let o = Llmkit::bare()
        .args(["models", "pull", "hf:only-a-repo/file.gguf"])
        .run();
    assert_clear_error(&o, "OWNER/REPO/FILE");
}

#[test]
fn pull_of_an_unknown_model_lists_the_known_ones() {
    let o = Llmkit::bare().args(["models", "pull", "gpt-17"]).run();
    assert_clear_error(&o, "unknown model");
    assert!(stderr(&o).contains("smollm2-135m"));
}
