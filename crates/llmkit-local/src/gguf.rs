//! Memory-maps GGUF files and validates them (magic, header, tensor extents) before candle sees them.
//!
//! It uses `unsafe` once: mapping a file is unsafe because another process could change it
//! while it is mapped. (The crate's other `unsafe` code is in `kernels/` and `embed.rs`.)
#![allow(unsafe_code)]

use std::fs::File;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::{Content, Value};
use memmap2::Mmap;

use crate::error::{LocalError, candle_message, guard};

/// The magic bytes every GGUF file starts with.
const GGUF_MAGIC: &[u8; 4] = b"GGUF";

/// A validated GGUF file, memory-mapped (or held in memory when it was converted but could not
/// be cached on disk).
pub(crate) struct GgufFile {
    path: PathBuf,
    storage: Storage,
    content: Content,
}

enum Storage {
    Mapped(Mmap),
    Owned(Vec<u8>),
}

impl GgufFile {
    /// Maps `path` and parses its header, turning every failure into a typed error.
    pub(crate) fn open(path: &Path) -> Result<Self, LocalError> {
        let file = match File::open(path) {
            Ok(file) => file,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Err(LocalError::ModelNotFound {
                    path: path.to_path_buf(),
                    hint: crate::catalog::missing_file_hint(path),
                });
            }
            Err(err) => return Err(LocalError::io(path, err)),
        };
        let meta = file.metadata().map_err(|e| LocalError::io(path, e))?;
        if meta.is_dir() {
            return Err(LocalError::NotGguf {
                path: path.to_path_buf(),
                detail: "it is a directory".into(),
            });
        }
        // SAFETY: the file is opened read-only and we only ever read from the map. The map stays
        // valid as long as nobody truncates or rewrites the file in place while it is loaded; our
        // own writers (the requantisation cache) always write a new file and rename it over the
        // old path, which leaves existing maps of the old inode intact.
        let mmap = unsafe { Mmap::map(&file) }.map_err(|e| LocalError::io(path, e))?;
        let content = parse_header(path, &mmap)?;
        validate_tensor_extents(path, &content, mmap.len() as u64)?;
        Ok(Self {
            path: path.to_path_buf(),
            storage: Storage::Mapped(mmap),
            content,
        })
    }

    /// Wraps GGUF bytes held in memory (a converted model that could not be cached on disk).
    /// `path` is only used in messages.
    pub(crate) fn from_owned(path: &Path, bytes: Vec<u8>) -> Result<Self, LocalError> {
        let content = parse_header(path, &bytes)?;
        validate_tensor_extents(path, &content, bytes.len() as u64)?;
        Ok(Self {
            path: path.to_path_buf(),
            storage: Storage::Owned(bytes),
            content,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The whole file, as mapped.
    pub(crate) fn bytes(&self) -> &[u8] {
        match &self.storage {
            Storage::Mapped(mmap) => mmap,
            Storage::Owned(bytes) => bytes,
        }
    }

    pub(crate) fn content(&self) -> &Content {
        &self.content
    }

    /// A fresh parse of the header, for loaders that take the `Content` by value.
    pub(crate) fn reparse(&self) -> Result<Content, LocalError> {
        parse_header(&self.path, self.bytes())
    }
}

/// The reader as a hostile file meets it, for the fuzz targets in `fuzz/` (feature
/// `fuzzing`, off by default): the header and tensor extents as `open` checks them, the
/// metadata reads every loader makes, and with `tokenizer` the tokenizer built from the
/// metadata. A file name is needed only in messages.
#[cfg(feature = "fuzzing")]
pub fn fuzz_gguf(bytes: &[u8], tokenizer: bool) -> Result<(), LocalError> {
    let path = Path::new("/nonexistent/fuzz.gguf");
    let file = GgufFile::from_owned(path, bytes.to_vec())?;
    let meta = Meta(file.content());
    let _ = (
        meta.str("general.architecture"),
        meta.bool("tokenizer.ggml.add_bos_token"),
    );
    let _ = (
        meta.u64("general.alignment"),
        meta.string_array("tokenizer.ggml.tokens"),
    );
    let _ = crate::native::supports(&file);
    if tokenizer {
        crate::tokenizer::TextCodec::load(&file, path)?;
    }
    Ok(())
}

/// Read-only helpers over GGUF metadata.
pub(crate) struct Meta<'a>(pub(crate) &'a Content);

impl<'a> Meta<'a> {
    pub(crate) fn str(&self, key: &str) -> Option<&'a str> {
        match self.0.metadata.get(key) {
            Some(Value::String(s)) => Some(s.as_str()),
            _ => None,
        }
    }

    pub(crate) fn u64(&self, key: &str) -> Option<u64> {
        match self.0.metadata.get(key)? {
            Value::U8(v) => Some(u64::from(*v)),
            Value::U16(v) => Some(u64::from(*v)),
            Value::U32(v) => Some(u64::from(*v)),
            Value::U64(v) => Some(*v),
            Value::I8(v) => u64::try_from(*v).ok(),
            Value::I16(v) => u64::try_from(*v).ok(),
            Value::I32(v) => u64::try_from(*v).ok(),
            Value::I64(v) => u64::try_from(*v).ok(),
            _ => None,
        }
    }

    pub(crate) fn bool(&self, key: &str) -> Option<bool> {
        match self.0.metadata.get(key)? {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub(crate) fn string_array(&self, key: &str) -> Option<Vec<&'a str>> {
        match self.0.metadata.get(key)? {
            Value::Array(items) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Some(s.as_str()),
                    _ => None,
                })
                .collect(),
            _ => None,
        }
    }
}

