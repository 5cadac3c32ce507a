//! Fine-tuning jobs (`/v1/fine_tuning/jobs`): the training file is checked at creation, then
//! the job moves `validating_files → queued → running → succeeded` (or `failed`) as the
//! configured delay passes, with message and step/loss metric events and checkpoints.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::batches::Store as Files;
use crate::errors::ApiError;
use crate::response::{Call, Handled, Reply};
use crate::tokens::{content_text, estimate_text};

/// OpenAI's minimum number of training examples.
const MIN_EXAMPLES: usize = 10;
/// Training steps are capped so that event lists stay short.
const MAX_STEPS: u64 = 40;
/// The organisation part of the fine-tuned model names.
const ORG: &str = "llmkit-mock";

#[derive(Debug, Clone)]
struct Job {
    id: String,
    model: String,
    training_file: String,
    validation_file: Option<String>,
    suffix: Option<String>,
    epochs: u64,
    seed: u64,
    metadata: Value,
    created_at: u64,
    started: Instant,
    delay: Duration,
    /// Why the training file was refused (the job fails after validation).
    invalid: Option<String>,
    examples: u64,
    /// Tokens of one pass over the training file.
    tokens_per_epoch: u64,
    cancelled: Option<Duration>,
}

/// A job's phase at some moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Validating,
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Validating => "validating_files",
            Phase::Queued => "queued",
            Phase::Running => "running",
            Phase::Succeeded => "succeeded",
            Phase::Failed => "failed",
            Phase::Cancelled => "cancelled",
        }
    }
}

impl Job {
    /// Time since creation, frozen at the cancellation.
    fn elapsed(&self, now: Instant) -> Duration {
        let e = now.saturating_duration_since(self.started);
        self.cancelled.map_or(e, |c| e.min(c))
    }

    /// Validation takes the first quarter of the delay, queueing the second, training the rest.
    fn phase(&self, now: Instant) -> Phase {
        let e = self.elapsed(now);
        let quarter = self.delay / 4;
        let base = if e < quarter {
            Phase::Validating
        } else if self.invalid.is_some() {
            Phase::Failed
        } else if e < quarter * 2 {
            Phase::Queued
        } else if e < self.delay {
            Phase::Running
        } else {
            Phase::Succeeded
        };
        match (self.cancelled, base) {
            (Some(_), Phase::Validating | Phase::Queued | Phase::Running) => Phase::Cancelled,
            _ => base,
        }
    }

    fn total_steps(&self) -> u64 {
        (self.examples * self.epochs).clamp(1, MAX_STEPS)
    }

    /// Steps done so far: proportional to the time spent running.
    fn steps_done(&self, now: Instant) -> u64 {
        let e = self.elapsed(now);
        let start = self.delay / 2;
        let span = self.delay.saturating_sub(start);
        if self.invalid.is_some() || e < start {
            return 0;
        }
        if e >= self.delay || span.is_zero() {
            return self.total_steps();
        }
        let frac = (e - start).as_secs_f64() / span.as_secs_f64();
        ((self.total_steps() as f64) * frac).floor() as u64
    }

    fn fine_tuned_model(&self) -> String {
        let short: String = self
            .id
            .trim_start_matches("ftjob-")
            .chars()
            .take(8)
            .collect();
        format!(
            "ft:{}:{ORG}:{}:{short}",
            self.model,
            self.suffix.as_deref().unwrap_or_default()
        )
    }

    /// Unix seconds at `offset` after creation.
    fn at(&self, offset: Duration) -> u64 {
        self.created_at + offset.as_secs()
    }

