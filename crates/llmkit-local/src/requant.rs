//! Converts weights in quant types that candle runs without SIMD kernels (Q4_1, Q5_0, Q5_1) to
//! Q8_0, once, and caches the converted GGUF next to the model. Llama-family Q4_1 files skip
//! this: the native engine (`native/`) runs Q4_1 as stored. gemma3 files in any other type
//! the native engine does not read (F16, Q4_0, Q5_K...) are converted whole, matrices to Q8_0
//! and vectors to F32, so that they run on the native engine: candle's gemma3 uses SiLU where
//! Gemma uses GELU and drops the sliding window when decoding.
//!
//! Measured on SmolLM2-135M Q4_1 (2 cores, AVX2) with candle: about 2 tokens/s as shipped
//! against about 100 tokens/s after conversion. K-quants would be smaller but need rows divisible by 256
//! (SmolLM2's 576 is not), and Q4_0 made that model emit end-of-sequence at once.

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufWriter, Cursor, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use candle_core::Device;
use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use sha2::{Digest, Sha256};

use crate::error::{LocalError, candle_message, guard};
use crate::gguf::{GgufFile, Meta, reader};

/// Quant types candle 0.11 multiplies with scalar code on x86.
const SLOW_TYPES: [GgmlDType; 3] = [GgmlDType::Q4_1, GgmlDType::Q5_0, GgmlDType::Q5_1];

/// Metadata key recording which file (by SHA-256) a converted file came from.
const SOURCE_KEY: &str = "llmkit.requantized_from";

/// `general.file_type` for "mostly Q8_0" in llama.cpp's numbering.
const FILE_TYPE_Q8_0: u32 = 7;

/// Returns a GGUF whose weights candle runs fast: `source` itself when it has no slow tensors,
/// otherwise a cached (or freshly made) Q8_0 conversion.
pub(crate) fn prepare(
    source: GgufFile,
    cache_dir: Option<&Path>,
    notify: &dyn Fn(&str),
) -> Result<GgufFile, LocalError> {
    let slow = slow_types(&source);
    if slow.is_empty() {
        return Ok(source);
    }
    convert_cached(source, &slow, cache_dir, notify)
}

/// Converts `source`'s slow tensors to Q8_0 into the cache (or reuses the cached file) and
/// returns the cached file's path. Fails when the source has nothing to convert or the result
/// cannot be written anywhere.
pub(crate) fn convert_to_file(
    source: GgufFile,
    cache_dir: Option<&Path>,
    notify: &dyn Fn(&str),
) -> Result<PathBuf, LocalError> {
    let slow = slow_types(&source);
    let source_path = source.path().to_path_buf();
    if slow.is_empty() {
        return Err(LocalError::InvalidRequest(format!(
            "{} has no Q4_1, Q5_0 or Q5_1 weights to convert",
            source_path.display()
        )));
    }
    let converted = convert_cached(source, &slow, cache_dir, notify)?;
    if converted.path() == source_path {
        return Err(LocalError::InvalidRequest(format!(
            "cannot write the converted model next to {} or into the cache directory",
            source_path.display()
        )));
    }
    Ok(converted.path().to_path_buf())
}

fn convert_cached(
    source: GgufFile,
    slow: &[String],
    cache_dir: Option<&Path>,
    notify: &dyn Fn(&str),
) -> Result<GgufFile, LocalError> {
    let digest = sha256_hex(source.bytes());
    let name = cache_file_name(source.path(), &digest);
    let dirs = candidate_dirs(source.path(), cache_dir);

    for dir in &dirs {
        let path = dir.join(&name);
        if path.is_file()
            && let Ok(cached) = GgufFile::open(&path)
            && Meta(cached.content()).str(SOURCE_KEY) == Some(digest.as_str())
        {
            return Ok(cached);
        }
    }

    let file_name = source
        .path()
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let why = if converts_whole(&source) {
        "so that llmkit's own engine runs it (candle's gemma3 computes GELU and the sliding window differently)"
    } else {
        "for fast CPU inference"
    };
    notify(&format!(
        "converting {file_name} ({}) to Q8_0 {why}; this happens once and the result is cached",
        slow.join(", ")
    ));
    let converted = convert(&source)?;

    let mut failures = Vec::new();
    for dir in &dirs {
        let path = dir.join(&name);
        match write_atomically(&path, |w| write_gguf(w, &source, &digest, &converted)) {
            Ok(()) => {
                notify(&format!("cached the converted model at {}", path.display()));
                return GgufFile::open(&path);
            }
            Err(err) => failures.push(format!("{}: {err}", dir.display())),
        }
    }
    notify(&format!(
        "cannot cache the converted model ({}); it will be converted again on every load (pass a writable cache directory to avoid this)",
        failures.join("; ")
    ));
    let mut buffer = Cursor::new(Vec::new());
    write_gguf(&mut buffer, &source, &digest, &converted).map_err(|e| {
        LocalError::Inference(format!("cannot convert the model: {}", candle_message(&e)))
    })?;
    GgufFile::from_owned(source.path(), buffer.into_inner())
}