/// A reader over in-memory GGUF bytes, as candle's loaders want.
pub(crate) fn reader(bytes: &[u8]) -> Cursor<&[u8]> {
    Cursor::new(bytes)
}

fn parse_header(path: &Path, bytes: &[u8]) -> Result<Content, LocalError> {
    if bytes.len() < 4 || &bytes[..4] != GGUF_MAGIC {
        if bytes.len() < 4 && GGUF_MAGIC.starts_with(bytes) && !bytes.is_empty() {
            return Err(truncated(path, "the file ends inside the GGUF magic"));
        }
        return Err(LocalError::NotGguf {
            path: path.to_path_buf(),
            detail: describe_non_gguf(bytes),
        });
    }
    if declares_zero_alignment(bytes) {
        return Err(LocalError::InvalidModel {
            path: path.to_path_buf(),
            detail: "general.alignment is 0 (it must be a power of two, usually 32)".into(),
        });
    }
    let parsed = guard("reading the GGUF header", || {
        Content::read(&mut Cursor::new(bytes))
    });
    match parsed {
        Ok(Ok(content)) => Ok(content),
        Ok(Err(err)) => Err(classify_header_error(path, &candle_message(&err))),
        Err(panic) => Err(LocalError::InvalidModel {
            path: path.to_path_buf(),
            detail: panic,
        }),
    }
}

/// Whether the header sets `general.alignment` to 0, which candle divides by (a panic that
/// `guard` cannot catch where panics abort, as in the fuzz builds). Found by its encoding
/// (the key's u64 length and bytes, an integer type tag, a zero value) rather than by a
/// second metadata parser: a string value that happens to hold these exact bytes is refused
/// too, which no real model does.
fn declares_zero_alignment(bytes: &[u8]) -> bool {
    const KEY: &[u8] = b"general.alignment";
    let mut needle = (KEY.len() as u64).to_le_bytes().to_vec();
    needle.extend_from_slice(KEY);
    let mut from = 0;
    while let Some(at) = bytes[from..]
        .windows(needle.len())
        .position(|w| w == needle.as_slice())
    {
        let value = from + at + needle.len();
        let tag = bytes
            .get(value..value + 4)
            .map(|t| u32::from_le_bytes([t[0], t[1], t[2], t[3]]));
        // GGUF value types: 0 u8, 1 i8, 2 u16, 3 i16, 4 u32, 5 i32, 10 u64, 11 i64.
        let width = match tag {
            Some(0 | 1) => 1,
            Some(2 | 3) => 2,
            Some(4 | 5) => 4,
            Some(10 | 11) => 8,
            _ => 0,
        };
        if width > 0
            && let Some(v) = bytes.get(value + 4..value + 4 + width)
            && v.iter().all(|&b| b == 0)
        {
            return true;
        }
        from += at + 1;
    }
    false
}

