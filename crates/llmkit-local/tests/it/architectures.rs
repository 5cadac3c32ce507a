//! qwen2, qwen3, phi3 and gemma3 on the native engine, checked against llama.cpp without real
//! models: small random-weight GGUFs of each architecture (with SmolLM2's tokenizer, Q8_0
//! matrices) are generated here, deterministically, and their greedy continuations must equal
//! the ones llama.cpp produced on the same files, recorded in
//! `tests/fixtures/synthetic_arch_reference.json` by `benches/local/record_synthetic.mjs`.
//!
//! To re-record: `LLMKIT_SYNTH_DIR=/tmp/synth cargo test --release -p llmkit-local --test it
//! write_synthetic_models -- --ignored`, then `node benches/local/record_synthetic.mjs
//! /tmp/synth crates/llmkit-local/tests/fixtures/synthetic_arch_reference.json`.

use std::path::{Path, PathBuf};

use candle_core::quantized::{GgmlDType, QTensor, gguf_file};
use candle_core::{Device, Tensor};
use llmkit_local::{GenerateRequest, LoadOptions, LocalModel};
use llmkit_testkit::rng::SplitMix64;
use serde_json::Value;

use crate::support::{Agreement, agreement, default_model_path, fixture};

/// The architectures generated, in the fixture's order.
const ARCHS: [&str; 4] = ["qwen2", "qwen3", "phi3", "gemma3"];

/// `n` values uniform in `[-scale, scale)`: the same on every machine, so that the generated
/// models are the ones llama.cpp's continuations were recorded on.
fn values(rng: &mut SplitMix64, n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|_| rng.signed_f32(scale)).collect()
}

/// The shape of every generated model: 128 wide, 4 query heads over 2 KV heads. qwen3 and
/// gemma3 state a head size (`key_length`) that is not width / heads, as their real models do.
struct Shape {
    width: usize,
    layers: usize,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    ff: usize,
}

const WIDTH: usize = 128;
/// The K-quant model's width: K-quant rows are whole 256-value super-blocks.
const K_WIDTH: usize = 256;
/// gemma3's sliding window, short enough that the prompt and continuation cross it.
const WINDOW: u32 = 8;

fn shape(arch: &str) -> Shape {
    match arch {
        // Six layers, so that the last one is gemma3's global (not windowed) layer.
        // The same at about 190M parameters, for `benches/local` (`write_synthetic_models`).
        "llama-large" => Shape {
            width: 1024,
            layers: 8,
            heads: 16,
            kv_heads: 4,
            head_dim: 64,
            ff: 2816,
        },
        // A llama model in Q4_K_M's types (`write_synthetic_k`).
        "llama" => Shape {
            width: K_WIDTH,
            layers: 2,
            heads: 4,
            kv_heads: 2,
            head_dim: 64,
            ff: 512,
        },
        "gemma3" => Shape {
            width: WIDTH,
            layers: 6,
            heads: 2,
            kv_heads: 1,
            head_dim: 64,
            ff: 256,
        },
        "qwen3" => Shape {
            width: WIDTH,
            layers: 2,
            heads: 4,
            kv_heads: 2,
            head_dim: 64,
            ff: 256,
        },
        _ => Shape {
            width: WIDTH,
            layers: 2,
            heads: 4,
            kv_heads: 2,
            head_dim: 32,
            ff: 256,
        },
    }
}

/// Writes the synthetic `arch` model to `dest`, with the tokenizer of the GGUF at `tokenizer`
/// and its matrices in Q8_0.
pub(crate) fn write_synthetic(arch: &str, tokenizer: &Path, dest: &Path) {
    write_synthetic_as(arch, tokenizer, dest, GgmlDType::Q8_0);
}

/// [`write_synthetic`] with the matrices in `matrix_type`.
pub(crate) fn write_synthetic_as(
    arch: &str,
    tokenizer: &Path,
    dest: &Path,
    matrix_type: GgmlDType,
) {
    write_synthetic_typed(arch, tokenizer, dest, &|_| matrix_type);
}

/// A synthetic llama model in the types of a Q4_K_M file: Q6_K for `ffn_down` and the output
/// matrix, Q4_K for the others.
pub(crate) fn write_synthetic_k(tokenizer: &Path, dest: &Path) {
    write_synthetic_k_as("llama", tokenizer, dest);
}

/// [`write_synthetic_k`] in the shape named `shape_name` (`llama` or `llama-large`).
fn write_synthetic_k_as(shape_name: &str, tokenizer: &Path, dest: &Path) {
    write_synthetic_typed(shape_name, tokenizer, dest, &|name: &str| {
        if name.ends_with("ffn_down.weight") || name == "output.weight" {
            GgmlDType::Q6K
        } else {
            GgmlDType::Q4K
        }
    });
}

