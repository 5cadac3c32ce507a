//! Fine-tuning jobs over HTTP: a job progresses to `succeeded` with metric events and its
//! `ft:` model answers chat; a malformed training file fails the job with its line.

use std::time::Duration;

use llmkit_testkit::{MockConfig, MockServer};
use serde_json::{Value, json};

use crate::{client, json, post, start, user};

async fn upload(s: &MockServer, purpose: &str, content: &str) -> String {
    let form = format!(
        "--B\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\n{purpose}\r\n\
         --B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"t.jsonl\"\r\n\r\n{content}\r\n--B--\r\n"
    );
    let resp = client()
        .post(format!("{}/v1/files", s.url()))
        .header("content-type", "multipart/form-data; boundary=B")
        .body(form)
        .send()
        .await
        .unwrap();
    json(resp).await["id"].as_str().unwrap().to_string()
}

fn examples(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            json!({"messages": [{"role": "user", "content": format!("q{i}")},
                                {"role": "assistant", "content": format!("a{i}")}]})
            .to_string()
        })
        .collect()
}

async fn get(s: &MockServer, path: &str) -> Value {
    json(
        client()
            .get(format!("{}{path}", s.url()))
            .send()
            .await
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn fine_tuning_jobs_progress_and_their_model_answers() {
    let s = start(MockConfig {
        finetune_delay_ms: 400,
        ..MockConfig::default()
    })
    .await;
    let file = upload(&s, "fine-tune", &examples(12).join("\n")).await;
    let job = json(
        post(
            &s,
            "/v1/fine_tuning/jobs",
            json!({"model": "gpt-4o-mini-2024-07-18", "training_file": file,
                   "suffix": "t", "hyperparameters": {"n_epochs": 1}}),
        )
        .await,
    )
    .await;
    assert_eq!(job["status"], "validating_files");
    let id = job["id"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(450)).await;
    let done = get(&s, &format!("/v1/fine_tuning/jobs/{id}")).await;
    assert_eq!(done["status"], "succeeded");
    let model = done["fine_tuned_model"].as_str().unwrap().to_string();
    assert!(
        model.starts_with("ft:gpt-4o-mini-2024-07-18:llmkit-mock:t:"),
        "{model}"
    );
    let events = get(&s, &format!("/v1/fine_tuning/jobs/{id}/events?limit=100")).await;
    let data = events["data"].as_array().unwrap();
    assert_eq!(data[0]["message"], "The job has successfully completed");
    assert_eq!(data.iter().filter(|e| e["type"] == "metrics").count(), 12);
    let page = get(&s, &format!("/v1/fine_tuning/jobs/{id}/events?limit=2")).await;
    assert_eq!(page["has_more"], true);
    let listed = get(&s, "/v1/fine_tuning/jobs").await;
    assert_eq!(listed["data"][0]["id"], id.as_str());

    let mut ask = user("tuned hello");
    ask["model"] = json!(model);
    let answer = json(post(&s, "/v1/chat/completions", ask).await).await;
    assert_eq!(answer["model"], model.as_str());
    assert_eq!(answer["choices"][0]["message"]["content"], "tuned hello");
}

#[tokio::test]
async fn malformed_training_files_fail_the_job() {
    let s = start(MockConfig::default()).await;
    let mut lines = examples(12);
    lines[2] = "{\"messages\": [{\"role\": \"bot\", \"content\": \"x\"}]}".into();
    let file = upload(&s, "fine-tune", &lines.join("\n")).await;
    let job = json(
        post(
            &s,
            "/v1/fine_tuning/jobs",
            json!({"model": "gpt-4o-mini", "training_file": file}),
        )
        .await,
    )
    .await;
    let id = job["id"].as_str().unwrap();
    let failed = get(&s, &format!("/v1/fine_tuning/jobs/{id}")).await;
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["error"]["code"], "invalid_training_file");
    assert!(
        failed["error"]["message"]
            .as_str()
            .unwrap()
            .contains("line 3")
    );
    // A batch file is not training data; an unknown file is refused.
    let batch_file = upload(&s, "batch", "{}").await;
    let r = post(
        &s,
        "/v1/fine_tuning/jobs",
        json!({"model": "gpt-4o-mini", "training_file": batch_file}),
    )
    .await;
    assert_eq!(r.status(), 400);
    let r = post(
        &s,
        "/v1/fine_tuning/jobs",
        json!({"model": "gpt-4o-mini", "training_file": "file-nope"}),
    )
    .await;
    assert_eq!(r.status(), 400);
}