fn classify_header_error(path: &Path, message: &str) -> LocalError {
    let lower = message.to_lowercase();
    if lower.contains("remaining") || lower.contains("eof") || lower.contains("fill whole buffer") {
        truncated(path, &format!("the header is incomplete ({message})"))
    } else if lower.contains("magic") || lower.contains("version") {
        LocalError::NotGguf {
            path: path.to_path_buf(),
            detail: message.to_string(),
        }
    } else {
        LocalError::InvalidModel {
            path: path.to_path_buf(),
            detail: message.to_string(),
        }
    }
}

/// Checks that every tensor lies inside the file: a short download passes the header check but
/// would otherwise fail deep inside candle.
fn validate_tensor_extents(
    path: &Path,
    content: &Content,
    file_len: u64,
) -> Result<(), LocalError> {
    for (name, info) in &content.tensor_infos {
        // Checked: a hostile file's dimensions can multiply past `usize` (candle's
        // `elem_count` would wrap, or panic with overflow checks on).
        let Some(elems) = info
            .shape
            .dims()
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
        else {
            return Err(LocalError::InvalidModel {
                path: path.to_path_buf(),
                detail: format!("tensor `{name}` has more elements than memory can hold"),
            });
        };
        let block = info.ggml_dtype.block_size();
        if block == 0 || elems % block != 0 {
            return Err(LocalError::InvalidModel {
                path: path.to_path_buf(),
                detail: format!(
                    "tensor `{name}` has {elems} elements, not a multiple of its block size {block}"
                ),
            });
        }
        let size = ((elems / block) as u64).checked_mul(info.ggml_dtype.type_size() as u64);
        let end = content
            .tensor_data_offset
            .checked_add(info.offset)
            .zip(size)
            .and_then(|(start, size)| start.checked_add(size));
        match end {
            Some(end) if end <= file_len => {}
            Some(end) => {
                return Err(truncated(
                    path,
                    &format!(
                        "tensor `{name}` ends at byte {end} but the file has only {file_len} bytes"
                    ),
                ));
            }
            None => {
                return Err(LocalError::InvalidModel {
                    path: path.to_path_buf(),
                    detail: format!("tensor `{name}` has an impossible offset"),
                });
            }
        }
    }
    Ok(())
}

fn truncated(path: &Path, detail: &str) -> LocalError {
    LocalError::Truncated {
        path: path.to_path_buf(),
        detail: detail.to_string(),
    }
}