/// [`write_synthetic`] with each matrix in the type `type_of(name)` gives.
fn write_synthetic_typed(
    arch: &str,
    tokenizer: &Path,
    dest: &Path,
    type_of: &dyn Fn(&str) -> GgmlDType,
) {
    let mut file = std::fs::File::open(tokenizer).unwrap();
    let source = gguf_file::Content::read(&mut file).unwrap();
    let s = shape(arch);
    let arch = arch.strip_suffix("-large").unwrap_or(arch);
    let (q_dim, kv_dim) = (s.heads * s.head_dim, s.kv_heads * s.head_dim);
    let vocab = match &source.metadata["tokenizer.ggml.tokens"] {
        gguf_file::Value::Array(tokens) => tokens.len(),
        other => panic!("tokenizer.ggml.tokens is {other:?}"),
    };
    let u32v = gguf_file::Value::U32;
    let mut meta: Vec<(String, gguf_file::Value)> = source
        .metadata
        .iter()
        .filter(|(k, _)| k.starts_with("tokenizer."))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    meta.sort_by(|a, b| a.0.cmp(&b.0));
    let key = |k: &str| format!("{arch}.{k}");
    meta.push((
        "general.architecture".into(),
        gguf_file::Value::String(arch.into()),
    ));
    meta.push((key("context_length"), u32v(512)));
    meta.push((key("embedding_length"), u32v(s.width as u32)));
    meta.push((key("block_count"), u32v(s.layers as u32)));
    meta.push((key("feed_forward_length"), u32v(s.ff as u32)));
    meta.push((key("attention.head_count"), u32v(s.heads as u32)));
    meta.push((key("attention.head_count_kv"), u32v(s.kv_heads as u32)));
    meta.push((key("rope.freq_base"), gguf_file::Value::F32(10_000.0)));
    meta.push((
        key("attention.layer_norm_rms_epsilon"),
        gguf_file::Value::F32(1e-6),
    ));
    if matches!(arch, "qwen3" | "gemma3") {
        meta.push((key("attention.key_length"), u32v(s.head_dim as u32)));
        meta.push((key("attention.value_length"), u32v(s.head_dim as u32)));
    }
    if arch == "phi3" {
        meta.push((key("rope.dimension_count"), u32v(s.head_dim as u32)));
    }
    if arch == "gemma3" {
        meta.push((key("attention.sliding_window"), u32v(WINDOW)));
    }

    let mut rng = SplitMix64::new(u64::from_le_bytes(*b"llmkit\0\0") ^ arch.len() as u64);
    let mut tensors: Vec<(String, QTensor)> = Vec::new();
    let mut matrix = |name: String, rows: usize, cols: usize, scale: f32, rng: &mut SplitMix64| {
        let t =
            Tensor::from_vec(values(rng, rows * cols, scale), (rows, cols), &Device::Cpu).unwrap();
        let dtype = type_of(&name);
        tensors.push((name, QTensor::quantize(&t, dtype).unwrap()));
    };
    // Attention and feed-forward weights small enough that attention is not one-hot and each
    // layer changes the residual stream without drowning it.
    let w = 0.15;
    matrix("token_embd.weight".into(), vocab, s.width, 1.0, &mut rng);
    // An output matrix of its own: with tied embeddings, random layers leave each token's
    // own embedding the top logit, and every model just repeats its input. gemma3 keeps the
    // tie (llama.cpp's gemma3 always ties) and gets strong post-norms instead.
    if arch != "gemma3" {
        matrix("output.weight".into(), vocab, s.width, 1.0, &mut rng);
    }
    for i in 0..s.layers {
        let p = |t: &str| format!("blk.{i}.{t}.weight");
        if arch == "phi3" {
            matrix(p("attn_qkv"), q_dim + 2 * kv_dim, s.width, w, &mut rng);
            matrix(p("ffn_up"), 2 * s.ff, s.width, w, &mut rng);
        } else {
            matrix(p("attn_q"), q_dim, s.width, w, &mut rng);
            matrix(p("attn_k"), kv_dim, s.width, w, &mut rng);
            matrix(p("attn_v"), kv_dim, s.width, w, &mut rng);
            matrix(p("ffn_gate"), s.ff, s.width, w, &mut rng);
            matrix(p("ffn_up"), s.ff, s.width, w, &mut rng);
        }
        matrix(p("attn_output"), s.width, q_dim, w, &mut rng);
        matrix(p("ffn_down"), s.width, s.ff, w, &mut rng);
    }
    let mut vector = |name: String, len: usize, base: f32, scale: f32, rng: &mut SplitMix64| {
        let values: Vec<f32> = values(rng, len, scale).iter().map(|v| base + v).collect();
        let t = Tensor::from_vec(values, len, &Device::Cpu).unwrap();
        tensors.push((name, QTensor::quantize(&t, GgmlDType::F32).unwrap()));
    };
    for i in 0..s.layers {
        let p = |t: &str| format!("blk.{i}.{t}");
        vector(p("attn_norm.weight"), s.width, 1.0, 0.2, &mut rng);
        vector(p("ffn_norm.weight"), s.width, 1.0, 0.2, &mut rng);
        if arch == "qwen2" {
            vector(p("attn_q.bias"), q_dim, 0.0, 0.3, &mut rng);
            vector(p("attn_k.bias"), kv_dim, 0.0, 0.3, &mut rng);
            vector(p("attn_v.bias"), kv_dim, 0.0, 0.3, &mut rng);
        }
        if matches!(arch, "qwen3" | "gemma3") {
            vector(p("attn_q_norm.weight"), s.head_dim, 1.0, 0.2, &mut rng);
            vector(p("attn_k_norm.weight"), s.head_dim, 1.0, 0.2, &mut rng);
        }
        if arch == "gemma3" {
            vector(p("post_attention_norm.weight"), s.width, 4.0, 0.5, &mut rng);
            vector(p("post_ffw_norm.weight"), s.width, 4.0, 0.5, &mut rng);
        }
    }
    vector("output_norm.weight".into(), s.width, 1.0, 0.2, &mut rng);

    let meta_refs: Vec<(&str, &gguf_file::Value)> =
        meta.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let tensor_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let mut out = std::io::BufWriter::new(std::fs::File::create(dest).unwrap());
    gguf_file::write(&mut out, &meta_refs, &tensor_refs).unwrap();
}