    fn object(&self, now: Instant) -> Value {
        let phase = self.phase(now);
        let succeeded = phase == Phase::Succeeded;
        let error = match (&self.invalid, phase) {
            (Some(msg), Phase::Failed) => json!({
                "code": "invalid_training_file",
                "message": msg,
                "param": "training_file",
            }),
            _ => Value::Null,
        };
        let finished_at = match phase {
            Phase::Succeeded => Some(self.at(self.delay)),
            Phase::Failed => Some(self.at(self.delay / 4)),
            Phase::Cancelled => Some(self.at(self.elapsed(now))),
            _ => None,
        };
        json!({
            "id": self.id,
            "object": "fine_tuning.job",
            "model": self.model,
            "created_at": self.created_at,
            "finished_at": finished_at,
            "fine_tuned_model": succeeded.then(|| self.fine_tuned_model()),
            "organization_id": format!("org-{ORG}"),
            "result_files": if succeeded { json!([format!("file-result-{}", self.id)]) } else { json!([]) },
            "status": phase.name(),
            "validation_file": self.validation_file,
            "training_file": self.training_file,
            "hyperparameters": {
                "n_epochs": self.epochs,
                "batch_size": 1,
                "learning_rate_multiplier": 1.8,
            },
            "trained_tokens": succeeded.then_some(self.tokens_per_epoch * self.epochs),
            "error": error,
            "user_provided_suffix": self.suffix,
            "seed": self.seed,
            "estimated_finish": (!matches!(phase, Phase::Succeeded | Phase::Failed | Phase::Cancelled))
                .then(|| self.at(self.delay)),
            "integrations": [],
            "metadata": self.metadata,
            "method": {
                "type": "supervised",
                "supervised": {"hyperparameters": {"n_epochs": self.epochs, "batch_size": 1, "learning_rate_multiplier": 1.8}},
            },
        })
    }

    /// Every event so far, oldest first.
    fn events(&self, now: Instant) -> Vec<Value> {
        let mut out = Vec::new();
        let mut n = 0u64;
        let mut push =
            |out: &mut Vec<Value>, at: Duration, kind: &str, msg: String, data: Value| {
                n += 1;
                out.push(json!({
                    "object": "fine_tuning.job.event",
                    "id": format!("ftevent-{}-{n:04}", self.id.trim_start_matches("ftjob-")),
                    "created_at": self.at(at),
                    "level": if msg.starts_with("Error") { "error" } else { "info" },
                    "message": msg,
                    "data": data,
                    "type": kind,
                }));
            };
        let e = self.elapsed(now);
        let quarter = self.delay / 4;
        push(
            &mut out,
            Duration::ZERO,
            "message",
            format!("Validating training file: {}", self.training_file),
            json!({}),
        );
        if e >= quarter {
            if let Some(msg) = &self.invalid {
                push(
                    &mut out,
                    quarter,
                    "message",
                    format!("Error: {msg}"),
                    json!({}),
                );
                return out;
            }
            push(
                &mut out,
                quarter,
                "message",
                "Files validated, moving job to queued state".into(),
                json!({}),
            );
        }
        if e >= quarter * 2 {
            push(
                &mut out,
                quarter * 2,
                "message",
                "Fine-tuning job started".into(),
                json!({}),
            );
        }
        let total = self.total_steps();
        for step in 1..=self.steps_done(now) {
            let loss = 2.0 * (-(step as f64) / (total as f64 / 2.0).max(1.0)).exp() + 0.1;
            let accuracy = (1.0 - loss / 2.2).clamp(0.0, 1.0);
            let at = quarter * 2 + (self.delay - quarter * 2).mul_f64(step as f64 / total as f64);
            push(
                &mut out,
                at,
                "metrics",
                format!("Step {step}/{total}: training loss={loss:.4}"),
                json!({
                    "step": step,
                    "total_steps": total,
                    "train_loss": round4(loss),
                    "train_mean_token_accuracy": round4(accuracy),
                }),
            );
        }
        match self.phase(now) {
            Phase::Succeeded => {
                push(
                    &mut out,
                    self.delay,
                    "message",
                    format!("New fine-tuned model created: {}", self.fine_tuned_model()),
                    json!({}),
                );
                push(
                    &mut out,
                    self.delay,
                    "message",
                    "The job has successfully completed".into(),
                    json!({}),
                );
            }
            Phase::Cancelled => {
                push(
                    &mut out,
                    e,
                    "message",
                    "Fine-tuning job cancelled".into(),
                    json!({}),
                );
            }
            _ => {}
        }
        out
    }
}

fn round4(v: f64) -> f64 {
    (v * 10_000.0).round() / 10_000.0
}

/// The fine-tuning jobs of one server.
#[derive(Debug, Default)]
pub(crate) struct FineTunes {
    jobs: BTreeMap<String, Job>,
    next: u64,
}