/// Says what a non-GGUF file looks like, so the user can tell a Git LFS pointer or an HTML error
/// page from a random binary.
fn describe_non_gguf(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "the file is empty".into();
    }
    let head = &bytes[..bytes.len().min(64)];
    if head.starts_with(b"version https://git-lfs") {
        return "it is a Git LFS pointer, not the model itself".into();
    }
    match std::str::from_utf8(head) {
        Ok(text) if !text.contains('\0') => {
            let first_line = text.lines().next().unwrap_or("").trim();
            format!("it looks like a text file (starts with {first_line:?})")
        }
        _ => format!(
            "it starts with bytes {:02x?} instead of \"GGUF\"",
            &bytes[..bytes.len().min(4)]
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_files_are_described() {
        assert!(describe_non_gguf(b"hello world\nmore").contains("text file"));
        assert!(describe_non_gguf(b"version https://git-lfs.github.com/spec/v1").contains("LFS"));
        assert!(describe_non_gguf(&[0u8, 1, 2, 3, 0]).contains("instead of"));
        assert_eq!(describe_non_gguf(b""), "the file is empty");
    }

    #[test]
    fn short_magic_is_truncated() {
        let err = parse_header(Path::new("x.gguf"), b"GG").unwrap_err();
        assert!(matches!(err, LocalError::Truncated { .. }), "{err:?}");
    }

    #[test]
    fn a_token_longer_than_the_file_is_refused() {
        // Found by the `gguf` fuzz target (issue 22): one byte of a tokenizer string's length
        // changed, so it claims 5 MB in a 1 KB file. With RUST_BACKTRACE=1 the error used to
        // resolve candle's backtrace, 72 MB for a message that drops it.
        let bytes = include_bytes!("../tests/fixtures/fuzz-gguf-token-length.gguf");
        let err = parse_header(Path::new("x.gguf"), bytes).unwrap_err();
        assert!(
            err.to_string().contains("exceeds remaining file bytes"),
            "{err}"
        );
        assert!(!err.to_string().contains("candle_core::"), "{err}");
    }

    #[test]
    fn dimensions_whose_product_overflows_are_refused() {
        // Found by the `gguf` fuzz target (issue 22): a tensor's dimensions multiply past
        // usize, which wrapped (release) or panicked (overflow checks) in the extent check.
        let bytes = include_bytes!("../tests/fixtures/fuzz-gguf-dims-overflow.gguf");
        let content = parse_header(Path::new("x.gguf"), bytes).unwrap();
        let err =
            validate_tensor_extents(Path::new("x.gguf"), &content, bytes.len() as u64).unwrap_err();
        // Refused as a bad or short file, never a wrapped size or an overflow panic.
        assert!(
            matches!(
                err,
                LocalError::InvalidModel { .. } | LocalError::Truncated { .. }
            ),
            "{err:?}"
        );
    }

    /// A GGUF v3 header with one metadata entry, `general.alignment` of type `tag`.
    fn header_with_alignment(tag: u32, value: &[u8]) -> Vec<u8> {
        let mut b = b"GGUF".to_vec();
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&0u64.to_le_bytes());
        b.extend_from_slice(&1u64.to_le_bytes());
        b.extend_from_slice(&17u64.to_le_bytes());
        b.extend_from_slice(b"general.alignment");
        b.extend_from_slice(&tag.to_le_bytes());
        b.extend_from_slice(value);
        b
    }

    #[test]
    fn a_zero_alignment_is_refused_before_candle_divides_by_it() {
        // Found by the `gguf` fuzz target (issue 22): candle divides by general.alignment,
        // a panic that aborts where panics abort (the fuzz builds).
        for (tag, value) in [
            (4, &0u32.to_le_bytes()[..]),
            (10, &0u64.to_le_bytes()[..]),
            (0, &[0u8][..]),
        ] {
            let err =
                parse_header(Path::new("x.gguf"), &header_with_alignment(tag, value)).unwrap_err();
            assert!(err.to_string().contains("general.alignment is 0"), "{err}");
        }
        // A real alignment parses.
        let ok = header_with_alignment(4, &32u32.to_le_bytes());
        assert!(parse_header(Path::new("x.gguf"), &ok).is_ok());
    }

    #[test]
    fn header_cut_short_is_truncated() {
        // Magic, version 3, then a tensor count that says there is more to come.
        let mut bytes = b"GGUF".to_vec();
        bytes.extend_from_slice(&3u32.to_le_bytes());
        bytes.extend_from_slice(&10u64.to_le_bytes());
        let err = parse_header(Path::new("x.gguf"), &bytes).unwrap_err();
        assert!(matches!(err, LocalError::Truncated { .. }), "{err:?}");
    }
}
