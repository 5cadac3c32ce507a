//! The attachment flags (`-a FILE|URL`, `--image-detail`, `--pdf`) and `/attach`: files read
//! here, recognised and size-checked by `llmkit_tasks::attachment`, PDFs sent as files or as
//! their text (`pdftotext`), and the parts checked against the model before anything is sent.

use std::path::Path;
use std::process::Command;

use clap::{Args, ValueEnum};
use llmkit_client::Backend;
use llmkit_tasks::attachment::{self, Attachment, Kind};
use llmkit_types::{ContentPart, ImageDetail};

use crate::app::{Ctx, notice};
use crate::error::CliError;

/// Files and images sent with the prompt.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct AttachArgs {
    /// Attach a file (png, jpeg, webp, gif, pdf, wav, mp3, or text) or an image URL.
    /// Repeatable.
    #[arg(short = 'a', long = "attach", value_name = "FILE|URL")]
    pub attach: Vec<String>,
    /// How closely the model looks at images: `low` (a fixed, small cost), `high`, `auto`.
    #[arg(long, value_enum, value_name = "low|high|auto")]
    pub image_detail: Option<Detail>,
    /// How PDFs go: `auto` (as a file to models that read files, else as text; as text with
    /// --redact, so that it can be redacted), `file`, or `text` (extracted by pdftotext).
    #[arg(long, value_enum, default_value_t = PdfMode::Auto, value_name = "auto|file|text")]
    pub pdf: PdfMode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Detail {
    Low,
    High,
    Auto,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub(crate) enum PdfMode {
    #[default]
    Auto,
    File,
    Text,
}

impl Detail {
    pub(crate) fn wire(self) -> ImageDetail {
        match self {
            Self::Low => ImageDetail::Low,
            Self::High => ImageDetail::High,
            Self::Auto => ImageDetail::Auto,
        }
    }
}

impl AttachArgs {
    fn detail(&self) -> Option<ImageDetail> {
        self.image_detail.map(Detail::wire)
    }
}

/// The content parts for `specs` (paths or image URLs), checked for `model` on `backend`:
/// every file read and recognised, the limits of each kind and of the request kept, a model
/// that cannot read a kind refused, before a request is sent or a session touched.
pub(crate) fn parts(
    ctx: &Ctx,
    args: &AttachArgs,
    specs: &[String],
    model: &str,
    backend: &Backend,
) -> Result<Vec<ContentPart>, CliError> {
    let attachments = specs
        .iter()
        .map(|s| load(s))
        .collect::<Result<Vec<_>, _>>()?;
    attachment::check_total(&attachments)?;
    let local = backend.kind() == "local";
    let info = ctx.settings.models.info(model);
    let redact = ctx.settings.redaction.enabled;
    let mut out = Vec::with_capacity(attachments.len());
    for a in &attachments {
        if local && !matches!(a.kind(), Kind::Text | Kind::Pdf) {
            return Err(CliError::usage(
                format!(
                    "the embedded local model reads text only; {} is {}",
                    a.name(),
                    a.kind().describe()
                ),
                "set OPENAI_API_KEY and use a model that reads it (e.g. -m gpt-4o-mini); text \
                 files and PDFs (as text) attach to the local model too",
            ));
        }
        a.check_model(model, info)?;
        let part = match a.kind() {
            Kind::Pdf => {
                let as_file = match args.pdf {
                    PdfMode::File if local => {
                        return Err(CliError::usage(
                            "the embedded local model cannot read PDF files",
                            "use --pdf text (or auto) to send the PDF's text",
                        ));
                    }
                    PdfMode::File => true,
                    PdfMode::Text => false,
                    PdfMode::Auto => !local && !redact && attachment::reads_files(info),
                };
                if as_file {
                    if redact {
                        notice(&format!(
                            "note: --redact cannot see inside {}: it is sent as it is (use --pdf text to redact its text)",
                            a.name()
                        ));
                    }
                    a.to_part(None)
                } else {
                    if redact && args.pdf == PdfMode::Auto && attachment::reads_files(info) {
                        notice(&format!(
                            "note: {} is sent as its text so that --redact can redact it",
                            a.name()
                        ));
                    }
                    attachment::text_part(a.name(), &pdf_text(a.name())?)
                }
            }
            Kind::Image(_) => {
                if redact {
                    notice(&format!(
                        "note: --redact cannot see inside images: {} is sent as it is",
                        a.name()
                    ));
                }
                a.to_part(args.detail())
            }
            Kind::Audio(_) | Kind::Text => a.to_part(None),
        };
        out.push(part);
    }
    Ok(out)
}

/// Reads and recognises one attachment: an image URL as it is, a file by its bytes (its
/// size checked before it is read).
pub(crate) fn load(spec: &str) -> Result<Attachment, CliError> {
    if spec.starts_with("http://") || spec.starts_with("https://") {
        return Ok(Attachment::from_url(spec)?);
    }
    let path = Path::new(spec);
    let meta = std::fs::metadata(path).map_err(|e| {
        CliError::usage(
            format!("cannot read attachment {spec}: {e}"),
            "check the path (attachments are files or http(s) image URLs)",
        )
    })?;
    if meta.is_dir() {
        return Err(CliError::usage(
            format!("attachment {spec} is a directory"),
            "attach files one by one: -a FILE -a FILE",
        ));
    }
    Attachment::check_file_size(spec, meta.len())?;
    let bytes = std::fs::read(path).map_err(|e| {
        CliError::usage(
            format!("cannot read attachment {spec}: {e}"),
            "check the file's permissions",
        )
    })?;
    Ok(Attachment::from_bytes(spec, bytes)?)
}

/// A PDF's text by `pdftotext -layout` (poppler-utils), with a clear error when the tool is
/// missing or the PDF has no text layer.
fn pdf_text(path: &str) -> Result<String, CliError> {
    let out = Command::new("pdftotext")
        .args(["-layout", "-enc", "UTF-8", path, "-"])
        .output()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                CliError::usage(
                    format!("{path} must be sent as text here, and pdftotext is not installed"),
                    "install poppler-utils (apt-get install poppler-utils), or send the file \
                     itself with --pdf file to a model that reads PDFs",
                )
            } else {
                CliError::failure(format!("cannot run pdftotext on {path}: {e}"), None)
            }
        })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(CliError::usage(
            format!(
                "pdftotext cannot read {path}: {}",
                err.lines().next().unwrap_or("it failed")
            ),
            "check that the PDF opens; a damaged or encrypted PDF needs repairing first",
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if text.trim().is_empty() {
        return Err(CliError::usage(
            format!("{path} has no text layer (a scanned PDF?)"),
            "send it with --pdf file to a model that reads PDFs, or OCR it first",
        ));
    }
    Ok(text)
}
