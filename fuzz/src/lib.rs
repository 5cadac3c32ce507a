//! What the fuzz targets share: a scratch directory for the readers that take a path, and
//! the byte splits that feed streaming parsers.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A directory of this process's own under the system temp directory, made once.
pub fn scratch_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("llmkit-fuzz-{}", std::process::id()));
        // A target that cannot make its scratch directory cannot run at all: say so loudly.
        if let Err(e) = std::fs::create_dir_all(&dir) {
            panic!(
                "cannot create the fuzz scratch directory {}: {e}",
                dir.display()
            );
        }
        dir
    })
}

/// Writes `bytes` to the scratch file `name` and returns its path.
pub fn scratch_file(name: &str, bytes: &[u8]) -> PathBuf {
    let path = scratch_dir().join(name);
    if let Err(e) = std::fs::write(&path, bytes) {
        panic!("cannot write the fuzz scratch file {}: {e}", path.display());
    }
    path
}

/// Splits `data` into pieces whose lengths come from `seed` (1 to 16 bytes each), so that
/// one input exercises a streaming parser at many different byte boundaries.
pub fn pieces(seed: u8, data: &[u8]) -> Vec<&[u8]> {
    let mut state = u32::from(seed) | 1;
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        // xorshift: cheap, deterministic for a given input, so crashes reproduce.
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let n = (state % 16 + 1) as usize;
        let (head, tail) = rest.split_at(n.min(rest.len()));
        out.push(head);
        rest = tail;
    }
    out
}