/// The names of the quant types present in `file` that loading converts (empty when there is
/// nothing to do).
pub(crate) fn slow_types(file: &GgufFile) -> Vec<String> {
    let whole = converts_whole(file);
    let found: BTreeSet<String> = file
        .content()
        .tensor_infos
        .values()
        .filter(|info| target(info.ggml_dtype, info.shape.rank(), whole).is_some())
        .map(|info| format!("{:?}", info.ggml_dtype))
        .collect();
    found.into_iter().collect()
}

/// Whether every tensor of `file` the native engine cannot read as stored is converted, not just
/// the slow types: for families whose candle model computes the wrong thing (gemma3).
fn converts_whole(file: &GgufFile) -> bool {
    Meta(file.content()).str("general.architecture") == Some("gemma3")
}

/// The type a tensor of `dtype` and `rank` is converted to, or `None` to keep it: slow types to
/// Q8_0 always; with `whole`, every matrix type but Q4_1/Q8_0/Q4_K/Q6_K to Q8_0 and every vector
/// type but F32 to F32 (the types the native engine reads).
fn target(dtype: GgmlDType, rank: usize, whole: bool) -> Option<GgmlDType> {
    if SLOW_TYPES.contains(&dtype) && !(whole && dtype == GgmlDType::Q4_1) {
        return Some(GgmlDType::Q8_0);
    }
    if !whole {
        return None;
    }
    match (rank, dtype) {
        (2, GgmlDType::Q4_1 | GgmlDType::Q8_0 | GgmlDType::Q4K | GgmlDType::Q6K)
        | (1, GgmlDType::F32) => None,
        (2, _) => Some(GgmlDType::Q8_0),
        (1, _) => Some(GgmlDType::F32),
        _ => None,
    }
}

/// `<stem>.<first 16 hex digits of the source's SHA-256>.q8_0.gguf`.
pub(crate) fn cache_file_name(source: &Path, sha256_hex: &str) -> String {
    let stem = source
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    let short = sha256_hex.get(..16).unwrap_or(sha256_hex);
    format!("{stem}.{short}.q8_0.gguf")
}

/// Lowercase hex SHA-256 of `bytes` (sha2 uses the CPU's SHA extensions when present).
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn candidate_dirs(source: &Path, cache_dir: Option<&Path>) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    let parent = source
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    dirs.push(parent.to_path_buf());
    if let Some(dir) = cache_dir {
        dirs.push(dir.to_path_buf());
    }
    dirs
}

/// The tensors of the output file, in source order.
type Converted = Vec<(String, QTensor)>;

/// Reads every tensor and converts the slow ones, on all cores.
fn convert(source: &GgufFile) -> Result<Converted, LocalError> {
    let mut names: Vec<(&String, u64)> = source
        .content()
        .tensor_infos
        .iter()
        .map(|(name, info)| (name, info.offset))
        .collect();
    // File order keeps reads sequential and makes the output deterministic.
    names.sort_by_key(|(_, offset)| *offset);
    let names: Vec<&String> = names.into_iter().map(|(n, _)| n).collect();
    let whole = converts_whole(source);

    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<QTensor, String>>>> =
        Mutex::new((0..names.len()).map(|_| None).collect());
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(names.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(name) = names.get(i) else { break };
                    let result = guard("converting weights", || convert_one(source, name, whole))
                        .and_then(|r| r.map_err(|e| candle_message(&e)));
                    if let Ok(mut slots) = results.lock() {
                        slots[i] = Some(result);
                    }
                }
            });
        }
    });
    let slots = results
        .into_inner()
        .map_err(|_| LocalError::Inference("a conversion thread failed".into()))?;
    let mut out = Vec::with_capacity(names.len());
    for (name, slot) in names.into_iter().zip(slots) {
        match slot {
            Some(Ok(tensor)) => out.push((name.clone(), tensor)),
            Some(Err(err)) => {
                return Err(LocalError::InvalidModel {
                    path: source.path().to_path_buf(),
                    detail: format!("cannot convert tensor `{name}`: {err}"),
                });
            }
            None => {
                return Err(LocalError::Inference(format!(
                    "tensor `{name}` was not converted"
                )));
            }
        }
    }
    Ok(out)
}

