//! An eval run as one batch job: every variant × item is a row of `llmkit-batch`'s engine,
//! so its requests are throttled, retried, cost-capped and checkpointed in the store, and
//! re-running the same command resumes where a killed run stopped.

use std::path::PathBuf;
use std::sync::Arc;

use llmkit_batch::{
    BatchError, BoxFuture, JobPlan, Limits, Prepared, Row, RowDone, RowItem, RowSource, RowWork,
    RunShared, Scheduler, Summary,
};
use llmkit_client::Pipeline;
use llmkit_tasks::{TaskRunner, Templates};
use llmkit_types::ChatCompletionRequest;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::error::EvalError;
use crate::judge::JudgeSpec;
use crate::report::{ItemResult, VariantResult, score_variant};
use crate::runner::{VariantSetup, estimate_item, run_item};
use crate::spec::{Dataset, EvalSpec};

/// How the job runs: where its rows go and its limits.
#[derive(Debug, Clone)]
pub struct EvalJobOptions {
    /// The directory of job outputs (`<id>.jsonl`, one line per variant × item).
    pub dir: PathBuf,
    /// The spec file, shown as the job's input.
    pub spec_path: String,
    pub rpm: Option<u32>,
    pub tpm: Option<u32>,
    /// Attempts per request before the item is an error.
    pub max_attempts: u32,
    /// Stop before the job's spend (estimated) would pass this, in USD; resumable.
    pub max_cost: Option<f64>,
    /// Forget an earlier run's checkpoints and output, and run every item again.
    pub fresh: bool,
}

/// The judge of metric `judge`: its spec and a pipeline to its model (the CLI opens it).
#[derive(Clone)]
pub struct JudgeSetup {
    pub spec: JudgeSpec,
    pub pipeline: Pipeline,
    /// The judge model (temperature 0 recommended); messages are ignored.
    pub prototype: ChatCompletionRequest,
}

/// How an eval job ended.
#[derive(Debug, Clone)]
pub struct EvalOutcome {
    pub summary: Summary,
    /// Scored variants, when every item is done (`None` when the cost cap stopped the job).
    pub variants: Option<Vec<VariantResult>>,
}

/// The job id: the spec's content (task, prompts, variants with their resolved models,
/// metrics, judge), the dataset items and the schema. Same run → same id → resumed.
pub fn eval_job_id(spec: &EvalSpec, data: &Dataset, setups: &[VariantSetup]) -> String {
    let key = json!({
        "spec": spec,
        "schema": spec.schema_value,
        "items": data.items,
        "models": setups.iter().map(|s| s.prototype.model.clone()).collect::<Vec<_>>(),
    });
    let digest = Sha256::digest(key.to_string().as_bytes());
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("eval-{hex}")
}

/// Runs (or resumes) every variant over the dataset through the batch engine, then scores.
pub async fn run_eval(
    spec: &EvalSpec,
    data: &Dataset,
    setups: Vec<VariantSetup>,
    judge: Option<JudgeSetup>,
    opts: &EvalJobOptions,
    cx: RunShared,
) -> Result<EvalOutcome, EvalError> {
    let id = eval_job_id(spec, data, &setups);
    let output = opts.dir.join(format!("{id}.jsonl"));
    std::fs::create_dir_all(&opts.dir).map_err(|source| EvalError::Read {
        path: opts.dir.display().to_string(),
        source,
    })?;
    if opts.fresh {
        cx.store.batch_delete_job(&id).map_err(|e| EvalError::Job {
            message: format!("cannot forget the earlier run's checkpoints: {e}"),
            hint: e.hint(),
        })?;
        match std::fs::remove_file(&output) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(EvalError::Read {
                    path: output.display().to_string(),
                    source,
                });
            }
        }
    }
    // The embedded model serves one request at a time: more in flight only adds queueing
    // to the measured latency.
    let concurrency = if setups.iter().any(|s| s.free) {
        1
    } else {
        spec.concurrency.max(1)
    };
    let plan = JobPlan {
        id: id.clone(),
        input: opts.spec_path.clone(),
        output: output.clone(),
        meta: json!({"eval": spec.name, "variants": setups.len(), "items": data.items.len()})
            .to_string(),
        command: "eval".into(),
        limits: Limits {
            rpm: opts.rpm,
            tpm: opts.tpm,
            concurrency,
        },
        max_attempts: opts.max_attempts,
        max_cost: opts.max_cost,
        window: 4096,
    };
    let setups: Vec<VariantSetup> = setups
        .into_iter()
        .map(|mut s| {
            s.pipeline = s.pipeline.with_batch_job(id.clone());
            s
        })
        .collect();
    let n = data.items.len() as u64;
    let total = n * setups.len() as u64;
    let judge = judge.map(|mut j| {
        j.pipeline = j.pipeline.with_batch_job(id.clone());
        j
    });
    let work = Arc::new(EvalWork {
        spec: spec.clone(),
        data: data.clone(),
        setups: setups.clone(),
        judge,
    });
    let mut source = EvalRows { next: 0, total };
    let summary = llmkit_batch::run_rows(&plan, &mut source, || Ok(total), work, cx)
        .await
        .map_err(batch)?;
    if summary.written < total {
        return Ok(EvalOutcome {
            summary,
            variants: None,
        });
    }
    let text = std::fs::read_to_string(&output).map_err(|source| EvalError::Read {
        path: output.display().to_string(),
        source,
    })?;
    let mut results: Vec<ItemResult> = Vec::with_capacity(total as usize);
    for (i, line) in text.lines().enumerate() {
        let item = serde_json::from_str(line)
            .map_err(|e| EvalError::Record(format!("{} line {}: {e}", output.display(), i + 1)))?;
        results.push(item);
    }
    let mut variants = Vec::with_capacity(setups.len());
    let mut rest = results.into_iter();
    for s in &setups {
        let items: Vec<ItemResult> = rest.by_ref().take(n as usize).collect();
        variants.push(score_variant(spec, &s.variant, &s.prototype.model, items));
    }
    Ok(EvalOutcome {
        summary,
        variants: Some(variants),
    })
}

