//! Template rendering: a user template file (any text) or a built-in one, rendered with any
//! variables, gives text or a typed error (syntax, missing variables), never a panic.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use llmkit_tasks::Templates;
use serde_json::Value;

fn builtin_names() -> &'static [String] {
    static NAMES: OnceLock<Vec<String>> = OnceLock::new();
    NAMES.get_or_init(|| {
        Templates::new(None)
            .list()
            .into_iter()
            .map(|t| t.name)
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    // The template's text, a NUL, then the variables as JSON (an object, or the whole
    // remainder as the `text` variable when it is not JSON).
    let (template, vars) = match body.iter().position(|&b| b == 0) {
        Some(i) => (&body[..i], &body[i + 1..]),
        None => (body, &[][..]),
    };
    let vars = match serde_json::from_slice::<Value>(vars) {
        Ok(v @ Value::Object(_)) => v,
        _ => serde_json::json!({ "text": String::from_utf8_lossy(vars) }),
    };
    if mode & 1 == 0 {
        llmkit_fuzz::scratch_file("user.j2", template);
        let templates = Templates::new(Some(llmkit_fuzz::scratch_dir().to_path_buf()));
        if let Err(e) = templates.render("user", &vars) {
            let _ = (e.to_string(), e.hint());
        }
    } else {
        let names = builtin_names();
        let name = &names[usize::from(mode >> 1) % names.len()];
        if let Err(e) = Templates::new(None).render(name, &vars) {
            let _ = (e.to_string(), e.hint());
        }
    }
});
