//! Attachments from the command line against the mock: images, PDFs (as files, or as text
//! through pdftotext) and text files in `ask`, `/attach` in chat sessions, image tokens in
//! `llmkit tokens`, and the clear errors of bad attachments.

use std::path::Path;

use llmkit_testkit::fixtures::require_tool;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::support::{Llmkit, Mock, assert_clear_error, stderr, stdout};

fn kit(mock: &Mock, dir: &Path) -> Llmkit {
    let mut k = Llmkit::against(mock);
    k.cmd
        .env("LLMKIT_STORE", dir.join("llmkit.db"))
        .env("LLMKIT_CONFIG", dir.join("config.toml"));
    k
}

/// The header of a `w` × `h` PNG: enough for the type and size to be read.
fn png(w: u32, h: u32) -> Vec<u8> {
    let mut b = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    b.extend_from_slice(&w.to_be_bytes());
    b.extend_from_slice(&h.to_be_bytes());
    b.extend_from_slice(&[8, 6, 0, 0, 0, 0x1f, 0x15, 0xc4, 0x89]);
    b
}

/// A one-page PDF whose text layer reads `text` (ASCII without parentheses).
fn pdf(text: &str) -> Vec<u8> {
    let stream = format!("BT /F1 12 Tf 72 720 Td ({text}) Tj ET");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R \
         /Resources << /Font << /F1 5 0 R >> >> >>"
            .to_string(),
        format!(
            "<< /Length {} >>\nstream\n{stream}\nendstream",
            stream.len()
        ),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_string(),
    ];
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{o}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for o in offsets {
        out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

fn sha256(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

fn last_chat(mock: &Mock) -> Value {
    mock.requests_to("/chat/completions")
        .pop()
        .expect("a chat request")
}

#[test]
fn ask_sends_an_image_a_pdf_and_a_text_file() {
    let mock = Mock::default();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let image = png(640, 480);
    // The name says JPEG; the bytes say PNG, and the bytes win.
    std::fs::write(d.join("photo.jpg"), &image).unwrap();
    let doc = pdf("Quarterly revenue rose");
    std::fs::write(d.join("report.pdf"), &doc).unwrap();
    std::fs::write(d.join("notes.txt"), "remember the milk\n").unwrap();
    let o = kit(&mock, d)
        .args(["ask", "-m", "gpt-4o-mini", "--image-detail", "low"])
        .args(["-a", &d.join("photo.jpg").display().to_string()])
        .args(["-a", &d.join("report.pdf").display().to_string()])
        .args(["-a", &d.join("notes.txt").display().to_string()])
        .args(["what do these show?"])
        .run();
    assert!(o.status.success(), "{}", stderr(&o));
    let req = last_chat(&mock);
    let att = req["attachments"].as_array().unwrap();
    assert_eq!(att.len(), 2, "{att:?}");
    assert_eq!(att[0]["type"], "image_url");
    assert_eq!(att[0]["media_type"], "image/png");
    assert_eq!(att[0]["sha256"], sha256(&image));
    assert_eq!(att[0]["detail"], "low");
    assert_eq!(att[1]["type"], "file");
    assert_eq!(att[1]["media_type"], "application/pdf");
    assert_eq!(att[1]["filename"], "report.pdf");
    assert_eq!(att[1]["sha256"], sha256(&doc));
    // The prompt and the text file's text lead (the session stores a turn's text as one),
    // then the image and the PDF.
    let content = &req["body"]["messages"][0]["content"];
    assert_eq!(
        content[0]["text"],
        "what do these show?\n--- notes.txt ---\nremember the milk"
    );
    assert_eq!(content[1]["type"], "image_url");
    assert_eq!(content[2]["type"], "file");
}

#[test]
fn image_urls_go_as_they_are_and_pdf_urls_are_refused() {
    let mock = Mock::default();
    let dir = tempfile::tempdir().unwrap();
    let o = kit(&mock, dir.path())
        .args([
            "ask",
            "-m",
            "gpt-4o",
            "-a",
            "https://example.com/cat.png",
            "a cat?",
        ])
        .run();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        last_chat(&mock)["attachments"][0]["url"],
        "https://example.com/cat.png"
    );
    let o = kit(&mock, dir.path())
        .args(["ask", "-a", "https://example.com/paper.pdf", "summarise"])
        .run();
    assert_eq!(o.status.code(), Some(2));
    assert_clear_error(&o, "does not name an image");
}

#[test]
fn a_pdf_goes_as_text_where_files_are_not_read_and_with_redact() {
    if require_tool(&["pdftotext"]).is_none() {
        return;
    }
    let mock = Mock::default();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("memo.pdf"),
        pdf("Write to jane.doe@example.com today"),
    )
    .unwrap();
    let memo = d.join("memo.pdf").display().to_string();
    // A model the catalogue does not know gets the PDF's text.
    let o = kit(&mock, d)
        .args(["ask", "-m", "my-vllm-model", "-a", &memo, "who?"])
        .run();
    assert!(o.status.success(), "{}", stderr(&o));
    let req = last_chat(&mock);
    assert!(req["attachments"].as_array().unwrap().is_empty());
    let text = req["body"]["messages"][0]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(text.starts_with("who?\n--- memo.pdf ---\n"), "{text}");
    assert!(text.contains("jane.doe@example.com"), "{text}");
    // With --redact, a vision model gets the text too, so that the address never leaves.
    let o = kit(&mock, d)
        .args(["ask", "--redact", "-m", "gpt-4o-mini", "-a", &memo, "who?"])
        .run();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("sent as its text so that --redact"),
        "{}",
        stderr(&o)
    );
    let sent = last_chat(&mock)["body"].to_string();
    assert!(!sent.contains("jane.doe@example.com"), "{sent}");
    assert!(sent.contains("Write to"), "{sent}");
}

