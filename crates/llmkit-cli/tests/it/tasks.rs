//! The NLP task commands (summarize, translate, sentiment, classify, extract, qa, write,
//! templates) against the mock server and, when its files are present, the local model.

use serde_json::{Value, json};

use crate::support::{CHAT_MODEL, Llmkit, Mock, assert_clear_error, have_models, stderr, stdout};

fn json_of(o: &std::process::Output) -> Value {
    assert!(o.status.success(), "stderr: {}", stderr(o));
    serde_json::from_str(&stdout(o)).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(o)))
}

fn person_schema(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("person.json");
    let schema = json!({
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
        "required": ["name", "age"]
    });
    std::fs::write(&path, schema.to_string()).unwrap();
    path
}

#[test]
fn structured_commands_print_valid_json_against_the_mock() {
    let mock = Mock::default();
    let v = json_of(
        &Llmkit::against(&mock)
            .args(["sentiment", "--json", "I love this product"])
            .run(),
    );
    llmkit_tasks::validate(&llmkit_tasks::sentiment_schema(), &v).unwrap();

    let v = json_of(
        &Llmkit::against(&mock)
            .args([
                "classify",
                "--json",
                "--labels",
                "sports,politics,cooking",
                "The chef baked a cake.",
            ])
            .run(),
    );
    let opts = llmkit_tasks::ClassifyOptions::new(
        &["sports".into(), "politics".into(), "cooking".into()],
        false,
    )
    .unwrap();
    llmkit_tasks::validate(&opts.schema(), &v).unwrap();

    let v = json_of(
        &Llmkit::against(&mock)
            .args(["classify", "--json", "--multi", "--labels", "a,b", "text"])
            .run(),
    );
    assert!(v["labels"].as_array().is_some_and(|l| !l.is_empty()), "{v}");

    let k = Llmkit::against(&mock);
    let schema = person_schema(k.home.path());
    let mut k = k;
    let v = json_of(
        &k.args(["extract", "--json", "--schema"])
            .args([&schema])
            .args(["Bob is 42."])
            .run(),
    );
    let schema_value: Value =
        serde_json::from_str(&std::fs::read_to_string(&schema).unwrap()).unwrap();
    llmkit_tasks::validate(&schema_value, &v).unwrap();

    // HTTP backends get a strict json_schema response format.
    let reqs = mock.server.requests();
    let last = &reqs.last().unwrap()["body"];
    assert_eq!(last["response_format"]["type"], "json_schema");
    assert_eq!(last["response_format"]["json_schema"]["strict"], true);
    assert_eq!(
        last["response_format"]["json_schema"]["schema"]["additionalProperties"],
        false
    );
}

#[test]
fn invalid_json_is_repaired_then_refused_never_printed() {
    let mock = Mock::default();
    // Prompt mode sends json_object; the mock answers with JSON of the wrong shape, and a
    // scripted reply is not JSON at all.
    for text in ["I love it", "MOCK_REPLY: sure, it is positive!"] {
        let before = mock.server.requests().len();
        let o = Llmkit::against(&mock)
            .args([
                "sentiment",
                "--json",
                "--json-mode",
                "prompt",
                "--repair-attempts",
                "2",
                text,
            ])
            .run();
        assert_clear_error(&o, "not valid JSON");
        assert!(stdout(&o).is_empty(), "printed: {}", stdout(&o));
        let reqs = mock.server.requests();
        assert_eq!(reqs.len() - before, 3, "one request and two repairs");
        let repair = &reqs.last().unwrap()["body"]["messages"];
        let last = repair.as_array().unwrap().last().unwrap();
        assert!(
            last["content"].as_str().unwrap().contains("not valid"),
            "{last}"
        );
        assert_eq!(
            reqs.last().unwrap()["body"]["response_format"]["type"],
            "json_object"
        );
    }
}

