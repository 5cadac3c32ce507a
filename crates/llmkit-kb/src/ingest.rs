//! Turning files into chunks: directory walks honouring `.gitignore`, readers per format
//! (text, Markdown, HTML, PDF via `pdftotext`, CSV/JSONL rows), content hashes, and
//! structure-aware chunking that keeps each chunk's heading path or row number.

use std::path::{Path, PathBuf};

use llmkit_tasks::{TokenCounter, chunk_text, html_to_text};
use sha2::{Digest, Sha256};

use crate::error::KbError;
use crate::store::NewChunk;

/// How documents are cut.
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkOptions {
    /// Most tokens per chunk (approximate count: about four characters a token). The
    /// default suits MiniLM's 256-token window and API embedding models alike.
    pub max_tokens: usize,
    /// Tokens shared by consecutive chunks of one section.
    pub overlap: usize,
}

impl Default for ChunkOptions {
    fn default() -> Self {
        Self {
            max_tokens: 200,
            overlap: 30,
        }
    }
}

/// One document read from a file: a whole file, or one CSV/JSONL row.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceDoc {
    pub text: String,
    /// Split at Markdown headings.
    pub markdown: bool,
    /// Where the document sits in its file (`row 3`); empty for a whole file.
    pub location: String,
}

/// A file read and hashed, ready to chunk.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// The source key: the file's absolute path.
    pub source: String,
    /// SHA-256 of the file's bytes (plus the text column for row formats).
    pub hash: String,
    pub docs: Vec<SourceDoc>,
}

/// The files under some paths, and what was left out.
#[derive(Debug, Default)]
pub struct Collected {
    pub files: Vec<PathBuf>,
    /// Files in walked directories with an extension no reader knows (skipped quietly).
    pub unsupported: usize,
    /// Paths that could not be walked, as warnings.
    pub warnings: Vec<String>,
}

const SUPPORTED: &[&str] = &[
    "txt", "text", "md", "markdown", "html", "htm", "pdf", "csv", "jsonl", "ndjson",
];

/// Expands paths: files are kept as given (a wrong type is reported when read); directories
/// are walked recursively, honouring `.gitignore`/`.ignore` files and skipping hidden ones.
pub fn collect_files(paths: &[PathBuf]) -> Collected {
    let mut out = Collected::default();
    for p in paths {
        if p.is_file() {
            out.files.push(p.clone());
            continue;
        }
        if !p.exists() {
            out.warnings
                .push(format!("{}: no such file or directory", p.display()));
            continue;
        }
        let walk = ignore::WalkBuilder::new(p)
            .standard_filters(true)
            .require_git(false)
            .sort_by_file_name(std::cmp::Ord::cmp)
            .build();
        for entry in walk {
            match entry {
                Ok(e) if e.file_type().is_some_and(|t| t.is_file()) => {
                    if extension(e.path()).is_some_and(|x| SUPPORTED.contains(&x.as_str())) {
                        out.files.push(e.into_path());
                    } else {
                        out.unsupported += 1;
                    }
                }
                Ok(_) => {}
                Err(err) => out.warnings.push(err.to_string()),
            }
        }
    }
    out
}

