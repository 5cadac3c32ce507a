//! Finds the test model and shares one loaded copy between tests; compares greedy output with
//! llama.cpp's recorded continuations.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use candle_core::Device;
use candle_core::quantized::{GgmlDType, QTensor, gguf_file};

use llmkit_local::{DEFAULT_CHAT_MODEL, LoadOptions, LocalModel, find_known_model};
use llmkit_testkit::fixtures::require_model;
use serde_json::Value;

/// The default model's file, or `None` (after a `SKIP` line naming the calling test) when it
/// is not there; with `LLMKIT_REQUIRE_MODELS=1` its absence fails the test instead.
#[track_caller]
pub(crate) fn default_model_path() -> Option<PathBuf> {
    let known = find_known_model(DEFAULT_CHAT_MODEL).expect("default model is catalogued");
    require_model(known.local_name)
}

/// The default model, loaded once for all tests of this binary (`None`, or a failure, as for
/// [`default_model_path`]).
#[track_caller]
pub(crate) fn shared_model() -> Option<LocalModel> {
    static MODEL: OnceLock<LocalModel> = OnceLock::new();
    let path = default_model_path()?;
    Some(
        MODEL
            .get_or_init(|| {
                LocalModel::load(&path, &LoadOptions::default()).expect("the default model loads")
            })
            .clone(),
    )
}

/// The default model's Q8_0 conversion (made beside the model once, as the benchmark does),
/// loaded once for all tests of this binary.
#[track_caller]
pub(crate) fn q8_0_model() -> Option<LocalModel> {
    static MODEL: OnceLock<LocalModel> = OnceLock::new();
    let path = default_model_path()?;
    Some(
        MODEL
            .get_or_init(|| {
                let converted = llmkit_local::convert_to_q8_0(&path, &LoadOptions::default())
                    .expect("the default model converts");
                LocalModel::load(&converted, &LoadOptions::default()).expect("the Q8_0 file loads")
            })
            .clone(),
    )
}

/// The committed fixture `tests/fixtures/{name}`, parsed; a missing one fails the test.
pub(crate) fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("fixture {} is unreadable: {e}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("fixture {} is not JSON: {e}", path.display()))
}

/// Writes a copy of the GGUF at `source` to `dest` with its Q4_1 tensors requantized to Q5_0:
/// a model in a quant type that no fast kernel handles, so that loading it converts it.
pub(crate) fn write_q5_0_copy(source: &Path, dest: &Path) {
    let mut file = std::fs::File::open(source).unwrap();
    let content = gguf_file::Content::read(&mut file).unwrap();
    let mut names: Vec<(String, u64)> = content
        .tensor_infos
        .iter()
        .map(|(name, info)| (name.clone(), info.offset))
        .collect();
    names.sort_by_key(|(_, offset)| *offset);
    let tensors: Vec<(String, QTensor)> = names
        .into_iter()
        .map(|(name, _)| {
            let tensor = content.tensor(&mut file, &name, &Device::Cpu).unwrap();
            let tensor = if tensor.dtype() == GgmlDType::Q4_1 {
                let dense = tensor.dequantize(&Device::Cpu).unwrap();
                QTensor::quantize(&dense, GgmlDType::Q5_0).unwrap()
            } else {
                tensor
            };
            (name, tensor)
        })
        .collect();
    let metadata: Vec<(&str, &gguf_file::Value)> = content
        .metadata
        .iter()
        .filter(|(key, _)| key.as_str() != "general.alignment")
        .map(|(key, value)| (key.as_str(), value))
        .collect();
    let refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let mut out = std::io::BufWriter::new(std::fs::File::create(dest).unwrap());
    gguf_file::write(&mut out, &metadata, &refs).unwrap();
}

/// The token where `ours` parts from llama.cpp's continuation (given as its pieces), or `None`
/// when they are equal.
pub(crate) fn parting(ours: &str, pieces: &[&str]) -> Option<usize> {
    let mut at = 0;
    for (i, piece) in pieces.iter().enumerate() {
        if ours.get(at..at + piece.len()) != Some(*piece) {
            return Some(i);
        }
        at += piece.len();
    }
    (at != ours.len()).then_some(pieces.len())
}

/// llama.cpp's top probability over its runner-up below which two engines may legitimately
/// pick different greedy tokens (a logit gap under 0.095). For scale: llama.cpp's own AVX2 and
/// AVX512 CPU builds, run on the same machine and file, part on SmolLM2's haiku where the
/// AVX512 build's top two are 0.2071 and 0.2068 (1.001x).
pub(crate) const NEAR_TIE: f64 = 1.1;

/// How one greedy continuation compares with llama.cpp's.
pub(crate) enum Agreement {
    /// Equal token for token.
    Equal,
    /// Parts at a near-tie of llama.cpp's own distribution (tolerated).
    NearTie(String),
    /// Parts where llama.cpp was sure of its token: a real difference.
    Differs(String),
}

/// Compares `ours` with llama.cpp's continuation, whose `steps` each hold the token's `piece`
/// and llama.cpp's two leading probabilities (`p1`, `p2`) at that step.
pub(crate) fn agreement(label: &str, ours: &str, steps: &[(String, f64, f64)]) -> Agreement {
    let pieces: Vec<&str> = steps.iter().map(|(p, _, _)| p.as_str()).collect();
    let Some(k) = parting(ours, &pieces) else {
        return Agreement::Equal;
    };
    let ratio = steps
        .get(k)
        .map_or(f64::INFINITY, |(_, p1, p2)| p1 / p2.max(1e-12));
    let report = format!(
        "{label}: parts at token {k} of {}, where llama.cpp's top two probabilities differ by \
         {ratio:.3}x\n  ours  {ours:?}\n  llama {:?}",
        pieces.len(),
        pieces.concat()
    );
    if ratio < NEAR_TIE {
        Agreement::NearTie(report)
    } else {
        Agreement::Differs(report)
    }
}