impl FineTunes {
    /// `POST /v1/fine_tuning/jobs`.
    pub(crate) fn create(
        &mut self,
        body: &Value,
        files: &Files,
        call: &Call,
        delay: Duration,
    ) -> Result<Handled, ApiError> {
        if !body.is_object() {
            return Err(ApiError::invalid_json_body());
        }
        let model = str_field(body, "model").ok_or_else(|| ApiError::missing_param("model"))?;
        crate::reply::check_model(&model)?;
        let training_file = str_field(body, "training_file")
            .ok_or_else(|| ApiError::missing_param("training_file"))?;
        let (purpose, data) = files.file_data(&training_file).map_err(|_| {
            ApiError::invalid_request(format!("invalid training_file: {training_file}"))
                .with_param("training_file")
        })?;
        if purpose != "fine-tune" {
            return Err(ApiError::invalid_request(format!(
                "File {training_file} has purpose '{purpose}'; fine-tuning needs purpose 'fine-tune'."
            ))
            .with_param("training_file"));
        }
        let validation_file = str_field(body, "validation_file");
        if let Some(v) = &validation_file {
            files.file_data(v).map_err(|_| {
                ApiError::invalid_request(format!("invalid validation_file: {v}"))
                    .with_param("validation_file")
            })?;
        }
        let suffix = str_field(body, "suffix").filter(|s| !s.is_empty());
        if suffix.as_ref().is_some_and(|s| s.len() > 64) {
            return Err(
                ApiError::invalid_request("suffix must be at most 64 characters")
                    .with_param("suffix"),
            );
        }
        let epochs = body
            .pointer("/hyperparameters/n_epochs")
            .or_else(|| body.pointer("/method/supervised/hyperparameters/n_epochs"))
            .and_then(Value::as_u64)
            .unwrap_or(3);
        if !(1..=50).contains(&epochs) {
            return Err(
                ApiError::invalid_request("n_epochs must be between 1 and 50")
                    .with_param("hyperparameters.n_epochs"),
            );
        }
        let checked = check_training_data(&data);
        self.next += 1;
        let id = format!("ftjob-mock{:06}", self.next);
        let job = Job {
            id: id.clone(),
            model,
            training_file,
            validation_file,
            suffix,
            epochs,
            seed: body.get("seed").and_then(Value::as_u64).unwrap_or(42),
            metadata: body.get("metadata").cloned().unwrap_or(Value::Null),
            created_at: call.created,
            started: Instant::now(),
            delay,
            invalid: checked.as_ref().err().cloned(),
            examples: checked.as_ref().map_or(0, |c| c.0),
            tokens_per_epoch: checked.map_or(0, |c| c.1),
            cancelled: None,
        };
        // A job always starts out validating, however short the delay.
        let mut object = job.object(job.started);
        object["status"] = json!("validating_files");
        self.jobs.insert(id, job);
        Ok(Handled::free(Reply::json(object)))
    }

    pub(crate) fn get(&self, id: &str) -> Result<Handled, ApiError> {
        Ok(Handled::free(Reply::json(
            self.job(id)?.object(Instant::now()),
        )))
    }

    /// `GET /v1/fine_tuning/jobs?limit=&after=`, newest first.
    pub(crate) fn list(&self, query: Option<&str>) -> Handled {
        let now = Instant::now();
        let (limit, after) = paging(query);
        let all: Vec<&Job> = self.jobs.values().rev().collect();
        let start = after
            .and_then(|a| all.iter().position(|j| j.id == a).map(|p| p + 1))
            .unwrap_or(0);
        let page: Vec<Value> = all
            .iter()
            .skip(start)
            .take(limit)
            .map(|j| j.object(now))
            .collect();
        let has_more = start + page.len() < all.len();
        Handled::free(Reply::json(
            json!({"object": "list", "data": page, "has_more": has_more}),
        ))
    }

    pub(crate) fn cancel(&mut self, id: &str) -> Result<Handled, ApiError> {
        let now = Instant::now();
        let job = self.jobs.get_mut(id).ok_or_else(|| not_found(id))?;
        match job.phase(now) {
            Phase::Validating | Phase::Queued | Phase::Running => {
                job.cancelled = Some(now.saturating_duration_since(job.started));
                Ok(Handled::free(Reply::json(job.object(now))))
            }
            p => Err(ApiError::invalid_request(format!(
                "Job {id} has already {}; it cannot be cancelled.",
                p.name()
            ))),
        }
    }