/// Reads one file into documents. `text_column` names the field holding the text in
/// CSV/JSONL files (one document per row).
pub fn load_file(path: &Path, text_column: Option<&str>) -> Result<Loaded, KbError> {
    let ext = extension(path).unwrap_or_default();
    if !SUPPORTED.contains(&ext.as_str()) {
        return Err(KbError::UnknownFormat {
            path: path.to_path_buf(),
        });
    }
    let bytes = std::fs::read(path).map_err(|source| KbError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut hasher = Sha256::new();
    hasher.update(&bytes);
    if matches!(ext.as_str(), "csv" | "jsonl" | "ndjson") {
        hasher.update(text_column.unwrap_or("").as_bytes());
    }
    let hash = format!("{:x}", hasher.finalize());
    let whole = |text: String, markdown: bool| {
        vec![SourceDoc {
            text,
            markdown,
            location: String::new(),
        }]
    };
    let docs = match ext.as_str() {
        "md" | "markdown" => whole(utf8(path, bytes)?, true),
        "html" | "htm" => whole(html_to_text(&utf8(path, bytes)?), false),
        "pdf" => whole(pdf_text(path)?, false),
        "csv" => csv_rows(path, &bytes, column(path, text_column)?)?,
        "jsonl" | "ndjson" => jsonl_rows(path, &utf8(path, bytes)?, column(path, text_column)?)?,
        _ => whole(utf8(path, bytes)?, false),
    };
    let source = std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string();
    Ok(Loaded { source, hash, docs })
}

/// Cuts a document into chunks: Markdown at headings first (each chunk keeps its heading
/// path), then paragraphs, sentences and words to the token budget, with overlap.
pub fn chunk_document(doc: &SourceDoc, opts: &ChunkOptions) -> Vec<NewChunk> {
    let counter = TokenCounter::Approx;
    let sections = if doc.markdown {
        markdown_sections(&doc.text)
    } else {
        vec![(Vec::new(), doc.text.clone())]
    };
    let mut out = Vec::new();
    for (headings, body) in sections {
        let mut location = headings.join(" > ");
        if !doc.location.is_empty() {
            location = if location.is_empty() {
                doc.location.clone()
            } else {
                format!("{}: {location}", doc.location)
            };
        }
        for piece in chunk_text(body.trim(), &counter, opts.max_tokens, opts.overlap) {
            let text = piece.trim();
            if !text.is_empty() {
                out.push(NewChunk {
                    text: text.to_string(),
                    location: location.clone(),
                });
            }
        }
    }
    out
}

impl NewChunk {
    /// The text to embed: the heading path gives the chunk its context.
    pub fn embed_text(&self) -> String {
        if self.location.is_empty() {
            self.text.clone()
        } else {
            format!("{}\n{}", self.location, self.text)
        }
    }

    /// The key of this chunk's vector in the embedding cache: the hash of what is embedded.
    pub fn cache_key(&self) -> String {
        format!("{:x}", Sha256::digest(self.embed_text().as_bytes()))
    }
}

/// Markdown split at ATX headings outside code fences: (heading path, body) per section.
fn markdown_sections(text: &str) -> Vec<(Vec<String>, String)> {
    let mut out = Vec::new();
    let mut path: Vec<(usize, String)> = Vec::new();
    let mut body = String::new();
    let mut fenced = false;
    let titles = |p: &[(usize, String)]| p.iter().map(|(_, t)| t.clone()).collect::<Vec<_>>();
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            fenced = !fenced;
        }
        let level = trimmed.chars().take_while(|c| *c == '#').count();
        let is_heading =
            !fenced && (1..=6).contains(&level) && trimmed[level..].starts_with([' ', '\t']);
        if is_heading {
            if !body.trim().is_empty() {
                out.push((titles(&path), std::mem::take(&mut body)));
            }
            body.clear();
            path.retain(|(l, _)| *l < level);
            path.push((
                level,
                trimmed[level..]
                    .trim()
                    .trim_end_matches('#')
                    .trim()
                    .to_string(),
            ));
        } else {
            body.push_str(line);
            body.push('\n');
        }
    }
    if !body.trim().is_empty() {
        out.push((titles(&path), body));
    }
    out
}

fn extension(path: &Path) -> Option<String> {
    path.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
}

fn utf8(path: &Path, bytes: Vec<u8>) -> Result<String, KbError> {
    String::from_utf8(bytes).map_err(|_| KbError::BadInput {
        path: path.to_path_buf(),
        message: "not UTF-8 text".into(),
    })
}

fn column<'a>(path: &Path, text_column: Option<&'a str>) -> Result<&'a str, KbError> {
    text_column.ok_or_else(|| KbError::BadInput {
        path: path.to_path_buf(),
        message: "CSV/JSONL files need --text-column NAME (the field holding the text)".into(),
    })
}

