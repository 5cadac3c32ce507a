//! Remote-job objects: files (`/v1/files`), batches (`/v1/batches`) and fine-tuning jobs,
//! their events and checkpoints (`/v1/fine_tuning/jobs`), and the paged list around them.
//!
//! Statuses stay strings (with `is_terminal` helpers) so that a state OpenAI adds later
//! still decodes; every optional field defaults, and unknown fields are kept in `extra`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::common::null_as_default;

/// A page of a list endpoint (`{"object": "list", "data": [...], "has_more": ...}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
pub struct ListPage<T> {
    #[serde(default, deserialize_with = "null_as_default")]
    pub data: Vec<T>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub has_more: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_id: Option<String>,
}

impl<T> Default for ListPage<T> {
    fn default() -> Self {
        Self {
            data: Vec::new(),
            has_more: false,
            first_id: None,
            last_id: None,
        }
    }
}

/// An uploaded file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FileObject {
    pub id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub bytes: u64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub created_at: u64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub filename: String,
    /// `batch`, `fine-tune`, `batch_output`, ...
    #[serde(default, deserialize_with = "null_as_default")]
    pub purpose: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `POST /v1/batches` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateBatchRequest {
    pub input_file_id: String,
    /// `/v1/chat/completions`, `/v1/embeddings`, `/v1/completions`, ...
    pub endpoint: String,
    pub completion_window: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

/// Request counts of a batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchRequestCounts {
    #[serde(default, deserialize_with = "null_as_default")]
    pub total: u64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub completed: u64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub failed: u64,
}

/// One validation error of a batch's input file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BatchErrorItem {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub param: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
}

/// The `errors` of a batch that failed validation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BatchErrors {
    #[serde(default, deserialize_with = "null_as_default")]
    pub data: Vec<BatchErrorItem>,
}

/// A batch (`/v1/batches/{id}`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    pub id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub endpoint: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub input_file_id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub completion_window: String,
    /// `validating`, `failed`, `in_progress`, `finalizing`, `completed`, `expired`,
    /// `cancelling`, `cancelled`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_file_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_file_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<BatchErrors>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub created_at: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub request_counts: BatchRequestCounts,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Batch {
    /// Whether the batch will change no more (its files, if any, are final).
    pub fn is_terminal(&self) -> bool {
        matches!(
            self.status.as_str(),
            "completed" | "failed" | "expired" | "cancelled"
        )
    }

    /// A metadata value, when it is a string.
    pub fn metadata_str(&self, key: &str) -> Option<&str> {
        self.metadata.as_ref()?.get(key)?.as_str()
    }
}

/// `POST /v1/fine_tuning/jobs` body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateFineTuningJobRequest {
    pub model: String,
    pub training_file: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suffix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hyperparameters: Option<Hyperparameters>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
    /// Anything else OpenAI accepts (`method`, `integrations`), passed through.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Training hyperparameters. Each is a number or `"auto"`, so they stay JSON values.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Hyperparameters {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n_epochs: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learning_rate_multiplier: Option<Value>,
}

/// Why a fine-tuning job failed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FineTuningJobError {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub param: Option<String>,
}

/// A fine-tuning job.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FineTuningJob {
    pub id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub model: String,
    /// `validating_files`, `queued`, `running`, `succeeded`, `failed`, `cancelled`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub status: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub created_at: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fine_tuned_model: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub training_file: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_file: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub result_files: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trained_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hyperparameters: Option<Hyperparameters>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<FineTuningJobError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_provided_suffix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_finish: Option<u64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl FineTuningJob {
    /// Whether the job will change no more.
    pub fn is_terminal(&self) -> bool {
        matches!(self.status.as_str(), "succeeded" | "failed" | "cancelled")
    }

    /// The error message of a failed job (OpenAI sends an empty error object otherwise).
    pub fn error_message(&self) -> Option<&str> {
        self.error
            .as_ref()
            .map(|e| e.message.as_str())
            .filter(|m| !m.is_empty())
    }
}

/// One event of a fine-tuning job: a message or (`type: "metrics"`) a training step.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FineTuningEvent {
    pub id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub created_at: u64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub level: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub message: String,
    /// `message` or `metrics`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl FineTuningEvent {
    /// `(step, total_steps, train_loss)` of a metrics event.
    pub fn step_metrics(&self) -> Option<(u64, Option<u64>, Option<f64>)> {
        let data = self.data.as_ref()?;
        let step = data.get("step")?.as_u64()?;
        Some((
            step,
            data.get("total_steps").and_then(Value::as_u64),
            data.get("train_loss").and_then(Value::as_f64),
        ))
    }
}

/// A checkpoint of a fine-tuning job (one per epoch), usable as a model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FineTuningCheckpoint {
    pub id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub created_at: u64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub fine_tuned_model_checkpoint: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub step_number: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_decode_leniently() {
        let job: FineTuningJob = serde_json::from_str(
            r#"{"id":"ftjob-1","status":"paused_for_review","model":"gpt-4o-mini","fine_tuned_model":null,
                "error":{},"hyperparameters":{"n_epochs":"auto"},"result_files":null,"new_field":1}"#,
        )
        .unwrap();
        assert_eq!(job.status, "paused_for_review");
        assert!(!job.is_terminal());
        assert_eq!(job.error_message(), None);
        assert_eq!(job.extra["new_field"], 1);
        let b: Batch = serde_json::from_str(
            r#"{"id":"b1","status":"completed","request_counts":null,"errors":null,
                "metadata":{"llmkit_job":"j"}}"#,
        )
        .unwrap();
        assert!(b.is_terminal());
        assert_eq!(b.metadata_str("llmkit_job"), Some("j"));
        let page: ListPage<FineTuningEvent> = serde_json::from_str(
            r#"{"object":"list","data":[{"id":"e","type":"metrics","data":{"step":3,"train_loss":0.5}}]}"#,
        )
        .unwrap();
        assert_eq!(page.data[0].step_metrics(), Some((3, None, Some(0.5))));
        let req = CreateFineTuningJobRequest {
            model: "m".into(),
            training_file: "f".into(),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&req).unwrap(),
            serde_json::json!({"model": "m", "training_file": "f"})
        );
    }
}