    /// `GET /v1/fine_tuning/jobs/{id}/events?limit=&after=`, newest first like OpenAI.
    pub(crate) fn events(&self, id: &str, query: Option<&str>) -> Result<Handled, ApiError> {
        let job = self.job(id)?;
        let (limit, after) = paging(query);
        let mut all = job.events(Instant::now());
        all.reverse();
        let start = after
            .and_then(|a| all.iter().position(|e| e["id"] == a).map(|p| p + 1))
            .unwrap_or(0);
        let page: Vec<Value> = all.iter().skip(start).take(limit).cloned().collect();
        let has_more = start + page.len() < all.len();
        Ok(Handled::free(Reply::json(
            json!({"object": "list", "data": page, "has_more": has_more}),
        )))
    }

    /// `GET /v1/fine_tuning/jobs/{id}/checkpoints`: one per epoch once the job succeeded.
    pub(crate) fn checkpoints(&self, id: &str) -> Result<Handled, ApiError> {
        let job = self.job(id)?;
        let now = Instant::now();
        let mut data = Vec::new();
        if job.phase(now) == Phase::Succeeded {
            let steps_per_epoch = (job.total_steps() / job.epochs).max(1);
            for epoch in (1..=job.epochs).rev() {
                let step = steps_per_epoch * epoch;
                let model = if epoch == job.epochs {
                    job.fine_tuned_model()
                } else {
                    format!("{}:ckpt-step-{step}", job.fine_tuned_model())
                };
                data.push(json!({
                    "object": "fine_tuning.job.checkpoint",
                    "id": format!("ftckpt-{}-{epoch}", job.id.trim_start_matches("ftjob-")),
                    "created_at": job.at(job.delay),
                    "fine_tuned_model_checkpoint": model,
                    "fine_tuning_job_id": job.id,
                    "step_number": step,
                    "metrics": {"step": step, "train_loss": round4(0.1 + 1.0 / epoch as f64)},
                }));
            }
        }
        Ok(Handled::free(Reply::json(
            json!({"object": "list", "data": data, "has_more": false}),
        )))
    }

    fn job(&self, id: &str) -> Result<&Job, ApiError> {
        self.jobs.get(id).ok_or_else(|| not_found(id))
    }
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        format!("No such fine-tuning job: {id}"),
    )
}

fn str_field(body: &Value, key: &str) -> Option<String> {
    body.get(key).and_then(Value::as_str).map(str::to_string)
}

/// `limit` (default 20, at most 100) and `after` from a query string.
fn paging(query: Option<&str>) -> (usize, Option<String>) {
    let mut limit = 20;
    let mut after = None;
    for pair in query.unwrap_or_default().split('&') {
        match pair.split_once('=') {
            Some(("limit", v)) => limit = v.parse().unwrap_or(20).clamp(1, 100),
            Some(("after", v)) => after = Some(v.to_string()),
            _ => {}
        }
    }
    (limit, after)
}