fn csv_rows(path: &Path, bytes: &[u8], col: &str) -> Result<Vec<SourceDoc>, KbError> {
    let bad = |message: String| KbError::BadInput {
        path: path.to_path_buf(),
        message,
    };
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(bytes);
    let headers = reader.headers().map_err(|e| bad(e.to_string()))?.clone();
    let idx = headers
        .iter()
        .position(|h| h.trim() == col)
        .ok_or_else(|| {
            bad(format!(
                "no column `{col}` (columns: {})",
                headers.iter().collect::<Vec<_>>().join(", ")
            ))
        })?;
    let mut docs = Vec::new();
    for (i, rec) in reader.records().enumerate() {
        let rec = rec.map_err(|e| bad(e.to_string()))?;
        if let Some(text) = rec.get(idx).filter(|t| !t.trim().is_empty()) {
            docs.push(SourceDoc {
                text: text.to_string(),
                markdown: false,
                location: format!("row {}", i + 1),
            });
        }
    }
    Ok(docs)
}

fn jsonl_rows(path: &Path, text: &str, col: &str) -> Result<Vec<SourceDoc>, KbError> {
    let mut docs = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| KbError::BadInput {
                path: path.to_path_buf(),
                message: format!("line {}: {e}", i + 1),
            })?;
        if let Some(t) = value
            .get(col)
            .and_then(|v| v.as_str())
            .filter(|t| !t.trim().is_empty())
        {
            docs.push(SourceDoc {
                text: t.to_string(),
                markdown: false,
                location: format!("row {}", i + 1),
            });
        }
    }
    if docs.is_empty() {
        return Err(KbError::BadInput {
            path: path.to_path_buf(),
            message: format!("no line has a text field `{col}`"),
        });
    }
    Ok(docs)
}

fn pdf_text(path: &Path) -> Result<String, KbError> {
    let out = std::process::Command::new("pdftotext")
        .arg("-q")
        .arg(path)
        .arg("-")
        .output();
    match out {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(KbError::NoPdfToText {
            path: path.to_path_buf(),
        }),
        Err(e) => Err(KbError::Read {
            path: path.to_path_buf(),
            source: e,
        }),
        Ok(o) if !o.status.success() => Err(KbError::BadInput {
            path: path.to_path_buf(),
            message: format!(
                "pdftotext failed: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ),
        }),
        Ok(o) => Ok(String::from_utf8_lossy(&o.stdout).into_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_keeps_heading_paths() {
        let doc = SourceDoc {
            text:
                "intro\n# Install\n## Linux\nuse apt\n```\n# not a heading\n```\n# Usage\nrun it\n"
                    .into(),
            markdown: true,
            location: String::new(),
        };
        let chunks = chunk_document(&doc, &ChunkOptions::default());
        let locs: Vec<&str> = chunks.iter().map(|c| c.location.as_str()).collect();
        assert_eq!(locs, vec!["", "Install > Linux", "Usage"]);
        assert!(chunks[1].text.contains("# not a heading"));
        assert_eq!(
            chunks[1].embed_text(),
            format!("Install > Linux\n{}", chunks[1].text)
        );
    }

    #[test]
    fn long_text_is_cut_with_overlap() {
        let text = (0..200)
            .map(|i| format!("Sentence number {i} is here."))
            .collect::<Vec<_>>()
            .join(" ");
        let doc = SourceDoc {
            text,
            markdown: false,
            location: "row 2".into(),
        };
        let chunks = chunk_document(
            &doc,
            &ChunkOptions {
                max_tokens: 50,
                overlap: 10,
            },
        );
        assert!(chunks.len() > 5);
        assert!(
            chunks
                .iter()
                .all(|c| c.location == "row 2" && c.text.len() <= 50 * 4 + 40)
        );
    }
}
