//! `download_file`: streamed to a `.partial` file, hashed, verified, renamed into place.

use std::io::{Read, Write};
use std::net::TcpListener;

/// Serves `body` once per connection, `times` times, on a loopback port; returns the URL.
fn serve(body: &'static [u8], times: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for _ in 0..times {
            let Ok((mut sock, _)) = listener.accept() else {
                return;
            };
            let mut buf = [0u8; 4096];
            let _ = sock.read(&mut buf);
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\ncontent-type: application/octet-stream\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = sock.write_all(head.as_bytes());
            let _ = sock.write_all(body);
        }
    });
    format!("http://127.0.0.1:{port}/model.gguf")
}

const BODY: &[u8] = b"GGUF pretend model bytes";
// sha256 of BODY.
const BODY_SHA: &str = "90390edba4c8976f730f1e37cea3b2534a7076e35a724a99e71d6160ea4a008d";

#[tokio::test]
async fn downloads_hashes_and_verifies() {
    let dir = tempfile_dir();
    let dest = dir.join("m.gguf");
    let url = serve(BODY, 2);
    let mut seen = 0;
    let sha = llmkit_client::download_file(&url, &dest, None, |done, total| {
        seen = done;
        assert_eq!(total, Some(BODY.len() as u64));
    })
    .await
    .unwrap();
    assert_eq!(seen, BODY.len() as u64);
    assert_eq!(std::fs::read(&dest).unwrap(), BODY);
    assert_eq!(sha, BODY_SHA);

    // A wrong expected checksum fails and leaves nothing behind.
    let dest2 = dir.join("bad.gguf");
    let wrong = "0".repeat(64);
    let err = llmkit_client::download_file(&url, &dest2, Some(&wrong), |_, _| {})
        .await
        .unwrap_err();
    assert!(err.to_string().contains("checksum mismatch"), "{err}");
    assert!(!dest2.exists());
    assert!(!dir.join("bad.gguf.partial").exists());
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("llmkit-dl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
