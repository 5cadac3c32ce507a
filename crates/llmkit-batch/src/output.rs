//! The output file: repaired on resume (torn last line cut, lines beyond the recorded count
//! dropped) and afterwards only ever grown by whole lines.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::BatchError;

/// An output file opened for appending whole lines.
pub struct OutputFile {
    path: PathBuf,
    file: std::io::BufWriter<File>,
}

impl OutputFile {
    /// Opens (creating) the output and cuts it to at most `recorded` whole lines. Returns
    /// the file and the number of whole lines it holds (≤ `recorded`).
    pub fn open_repaired(path: &Path, recorded: u64) -> Result<(Self, u64), BatchError> {
        let err = |source| BatchError::Output {
            path: path.to_path_buf(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(err)?;
        let (lines, keep) = whole_lines(&mut file, recorded).map_err(err)?;
        file.set_len(keep).map_err(err)?;
        file.seek(SeekFrom::End(0)).map_err(err)?;
        Ok((
            Self {
                path: path.to_path_buf(),
                file: std::io::BufWriter::with_capacity(1 << 16, file),
            },
            lines,
        ))
    }

    /// Appends one line (a newline is added).
    pub fn push(&mut self, line: &str) -> Result<(), BatchError> {
        self.file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.write_all(b"\n"))
            .map_err(|source| BatchError::Output {
                path: self.path.clone(),
                source,
            })
    }

    /// Hands everything written so far to the OS (it survives a killed process).
    pub fn flush(&mut self) -> Result<(), BatchError> {
        self.file.flush().map_err(|source| BatchError::Output {
            path: self.path.clone(),
            source,
        })
    }
}

/// Counts whole lines up to `max` and the byte length they span.
fn whole_lines(file: &mut File, max: u64) -> std::io::Result<(u64, u64)> {
    file.seek(SeekFrom::Start(0))?;
    let mut reader = BufReader::with_capacity(1 << 16, &mut *file);
    let (mut lines, mut bytes) = (0u64, 0u64);
    let mut buf = Vec::new();
    while lines < max {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf)?;
        if n == 0 || buf.last() != Some(&b'\n') {
            break;
        }
        lines += 1;
        bytes += n as u64;
    }
    Ok((lines, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torn_and_extra_lines_are_cut() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.jsonl");
        std::fs::write(&p, "a\nb\nc\nd\ntorn").unwrap();
        let (mut out, lines) = OutputFile::open_repaired(&p, 3).unwrap();
        assert_eq!(lines, 3);
        out.push("x").unwrap();
        out.flush().unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "a\nb\nc\nx\n");
        let (_, lines) = OutputFile::open_repaired(&p, 10).unwrap();
        assert_eq!(lines, 4);
        std::fs::write(&p, "a\nto").unwrap();
        let (_, lines) = OutputFile::open_repaired(&p, 10).unwrap();
        assert_eq!(lines, 1);
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "a\n");
    }
}