#[test]
fn summarize_map_reduces_a_long_file_within_the_window() {
    let mock = Mock::default();
    let k = Llmkit::against(&mock);
    let file = k.home.path().join("long.txt");
    let sentence =
        "The committee reviewed the annual budget and discussed new projects for the city. ";
    let mut text = String::new();
    for i in 0..4200 {
        text.push_str(sentence);
        if i % 8 == 7 {
            text.push_str("\n\n");
        }
    }
    let enc = llmkit_client::encoding_for_model("gpt-4o-mini");
    assert!(llmkit_client::count_tokens(enc, &text) >= 50_000);
    std::fs::write(&file, &text).unwrap();
    let mut k = k;
    let o = k
        .args([
            "summarize",
            "-m",
            "gpt-4o-mini",
            "--context-window",
            "4096",
            "--json",
        ])
        .args([&file])
        .run();
    let v = json_of(&o);
    assert!(v["summary"].as_str().is_some_and(|s| !s.is_empty()));
    let reqs = mock.server.requests();
    assert!(reqs.len() > 10, "only {} requests", reqs.len());
    assert_eq!(v["requests"], reqs.len());
    for r in &reqs {
        let body = &r["body"];
        let prompt: usize = body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| llmkit_client::count_tokens(enc, m["content"].as_str().unwrap_or("")) + 3)
            .sum::<usize>()
            + 3;
        let out = body["max_tokens"].as_u64().unwrap() as usize;
        assert!(prompt + out <= 4096, "request of {prompt} + {out} tokens");
    }
}

#[test]
fn translate_keeps_code_and_checks_the_glossary() {
    let mock = Mock::default();
    let k = Llmkit::against(&mock);
    let glossary = k.home.path().join("g.tsv");
    std::fs::write(&glossary, "laptop\tordinateur portable\n").unwrap();
    let input = "My laptop runs `cargo test`, see https://example.com/docs and {name}.";
    let mut k = k;
    let o = k
        .args(["translate", "--to", "French", "--glossary"])
        .args([&glossary])
        .args([input])
        .run();
    assert!(o.status.success(), "{}", stderr(&o));
    // The mock echoes: masked spans must come back intact.
    assert_eq!(stdout(&o).trim(), input);
    assert!(stderr(&o).contains("ordinateur portable"), "{}", stderr(&o));
    let sent = mock.server.requests();
    let body = sent.last().unwrap()["body"].to_string();
    assert!(
        !body.contains("cargo test") && !body.contains("example.com"),
        "{body}"
    );
    assert!(
        body.contains("ordinateur portable"),
        "glossary in the prompt: {body}"
    );

    let mut k = Llmkit::against(&mock);
    let glossary2 = k.home.path().join("g.json");
    std::fs::write(&glossary2, r#"{"laptop": "ordinateur portable"}"#).unwrap();
    let o = k
        .args(["translate", "--to", "French", "--strict", "--glossary"])
        .args([&glossary2])
        .args([input])
        .run();
    assert!(!o.status.success());
    assert!(stderr(&o).contains("glossary"), "{}", stderr(&o));
}

#[test]
fn qa_and_write_work_end_to_end() {
    let mock = Mock::default();
    let k = Llmkit::against(&mock);
    let ctx = k.home.path().join("ctx.txt");
    std::fs::write(&ctx, "Paris is the capital of France.").unwrap();
    let mut k = k;
    let v = json_of(
        &k.args(["qa", "--json", "--context"])
            .args([&ctx])
            .args(["What is the capital?"])
            .run(),
    );
    // The mock's quote is not in the context, so the answer is "not found".
    assert_eq!(v["found"], false);
    assert_eq!(v["answer"], llmkit_tasks::NOT_FOUND);

    let o = Llmkit::against(&mock)
        .args(["write", "--template", "email", "--var", "topic=the picnic"])
        .run();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("the picnic"));
}