fn convert_one(source: &GgufFile, name: &str, whole: bool) -> candle_core::Result<QTensor> {
    let mut r = reader(source.bytes());
    let tensor = source.content().tensor(&mut r, name, &Device::Cpu)?;
    let Some(to) = target(tensor.dtype(), tensor.shape().rank(), whole) else {
        return Ok(tensor);
    };
    let dense = tensor.dequantize(&Device::Cpu)?;
    QTensor::quantize(&dense, to)
}

fn write_gguf<W: Write + Seek>(
    w: &mut W,
    source: &GgufFile,
    digest: &str,
    tensors: &Converted,
) -> candle_core::Result<()> {
    // The source digest is recorded so that a cached file can be checked against its source.
    let source_digest = Value::String(digest.to_string());
    let file_type = Value::U32(FILE_TYPE_Q8_0);
    let mut metadata: Vec<(&str, &Value)> = source
        .content()
        .metadata
        .iter()
        // candle's writer always aligns to 32 bytes; a different declared alignment would
        // make the file unreadable.
        .filter(|(key, _)| {
            !matches!(
                key.as_str(),
                "general.alignment" | "general.file_type" | SOURCE_KEY
            )
        })
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    metadata.sort_by_key(|(k, _)| *k);
    metadata.push(("general.file_type", &file_type));
    metadata.push((SOURCE_KEY, &source_digest));
    let refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    gguf_file::write(w, &metadata, &refs)
}

/// Writes `path` through a temporary file in the same directory and renames it into place, so
/// that readers never see a half-written model.
fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<fs::File>) -> candle_core::Result<()>,
) -> std::io::Result<()> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{file_name}.{}.tmp", std::process::id()));
    let result = (|| {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        let mut w = BufWriter::new(fs::File::create(&tmp)?);
        write(&mut w).map_err(|e| std::io::Error::other(candle_message(&e)))?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_name_uses_stem_and_short_hash() {
        let name = cache_file_name(
            Path::new("/m/SmolLM2-135M-Instruct.Q4_1.gguf"),
            "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        );
        assert_eq!(
            name,
            "SmolLM2-135M-Instruct.Q4_1.b179c9523d0e6a0f.q8_0.gguf"
        );
    }

    #[test]
    fn conversion_targets() {
        use GgmlDType::*;
        // Slow types always; Q4_1 stays for gemma3, whose native engine reads it.
        assert_eq!(target(Q5_0, 2, false), Some(Q8_0));
        assert_eq!(target(Q4_1, 2, false), Some(Q8_0));
        assert_eq!(target(Q4_1, 2, true), None);
        // Other types only when the whole file converts.
        assert_eq!(target(Q5K, 2, false), None);
        assert_eq!(target(Q5K, 2, true), Some(Q8_0));
        assert_eq!(target(Q4K, 2, true), None);
        assert_eq!(target(F16, 2, true), Some(Q8_0));
        assert_eq!(target(Q8_0, 2, true), None);
        assert_eq!(target(F16, 1, true), Some(F32));
        assert_eq!(target(F32, 1, true), None);
    }

    #[test]
    fn sha256_matches_known_vector() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn atomic_write_leaves_no_temp_file_on_failure() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.gguf");
        let err = write_atomically(&path, |_| Err(candle_core::Error::Msg("nope".into())));
        assert!(err.is_err());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
        write_atomically(&path, |w| Ok(w.write_all(b"ok")?)).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"ok");
    }
}
