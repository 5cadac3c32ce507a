//! The redactor: any text is redacted without a panic, restoring the redacted text gives
//! back the input exactly, and so does the streaming restorer fed the redacted text in
//! arbitrary pieces (as a model's answer arrives).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use llmkit_tasks::redact::StreamRestorer;
use llmkit_tasks::{PlaceholderMap, RedactConfig, Redactor};

/// Every built-in detector, and the same plus a deny list and a custom pattern (the user
/// rules, which take another code path).
fn redactors() -> &'static [Redactor; 2] {
    static R: OnceLock<[Redactor; 2]> = OnceLock::new();
    R.get_or_init(|| {
        let cfg = RedactConfig::all()
            .deny_list(vec!["Falcon".into(), "Ünïcode Corp".into()])
            .patterns(vec![("emp".into(), r"EMP-\d{6}".into())]);
        let user = match Redactor::new(cfg) {
            Ok(r) => r,
            Err(e) => panic!("the fuzz redactor's own rules do not compile: {e}"),
        };
        [Redactor::all(), user]
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(body) else {
        return;
    };
    let redactor = &redactors()[usize::from(mode & 1)];
    let mut map = PlaceholderMap::new();
    let redacted = redactor.redact(text, &mut map);
    assert_eq!(map.restore(&redacted), text, "restore(redact(x)) != x");

    // The same answer streamed: split on char boundaries at pseudo-random places.
    let mut restorer = StreamRestorer::new(map);
    let mut streamed = String::new();
    let mut rest = redacted.as_str();
    for piece in llmkit_fuzz::pieces(mode, redacted.as_bytes()) {
        let mut n = piece.len().min(rest.len());
        while !rest.is_char_boundary(n) {
            n += 1;
        }
        let (head, tail) = rest.split_at(n);
        streamed.push_str(&restorer.push(head));
        rest = tail;
        if rest.is_empty() {
            break;
        }
    }
    streamed.push_str(&restorer.finish());
    assert_eq!(
        streamed, text,
        "the streamed restore differs from the input"
    );
});