#[test]
fn a_missing_pdftotext_is_named_with_a_hint() {
    let mock = Mock::default();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("memo.pdf"), pdf("hello")).unwrap();
    let empty = tempfile::tempdir().unwrap();
    let mut k = kit(&mock, d);
    k.cmd.env("PATH", empty.path());
    let o = k
        .args(["ask", "--pdf", "text"])
        .args(["-a", &d.join("memo.pdf").display().to_string(), "hi"])
        .run();
    assert_eq!(o.status.code(), Some(2));
    assert_clear_error(&o, "pdftotext is not installed");
    assert!(stderr(&o).contains("poppler-utils"), "{}", stderr(&o));
    assert!(mock.requests_to("/chat/completions").is_empty());
}

#[test]
fn chat_attach_keeps_the_image_in_the_conversation() {
    let mock = Mock::default();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let image = png(1024, 1024);
    std::fs::write(d.join("chart.png"), &image).unwrap();
    let script = format!(
        "/attach {}\nwhat is in the chart?\nand the trend?\n",
        d.join("chart.png").display()
    );
    let o = kit(&mock, d)
        .args(["chat", "-m", "gpt-4o", "-s", "charts"])
        .run_with_stdin(&script);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("attached"), "{}", stderr(&o));
    let reqs = mock.requests_to("/chat/completions");
    assert_eq!(reqs.len(), 2);
    // The second turn sends the first turn's image again: the conversation holds it.
    for r in &reqs {
        assert_eq!(r["attachments"][0]["sha256"], sha256(&image), "{r}");
    }
    let second = reqs[1]["body"]["messages"].as_array().unwrap();
    assert_eq!(second.last().unwrap()["content"], "and the trend?");
    let o = kit(&mock, d)
        .args(["sessions", "show", "--json", "charts"])
        .run();
    assert!(o.status.success(), "{}", stderr(&o));
    let shown: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let first = &shown["messages"][0];
    assert_eq!(first["content"], "what is in the chart?");
    assert_eq!(first["attachments"][0]["type"], "image_url");
}

#[test]
fn tokens_counts_images_by_the_tile_rule() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("square.png"), png(1024, 1024)).unwrap();
    let image = d.join("square.png").display().to_string();
    let count = |extra: &[&str]| {
        let o = Llmkit::bare()
            .args(["tokens", "--json", "-m", "gpt-4o", "-a", &image])
            .args(extra)
            .run();
        assert!(o.status.success(), "{}", stderr(&o));
        let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
        v["image_tokens"].as_u64().unwrap()
    };
    // OpenAI's worked example: 1024 × 1024 at high detail is 4 tiles, 85 + 4 × 170.
    assert_eq!(count(&["--image-detail", "high"]), 765);
    assert_eq!(count(&["--image-detail", "low"]), 85);
}