/// Checks chat fine-tuning JSONL as OpenAI's file validation does: every line a JSON object
/// with a `messages` list of known roles holding at least one assistant message, and at least
/// [`MIN_EXAMPLES`] examples. Returns the example count and the token estimate, or the first
/// problem with its line number.
fn check_training_data(data: &[u8]) -> Result<(u64, u64), String> {
    let text = std::str::from_utf8(data).map_err(|_| "the file is not UTF-8 text".to_string())?;
    let mut examples = 0u64;
    let mut tokens = 0u64;
    for (i, line) in text.lines().enumerate() {
        let no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let v: Value =
            serde_json::from_str(line).map_err(|e| format!("line {no}: invalid JSON ({e})"))?;
        let messages = v
            .get("messages")
            .and_then(Value::as_array)
            .ok_or_else(|| format!("line {no}: missing 'messages' list"))?;
        let mut has_assistant = false;
        for m in messages {
            let role = m.get("role").and_then(Value::as_str).unwrap_or_default();
            if !matches!(role, "system" | "user" | "assistant" | "tool" | "function") {
                return Err(format!("line {no}: unrecognised role '{role}'"));
            }
            has_assistant |= role == "assistant";
            tokens += 4 + estimate_text(&content_text(m.get("content").unwrap_or(&Value::Null)));
        }
        if !has_assistant {
            return Err(format!("line {no}: example has no assistant message"));
        }
        examples += 1;
    }
    if (examples as usize) < MIN_EXAMPLES {
        return Err(format!(
            "training file has {examples} example(s); at least {MIN_EXAMPLES} are required"
        ));
    }
    Ok((examples, tokens))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(i: usize) -> String {
        json!({"messages": [
            {"role": "user", "content": format!("q{i}")},
            {"role": "assistant", "content": format!("a{i}")},
        ]})
        .to_string()
    }

    fn job(delay_ms: u64, data: &str) -> Job {
        let checked = check_training_data(data.as_bytes());
        Job {
            id: "ftjob-mock000001".into(),
            model: "gpt-4o-mini-2024-07-18".into(),
            training_file: "file-1".into(),
            validation_file: None,
            suffix: Some("support".into()),
            epochs: 2,
            seed: 1,
            metadata: Value::Null,
            created_at: 100,
            started: Instant::now(),
            delay: Duration::from_millis(delay_ms),
            invalid: checked.as_ref().err().cloned(),
            examples: checked.as_ref().map_or(0, |c| c.0),
            tokens_per_epoch: checked.map_or(0, |c| c.1),
            cancelled: None,
        }
    }

    #[test]
    fn phases_progress_and_events_grow() {
        let data: Vec<String> = (0..12).map(example).collect();
        let j = job(4000, &data.join("\n"));
        let t0 = j.started;
        assert_eq!(j.phase(t0), Phase::Validating);
        assert_eq!(j.phase(t0 + Duration::from_millis(1500)), Phase::Queued);
        assert_eq!(j.phase(t0 + Duration::from_millis(3000)), Phase::Running);
        let done = t0 + Duration::from_millis(4000);
        assert_eq!(j.phase(done), Phase::Succeeded);
        let o = j.object(done);
        assert_eq!(
            o["fine_tuned_model"],
            "ft:gpt-4o-mini-2024-07-18:llmkit-mock:support:mock0000"
        );
        let mid = j.events(t0 + Duration::from_millis(3000)).len();
        let all = j.events(done);
        assert!(all.len() > mid, "{mid} {}", all.len());
        let metrics: Vec<&Value> = all.iter().filter(|e| e["type"] == "metrics").collect();
        assert_eq!(metrics.len(), 24);
        assert!(
            metrics[0]["data"]["train_loss"].as_f64() > metrics[23]["data"]["train_loss"].as_f64()
        );
    }

    #[test]
    fn malformed_training_data_fails_with_the_line() {
        let mut lines: Vec<String> = (0..12).map(example).collect();
        lines[4] = "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}]}".into();
        let j = job(400, &lines.join("\n"));
        let later = j.started + Duration::from_millis(200);
        assert_eq!(j.phase(later), Phase::Failed);
        let o = j.object(later);
        assert_eq!(o["error"]["code"], "invalid_training_file");
        assert!(o["error"]["message"].as_str().unwrap().contains("line 5"));
        assert!(check_training_data(b"{}").unwrap_err().contains("line 1"));
        assert!(
            check_training_data(example(0).as_bytes())
                .unwrap_err()
                .contains("at least 10")
        );
    }

    #[test]
    fn cancel_freezes_the_job() {
        let data: Vec<String> = (0..12).map(example).collect();
        let mut tunes = FineTunes::default();
        tunes
            .jobs
            .insert("ftjob-mock000001".into(), job(60_000, &data.join("\n")));
        tunes.cancel("ftjob-mock000001").unwrap();
        let j = &tunes.jobs["ftjob-mock000001"];
        assert_eq!(
            j.phase(Instant::now() + Duration::from_secs(120)),
            Phase::Cancelled
        );
        assert!(tunes.cancel("ftjob-mock000001").is_err());
        assert_eq!(paging(Some("limit=5&after=x")), (5, Some("x".into())));
    }
}