fn reference() -> Value {
    fixture("synthetic_arch_reference.json")
}

#[test]
#[ignore = "writes the synthetic models for benches/local/record_synthetic.mjs"]
fn write_synthetic_models() {
    let dir = PathBuf::from(std::env::var("LLMKIT_SYNTH_DIR").expect("set LLMKIT_SYNTH_DIR"));
    std::fs::create_dir_all(&dir).unwrap();
    let tokenizer = default_model_path().expect("the default model");
    for arch in ARCHS {
        let dest = dir.join(format!("{arch}-synthetic.gguf"));
        write_synthetic(arch, &tokenizer, &dest);
        eprintln!("wrote {}", dest.display());
    }
    let dest = dir.join(format!("{K_MODEL}-synthetic.gguf"));
    write_synthetic_k(&tokenizer, &dest);
    eprintln!("wrote {}", dest.display());
    // No real K-quant file can be fetched here: this one (~190M parameters) is for timing
    // the K-quant kernels against llama.cpp (benches/local/README.md).
    let dest = dir.join("llama-large-q4_k_m-synthetic.gguf");
    write_synthetic_k_as("llama-large", &tokenizer, &dest);
    eprintln!("wrote {}", dest.display());
}

/// The K-quant synthetic model's name in `synthetic_kquant_reference.json`.
const K_MODEL: &str = "llama-q4_k_m";

/// llama.cpp's continuation of one fixture case: each step's piece and top-two probabilities.
fn steps_of(case: &Value) -> Vec<(String, f64, f64)> {
    case["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let p = |k: &str| s[k].as_f64().unwrap();
            (s["piece"].as_str().unwrap().to_string(), p("p1"), p("p2"))
        })
        .collect()
}

/// Runs one fixture case (a raw prompt) greedily on `model` for as many tokens as llama.cpp
/// produced, and compares the continuation with llama.cpp's.
fn run_case(model: &LocalModel, label: &str, case: &Value) -> Agreement {
    let steps = steps_of(case);
    let req = GenerateRequest {
        raw_prompt: Some(case["prompt"].as_str().unwrap().to_string()),
        max_tokens: Some(steps.len() as u32),
        temperature: Some(0.0),
        ..Default::default()
    };
    let out = model.generate(&req, &mut |_| true).unwrap();
    let verdict = agreement(label, &out.text, &steps);
    if matches!(verdict, Agreement::Equal) {
        eprintln!("equal: {label}: {:?}", out.text);
    }
    verdict
}

