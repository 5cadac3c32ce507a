//! `models pull` against a stand-in Hub (`HF_ENDPOINT`), and `models list --local`.

use std::io::{Read, Write};
use std::net::TcpListener;

use serde_json::Value;

use crate::support::{Llmkit, assert_clear_error, stderr, stdout};

#[test]
fn pull_downloads_into_the_models_dir() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut sock, _) = listener.accept().unwrap();
        let mut buf = [0u8; 4096];
        let n = sock.read(&mut buf).unwrap();
        let request = String::from_utf8_lossy(&buf[..n]).to_string();
        let body = b"fake gguf bytes";
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        sock.write_all(head.as_bytes()).unwrap();
        sock.write_all(body).unwrap();
        request
    });
    let mut k = Llmkit::bare();
    let models = k.home.path().join("models");
    k.cmd
        .env("HF_ENDPOINT", format!("http://127.0.0.1:{port}"))
        .env("LLMKIT_MODELS_DIR", &models);
    let o = k.args(["models", "pull", "smollm2-360m"]).run();
    assert!(o.status.success(), "{}", stderr(&o));
    let request = server.join().unwrap();
    assert!(
        request.starts_with("GET /HuggingFaceTB/SmolLM2-360M-Instruct-GGUF/resolve/main/"),
        "{request}"
    );
    assert!(stdout(&o).contains("sha256"));
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
        .find(|m| m["name"] == "local:smollm2-360m")
        .unwrap();
    assert_eq!(entry["installed"], true);
    assert_eq!(entry["size_bytes"], 15);
}

#[test]
fn pull_of_an_unknown_model_lists_the_known_ones() {
    let o = Llmkit::bare().args(["models", "pull", "gpt-17"]).run();
    assert_clear_error(&o, "unknown model");
    assert!(stderr(&o).contains("smollm2-135m"));
}