#[test]
fn bad_input_gets_clear_errors() {
    let mock = Mock::default();
    let o = Llmkit::against(&mock)
        .args(["summarize"])
        .run_with_stdin("  \n\t ");
    assert_clear_error(&o, "empty");
    assert_eq!(o.status.code(), Some(2));

    let k = Llmkit::against(&mock);
    let bin = k.home.path().join("blob.bin");
    std::fs::write(&bin, [0x89u8, b'P', b'N', b'G', 0, 1, 2]).unwrap();
    let mut k = k;
    assert_clear_error(&k.args(["sentiment"]).args([&bin]).run(), "binary");

    let k = Llmkit::against(&mock);
    let bad = k.home.path().join("bad.txt");
    std::fs::write(&bad, b"ok \xff here").unwrap();
    let mut k = k;
    assert_clear_error(&k.args(["summarize"]).args([&bad]).run(), "offset 3");

    for (content, needle) in [
        ("{not json", "invalid JSON Schema"),
        (r#"{"type": "objekt"}"#, "invalid JSON Schema"),
    ] {
        let k = Llmkit::against(&mock);
        let schema = k.home.path().join("s.json");
        std::fs::write(&schema, content).unwrap();
        let mut k = k;
        assert_clear_error(
            &k.args(["extract", "--schema"])
                .args([&schema])
                .args(["x"])
                .run(),
            needle,
        );
    }

    assert_clear_error(
        &Llmkit::against(&mock)
            .args(["classify", "--labels", " , ", "x"])
            .run(),
        "label list is empty",
    );
    let o = Llmkit::against(&mock)
        .args(["write", "--template", "nope"])
        .run();
    assert_clear_error(&o, "unknown template `nope`");
    assert!(
        stderr(&o).contains("email"),
        "lists the names: {}",
        stderr(&o)
    );
    assert_clear_error(
        &Llmkit::against(&mock)
            .args(["write", "--template", "email"])
            .run(),
        "`topic`",
    );
    assert_eq!(mock.server.requests().len(), 0, "no request for bad input");
}

#[test]
fn templates_list_show_and_edit() {
    let mut k = Llmkit::bare();
    let o = k.args(["templates", "list"]).run();
    assert!(o.status.success());
    assert!(stdout(&o).contains("summarize") && stdout(&o).contains("built-in"));
    let o = Llmkit::bare().args(["templates", "show", "qa"]).run();
    assert!(stdout(&o).contains("{{ question }}"));

    let mut k = Llmkit::bare();
    k.cmd.env_remove("EDITOR").env_remove("VISUAL");
    let o = k.args(["templates", "edit", "email"]).run();
    assert!(o.status.success(), "{}", stderr(&o));
    let path = std::path::PathBuf::from(stdout(&o).trim());
    assert!(path.ends_with("llmkit/templates/email.j2"), "{path:?}");
    std::fs::write(&path, "Say hi about {{ topic }}.").unwrap();
    let home = k.home;
    let mut k2 = Llmkit::bare();
    k2.cmd.env("XDG_CONFIG_HOME", home.path().join("config"));
    let o = k2.args(["templates", "list", "--json"]).run();
    let v = json_of(&o);
    let email = v
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "email")
        .unwrap()
        .clone();
    assert_eq!(email["source"], path.display().to_string());
}

/// The local model is weak at JSON: each command either prints JSON that validates or
/// fails with a clear error after its repairs, never prints invalid output.
#[test]
fn local_model_structured_output_validates_or_fails_clearly() {
    if !have_models(&[CHAT_MODEL]) {
        return;
    }
    let k = Llmkit::bare();
    let schema = person_schema(k.home.path());
    let schema_value: Value =
        serde_json::from_str(&std::fs::read_to_string(&schema).unwrap()).unwrap();
    let labels =
        llmkit_tasks::ClassifyOptions::new(&["sports".into(), "cooking".into()], false).unwrap();
    let cases: Vec<(Vec<String>, Value)> = vec![
        (
            vec!["sentiment".into(), "I love this phone.".into()],
            llmkit_tasks::sentiment_schema(),
        ),
        (
            vec![
                "classify".into(),
                "--labels".into(),
                "sports,cooking".into(),
                "He baked bread.".into(),
            ],
            labels.schema(),
        ),
        (
            vec![
                "extract".into(),
                "--schema".into(),
                schema.display().to_string(),
                "Bob is 42.".into(),
            ],
            schema_value,
        ),
    ];
    for (args, schema) in cases {
        let o = Llmkit::bare()
            .args(["--max-retries", "0"])
            .args(&args)
            .args([
                "--json",
                "-m",
                "local:smollm2-135m",
                "--temperature",
                "0",
                "--max-tokens",
                "60",
                "--repair-attempts",
                "1",
            ])
            .run();
        if o.status.success() {
            let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
            llmkit_tasks::validate(&schema, &v).unwrap();
        } else {
            assert_clear_error(&o, "not valid JSON");
            assert!(stdout(&o).is_empty(), "{}", stdout(&o));
        }
    }
}

#[test]
fn local_model_summarizes() {
    if !have_models(&[CHAT_MODEL]) {
        return;
    }
    let o = Llmkit::bare()
        .args(["summarize", "-m", "local:smollm2-135m", "--temperature", "0", "--max-tokens", "40"])
        .args(["The city council met on Monday. It approved a new park and a library. Residents welcomed the plans."])
        .run();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stdout(&o).trim().is_empty());
}