fn batch(e: BatchError) -> EvalError {
    EvalError::Job {
        message: e.to_string(),
        hint: e.hint(),
    }
}

/// Rows `0..total`: row `v * items + i` is item `i` under variant `v`.
struct EvalRows {
    next: u64,
    total: u64,
}

impl RowSource for EvalRows {
    fn next_row(&mut self) -> Result<Option<Row>, BatchError> {
        if self.next >= self.total {
            return Ok(None);
        }
        let index = self.next;
        self.next += 1;
        Ok(Some(Row {
            index,
            line: index + 1,
            id: Value::from(index),
            item: Ok(RowItem::Text {
                text: String::new(),
                fields: Map::new(),
            }),
        }))
    }
}

struct EvalWork {
    spec: EvalSpec,
    data: Dataset,
    setups: Vec<VariantSetup>,
    judge: Option<JudgeSetup>,
}

impl EvalWork {
    fn locate(&self, row: &Row) -> Option<(&VariantSetup, &crate::spec::Item)> {
        let n = self.data.items.len().max(1) as u64;
        let setup = self.setups.get(usize::try_from(row.index / n).ok()?)?;
        let item = self.data.items.get(usize::try_from(row.index % n).ok()?)?;
        Some((setup, item))
    }
}

impl RowWork for EvalWork {
    fn prepare(&self, row: &Row) -> Result<Prepared, String> {
        let (setup, item) = self
            .locate(row)
            .ok_or_else(|| format!("internal: no item for row {}", row.index))?;
        let (prompt, completion) = estimate_item(&self.spec, &setup.variant, item, &setup.counter);
        Ok(Prepared {
            path: "chat/completions".into(),
            body: Value::Null,
            model: setup.prototype.model.clone(),
            prompt_tokens: prompt,
            max_tokens: Some(completion),
        })
    }

    fn run<'a>(
        &'a self,
        sched: &'a Arc<Scheduler>,
        row: &'a Row,
        _p: &'a Prepared,
    ) -> BoxFuture<'a, RowDone> {
        Box::pin(async move {
            let Some((setup, item)) = self.locate(row) else {
                return RowDone {
                    line: json!({"error": "internal: no item for this row"}).to_string(),
                    cost: 0.0,
                    failed: true,
                };
            };
            let gate = sched.gate();
            let mut gated = setup.clone();
            gated.pipeline = setup.pipeline.clone().with_gate(gate.clone());
            let mut result = run_item(&gated, &self.spec, item).await;
            let mut cost = gate.spent().0;
            if !setup.free && setup.price.is_some() {
                result.cost_usd = Some(cost);
            }
            if let (Some(j), Some(output)) = (&self.judge, &result.output) {
                // The judge's requests are the eval's overhead, not the variant's cost.
                let judge_gate = sched.gate();
                let runner = TaskRunner::new(
                    j.pipeline.clone().with_gate(judge_gate.clone()),
                    j.prototype.clone(),
                    Templates::new(None),
                );
                let input = result.input.clone();
                let verdict = j
                    .spec
                    .grade(&runner, &input, &result.expected, output)
                    .await;
                result.judge = Some(verdict);
                cost += judge_gate.spent().0;
            }
            RowDone {
                failed: result.error.is_some(),
                line: serde_json::to_string(&result).unwrap_or_default(),
                cost,
            }
        })
    }
}