/// Every architecture's greedy continuation of every recorded prompt equals llama.cpp's, or
/// parts from it only where llama.cpp itself saw a near-tie; most must be equal throughout.
#[test]
fn synthetic_architectures_match_llama_cpp() {
    let Some(tokenizer) = default_model_path() else {
        return;
    };
    let reference = reference();
    let dir = tempfile::tempdir().unwrap();
    let (mut equal, mut total) = (0, 0);
    let mut failures = Vec::new();
    for arch in ARCHS {
        let path = dir.path().join(format!("{arch}-synthetic.gguf"));
        write_synthetic(arch, &tokenizer, &path);
        let model = LocalModel::load(&path, &LoadOptions::default()).unwrap();
        assert!(
            model.batch_stats().is_some(),
            "{arch} should run on the native engine"
        );
        let cases = reference["models"][arch]
            .as_array()
            .unwrap_or_else(|| panic!("no reference cases for {arch}"));
        for case in cases {
            total += 1;
            let label = format!("{arch} {:?}", case["prompt"]);
            match run_case(&model, &label, case) {
                Agreement::Equal => equal += 1,
                Agreement::NearTie(report) => eprintln!("near-tie (tolerated): {report}"),
                Agreement::Differs(report) => failures.push(report),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    eprintln!("{equal} of {total} continuations equal llama.cpp's throughout");
    assert!(
        equal * 4 >= total * 3,
        "only {equal} of {total} continuations equal llama.cpp's"
    );
}

/// gemma3 files in types the native engine does not read (here F16) are converted to Q8_0 once,
/// so that they run natively instead of on candle's gemma3 (SiLU instead of GELU, no sliding
/// window). Measured: all three continuations equal llama.cpp's on the Q8_0 synthetic model; the
/// test allows partings at llama.cpp's near-ties, as the others do.
#[test]
fn gemma3_in_other_types_is_converted_to_run_natively() {
    let Some(tokenizer) = default_model_path() else {
        return;
    };
    let reference = reference();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gemma3-synthetic.f16.gguf");
    write_synthetic_as("gemma3", &tokenizer, &path, GgmlDType::F16);
    let notices = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sink = notices.clone();
    let opts = LoadOptions {
        on_notice: Some(std::sync::Arc::new(move |m: &str| {
            sink.lock().unwrap().push(m.to_string())
        })),
        ..Default::default()
    };
    let model = LocalModel::load(&path, &opts).unwrap();
    assert!(model.batch_stats().is_some(), "runs on the native engine");
    let said = notices.lock().unwrap().join("\n");
    assert!(
        said.contains("converting gemma3-synthetic.f16.gguf (F16)"),
        "{said}"
    );
    let mut checked = 0;
    for case in reference["models"]["gemma3"].as_array().unwrap() {
        match run_case(&model, "gemma3 (from F16)", case) {
            Agreement::Equal => {}
            Agreement::NearTie(report) => eprintln!("near-tie (tolerated): {report}"),
            Agreement::Differs(report) => panic!("{report}"),
        }
        checked += 1;
    }
    assert!(checked > 0);
    // Loading again reuses the cached conversion.
    notices.lock().unwrap().clear();
    LocalModel::load(&path, &opts).unwrap();
    assert!(
        !notices
            .lock()
            .unwrap()
            .iter()
            .any(|n| n.starts_with("converting")),
        "converted only once"
    );
}

/// A llama model in Q4_K_M's types (Q4_K, with Q6_K for `ffn_down` and the output) runs on the
/// native engine, straight from the K-quant blocks, and its greedy continuations equal
/// llama.cpp's on the same file (recorded by `benches/local/record_synthetic.mjs` with
/// `ARCHS=llama-q4_k_m`), or part only at llama.cpp's near-ties.
#[test]
fn k_quant_files_run_natively_and_match_llama_cpp() {
    let Some(tokenizer) = default_model_path() else {
        return;
    };
    let reference = fixture("synthetic_kquant_reference.json");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("{K_MODEL}-synthetic.gguf"));
    write_synthetic_k(&tokenizer, &path);
    let model = LocalModel::load(&path, &LoadOptions::default()).unwrap();
    assert!(model.batch_stats().is_some(), "runs on the native engine");
    let (mut equal, mut failures) = (0, Vec::new());
    let cases = reference["models"][K_MODEL].as_array().unwrap();
    for case in cases {
        match run_case(&model, &format!("{K_MODEL} {:?}", case["prompt"]), case) {
            Agreement::Equal => equal += 1,
            Agreement::NearTie(report) => eprintln!("near-tie (tolerated): {report}"),
            Agreement::Differs(report) => failures.push(report),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    eprintln!("{equal} of {} continuations equal llama.cpp's", cases.len());
    assert!(equal * 3 >= cases.len() * 2, "only {equal} equal");
}
