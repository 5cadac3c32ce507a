//! Finds the test model and shares one loaded copy between tests; compares greedy output with
//! llama.cpp's recorded continuations.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use candle_core::Device;
use candle_core::quantized::{GgmlDType, QTensor, gguf_file};

use llmkit_local::{DEFAULT_CHAT_MODEL, LoadOptions, LocalModel, find_known_model};

/// `LLMKIT_MODELS_DIR`, or the workspace's `models/` directory.
pub fn models_dir() -> PathBuf {
    std::env::var_os("LLMKIT_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models"))
}

/// The default model's file, or `None` (after printing why) when it is not there.
pub fn default_model_path(test: &str) -> Option<PathBuf> {
    let known = find_known_model(DEFAULT_CHAT_MODEL).expect("default model is catalogued");
    let path = models_dir().join(known.local_name);
    if path.is_file() {
        Some(path)
    } else {
        eprintln!(
            "SKIP {test}: {} not found (run scripts/fetch-models.sh or set LLMKIT_MODELS_DIR)",
            path.display()
        );
        None
    }
}

/// The default model, loaded once for all tests of this binary.
pub fn shared_model(test: &str) -> Option<LocalModel> {
    static MODEL: OnceLock<Option<LocalModel>> = OnceLock::new();
    let model = MODEL.get_or_init(|| {
        let path = default_model_path("loading the shared model")?;
        Some(LocalModel::load(&path, &LoadOptions::default()).expect("the default model loads"))
    });
    if model.is_none() {
        eprintln!("SKIP {test}: the default model is not available");
    }
    model.clone()
}

/// The default model's Q8_0 conversion (made beside the model once, as the benchmark does),
/// loaded once for all tests of this binary.
pub fn q8_0_model(test: &str) -> Option<LocalModel> {
    static MODEL: OnceLock<Option<LocalModel>> = OnceLock::new();
    let model = MODEL.get_or_init(|| {
        let path = default_model_path("converting the shared model")?;
        let converted = llmkit_local::convert_to_q8_0(&path, &LoadOptions::default())
            .expect("the default model converts");
        Some(LocalModel::load(&converted, &LoadOptions::default()).expect("the Q8_0 file loads"))
    });
    if model.is_none() {
        eprintln!("SKIP {test}: the default model is not available");
    }
    model.clone()
}

/// Writes a copy of the GGUF at `source` to `dest` with its Q4_1 tensors requantized to Q5_0:
/// a model in a quant type that no fast kernel handles, so that loading it converts it.
pub fn write_q5_0_copy(source: &Path, dest: &Path) {
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
pub fn parting(ours: &str, pieces: &[&str]) -> Option<usize> {
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
pub const NEAR_TIE: f64 = 1.1;

/// How one greedy continuation compares with llama.cpp's.
pub enum Agreement {
    /// Equal token for token.
    Equal,
    /// Parts at a near-tie of llama.cpp's own distribution (tolerated).
    NearTie(String),
    /// Parts where llama.cpp was sure of its token: a real difference.
    Differs(String),
}

/// Compares `ours` with llama.cpp's continuation, whose `steps` each hold the token's `piece`
/// and llama.cpp's two leading probabilities (`p1`, `p2`) at that step.
pub fn agreement(label: &str, ours: &str, steps: &[(String, f64, f64)]) -> Agreement {
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