#[test]
fn bad_attachments_get_one_clear_error_and_send_nothing() {
    let mock = Mock::default();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("prog"), b"\x7fELF\x02\x01\x01\0\0\0\0\0").unwrap();
    std::fs::write(d.join("pic.png"), png(10, 10)).unwrap();
    // Sparse files: the size is checked before anything is read.
    let big = std::fs::File::create(d.join("huge.pdf")).unwrap();
    big.set_len(40 * 1024 * 1024).unwrap();
    let mut image = png(10, 10);
    image.resize(21 * 1024 * 1024, 0);
    std::fs::write(d.join("big.png"), image).unwrap();
    let path = |n: &str| d.join(n).display().to_string();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["-a".into(), path("prog")], "not a type the API takes"),
        (
            vec!["-a".into(), path("nowhere.png")],
            "cannot read attachment",
        ),
        (vec!["-a".into(), d.display().to_string()], "is a directory"),
        (vec!["-a".into(), path("huge.pdf")], "may be at most"),
        (
            vec!["-a".into(), path("big.png")],
            "png image attachment may be at most",
        ),
        (
            vec!["-m".into(), "o3-mini".into(), "-a".into(), path("pic.png")],
            "o3-mini does not read images",
        ),
    ];
    for (args, needle) in cases {
        let o = kit(&mock, d).args(["ask"]).args(&args).args(["hi"]).run();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert_clear_error(&o, needle);
    }
    assert!(mock.requests_to("/chat/completions").is_empty());
    // Nothing was recorded either: no session holds a turn of a refused ask.
    let o = kit(&mock, d).args(["sessions", "list", "--json"]).run();
    assert_eq!(stdout(&o).trim(), "[]", "{}", stdout(&o));
}

#[test]
fn batch_ask_rows_send_their_attachments_and_a_bad_one_fails_its_row() {
    let mock = Mock::default();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("charts")).unwrap();
    let image = png(800, 600);
    std::fs::write(d.join("charts/q3.png"), &image).unwrap();
    std::fs::write(
        d.join("rows.jsonl"),
        "{\"id\": \"a\", \"text\": \"what is in this chart?\", \"attachments\": [\"charts/q3.png\"]}\n\
         {\"id\": \"b\", \"text\": \"and this one?\", \"attachments\": [\"charts/missing.png\"]}\n",
    )
    .unwrap();
    let out = d.join("out.jsonl");
    let o = kit(&mock, d)
        .args(["batch", "run", &d.join("rows.jsonl").display().to_string()])
        .args([
            "-o",
            &out.display().to_string(),
            "--task",
            "ask",
            "-m",
            "gpt-4o",
            "--quiet",
        ])
        .run();
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let reqs = mock.requests_to("/chat/completions");
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0]["attachments"][0]["sha256"], sha256(&image));
    let lines: Vec<Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["custom_id"], "a");
    assert!(lines[0]["result"]["text"].is_string(), "{}", lines[0]);
    assert_eq!(lines[1]["custom_id"], "b");
    assert!(
        lines[1]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("charts/missing.png"),
        "{}",
        lines[1]
    );
}

#[test]
fn audio_goes_to_audio_models_over_chat_completions() {
    let mock = Mock::default();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut wav = b"RIFF\x24\0\0\0WAVEfmt \x10\0\0\0\x01\0\x01\0\x40\x1f\0\0\x80\x3e\0\0\x02\0\x10\0data\0\0\0\0".to_vec();
    wav.extend_from_slice(&[0; 16]);
    std::fs::write(d.join("clip.wav"), &wav).unwrap();
    let clip = d.join("clip.wav").display().to_string();
    let o = kit(&mock, d)
        .args([
            "ask",
            "-m",
            "gpt-4o-audio-preview",
            "-a",
            &clip,
            "transcribe",
        ])
        .run();
    assert!(o.status.success(), "{}", stderr(&o));
    let att = &last_chat(&mock)["attachments"][0];
    assert_eq!(att["type"], "input_audio");
    assert_eq!(att["media_type"], "audio/wav");
    assert_eq!(att["sha256"], sha256(&wav));
    // A model the catalogue lists without audio input is refused; so is the Responses API,
    // which has no audio input part.
    let o = kit(&mock, d)
        .args(["ask", "-m", "gpt-4o", "-a", &clip, "hi"])
        .run();
    assert_eq!(o.status.code(), Some(2));
    assert_clear_error(&o, "does not read audio");
    let o = kit(&mock, d)
        .args([
            "--api",
            "responses",
            "ask",
            "-m",
            "gpt-4o-audio-preview",
            "-a",
            &clip,
            "hi",
        ])
        .run();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_clear_error(&o, "input_audio");
}
