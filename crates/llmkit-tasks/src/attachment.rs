//! Attachments a prompt carries (images, PDFs, audio, text files), recognised by their bytes
//! rather than their names, checked against the API's size limits, and turned into the
//! content parts a chat message sends.
//!
//! The caller reads the files (this crate never does); what a PDF becomes (a file part, or
//! its text extracted by the caller) is the caller's choice, made with [`Attachment::kind`]
//! and the model's catalogue entry.

use base64::Engine as _;
use llmkit_client::{Modality, ModelInfo};
use llmkit_types::{ContentPart, FileInput, ImageDetail, ImageUrl, InputAudio};

/// The largest image the API takes (OpenAI's vision guide: 20 MB per image).
pub const MAX_IMAGE_BYTES: u64 = 20 * 1024 * 1024;
/// The largest file part (OpenAI's file inputs: 32 MB of PDF content per request).
pub const MAX_FILE_BYTES: u64 = 32 * 1024 * 1024;
/// The largest audio clip (the audio models' 25 MB upload limit).
pub const MAX_AUDIO_BYTES: u64 = 25 * 1024 * 1024;
/// The largest text file attached as text.
pub const MAX_TEXT_BYTES: u64 = 8 * 1024 * 1024;
/// All attachments of one request together (OpenAI's 50 MB payload limit).
pub const MAX_TOTAL_BYTES: u64 = 50 * 1024 * 1024;

/// The image formats the API reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    Png,
    Jpeg,
    Webp,
    Gif,
}

impl ImageFormat {
    pub fn mime(self) -> &'static str {
        match self {
            Self::Png => "image/png",
            Self::Jpeg => "image/jpeg",
            Self::Webp => "image/webp",
            Self::Gif => "image/gif",
        }
    }
}

/// The audio formats chat's `input_audio` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioFormat {
    Wav,
    Mp3,
}

impl AudioFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Wav => "wav",
            Self::Mp3 => "mp3",
        }
    }
}

/// What an attachment is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Image(ImageFormat),
    Pdf,
    Audio(AudioFormat),
    /// UTF-8 text (source code, notes, CSV): sent as a text part.
    Text,
}

impl Kind {
    /// A short name for messages: `png image`, `pdf`, `wav audio`, `text`.
    pub fn describe(self) -> String {
        match self {
            Self::Image(f) => format!("{} image", &f.mime()["image/".len()..]),
            Self::Pdf => "pdf".into(),
            Self::Audio(f) => format!("{} audio", f.as_str()),
            Self::Text => "text".into(),
        }
    }

    fn limit(self) -> u64 {
        match self {
            Self::Image(_) => MAX_IMAGE_BYTES,
            Self::Pdf => MAX_FILE_BYTES,
            Self::Audio(_) => MAX_AUDIO_BYTES,
            Self::Text => MAX_TEXT_BYTES,
        }
    }
}

/// An attachment refused, with the line the CLI prints after `hint:`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum AttachmentError {
    #[error("{name} is {size} bytes; a {kind} attachment may be at most {limit} bytes")]
    TooLarge {
        name: String,
        kind: String,
        size: u64,
        limit: u64,
    },
    #[error("the attachments add up to {size} bytes; one request may carry at most {limit}")]
    TooLargeTogether { size: u64, limit: u64 },
    #[error("{name} is empty")]
    Empty { name: String },
    #[error("{name} is not a type the API takes (png, jpeg, webp, gif, pdf, wav, mp3 or text)")]
    Unsupported { name: String },
    #[error("{url} does not name an image (.png, .jpg, .jpeg, .webp, .gif)")]
    UrlNotImage { url: String },
    #[error("{model} does not read {what} (the model catalogue lists its inputs as {inputs})")]
    ModelCannot {
        model: String,
        what: String,
        inputs: String,
    },
}

impl AttachmentError {
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            Self::TooLarge { kind, .. } if kind.ends_with("image") => {
                "scale the image down (the model sees at most 2048 px a side anyway)".into()
            }
            Self::TooLarge { kind, .. } if kind == "pdf" => {
                "split the PDF, or send its text with --pdf text".into()
            }
            Self::TooLarge { .. } => "shorten or compress the file".into(),
            Self::TooLargeTogether { .. } => "send fewer or smaller attachments per request".into(),
            Self::Empty { .. } => "check the path: the file has no bytes".into(),
            Self::Unsupported { .. } => {
                "convert it (an image to PNG, a document to PDF), or pipe text in as the prompt"
                    .into()
            }
            Self::UrlNotImage { .. } => {
                "only images go by URL; download other files and attach the local copy".into()
            }
            Self::ModelCannot { what, model, .. } => format!(
                "use a model that reads {what} (e.g. -m {}), or, if the catalogue is wrong, set \
                 input_modalities under [models.\"{model}\"] in the config file",
                if what == "audio" {
                    "gpt-4o-audio-preview"
                } else {
                    "gpt-4o-mini"
                }
            ),
        })
    }
}

/// Where an attachment's content is.
#[derive(Debug, Clone, PartialEq)]
enum Content {
    Bytes(Vec<u8>),
    /// An image by URL: the provider fetches it.
    Url(String),
}

/// One attachment, recognised and size-checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Attachment {
    name: String,
    kind: Kind,
    content: Content,
}

impl Attachment {
    /// Recognises `bytes` by their signature (a `.png` that is really a JPEG is sent as a
    /// JPEG) and checks the size limit of its kind. `name` is the file name shown in errors
    /// and sent as a PDF's `filename`.
    pub fn from_bytes(name: impl Into<String>, bytes: Vec<u8>) -> Result<Self, AttachmentError> {
        let name = name.into();
        if bytes.is_empty() {
            return Err(AttachmentError::Empty { name });
        }
        let kind =
            sniff(&bytes).ok_or_else(|| AttachmentError::Unsupported { name: name.clone() })?;
        check_size(&name, kind, bytes.len() as u64)?;
        Ok(Self {
            name,
            kind,
            content: Content::Bytes(bytes),
        })
    }

    /// Checks a file's size against the largest limit before it is read, so that a huge
    /// file is refused without reading it.
    pub fn check_file_size(name: &str, size: u64) -> Result<(), AttachmentError> {
        let largest = MAX_FILE_BYTES;
        if size > largest {
            return Err(AttachmentError::TooLarge {
                name: name.to_string(),
                kind: "file".into(),
                size,
                limit: largest,
            });
        }
        Ok(())
    }

    /// An image by URL (`http://`, `https://`), recognised by its extension: the provider
    /// fetches it, so its bytes are never seen here.
    pub fn from_url(url: impl Into<String>) -> Result<Self, AttachmentError> {
        let url = url.into();
        let path = url
            .split(['?', '#'])
            .next()
            .unwrap_or(&url)
            .to_ascii_lowercase();
        let format = [
            (".png", ImageFormat::Png),
            (".jpg", ImageFormat::Jpeg),
            (".jpeg", ImageFormat::Jpeg),
            (".webp", ImageFormat::Webp),
            (".gif", ImageFormat::Gif),
        ]
        .into_iter()
        .find(|(ext, _)| path.ends_with(ext))
        .map(|(_, f)| f)
        .ok_or_else(|| AttachmentError::UrlNotImage { url: url.clone() })?;
        Ok(Self {
            name: url.clone(),
            kind: Kind::Image(format),
            content: Content::Url(url),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The bytes carried in the request (0 for a URL).
    pub fn len(&self) -> u64 {
        match &self.content {
            Content::Bytes(b) => b.len() as u64,
            Content::Url(_) => 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Width and height of an image read from its bytes (`None` for a URL).
    pub fn image_size(&self) -> Option<(u32, u32)> {
        match (&self.content, self.kind) {
            (Content::Bytes(b), Kind::Image(_)) => llmkit_client::image_size(b),
            _ => None,
        }
    }

    /// The attachment as a content part: an image (`detail` as given), a PDF as a file part,
    /// audio as `input_audio`, text as a text part headed by the file name. A PDF the
    /// caller turned into text goes through [`text_part`] instead.
    pub fn to_part(&self, detail: Option<ImageDetail>) -> ContentPart {
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        match (&self.content, self.kind) {
            (Content::Url(url), _) => ContentPart::ImageUrl {
                image_url: ImageUrl {
                    url: url.clone(),
                    detail,
                },
            },
            (Content::Bytes(b), Kind::Image(f)) => ContentPart::ImageUrl {
                image_url: ImageUrl {
                    url: format!("data:{};base64,{}", f.mime(), b64(b)),
                    detail,
                },
            },
            (Content::Bytes(b), Kind::Pdf) => ContentPart::File {
                file: FileInput {
                    file_data: Some(format!("data:application/pdf;base64,{}", b64(b))),
                    filename: Some(file_name(&self.name)),
                    file_id: None,
                },
            },
            (Content::Bytes(b), Kind::Audio(f)) => ContentPart::InputAudio {
                input_audio: InputAudio {
                    data: b64(b),
                    format: f.as_str().into(),
                },
            },
            (Content::Bytes(b), Kind::Text) => text_part(&self.name, &String::from_utf8_lossy(b)),
        }
    }

    /// Refuses an image or audio attachment for a model the catalogue knows cannot read it
    /// (a model the catalogue does not know is left to the server). A PDF needs no check:
    /// it goes as text where the model does not read files.
    pub fn check_model(
        &self,
        model: &str,
        info: Option<&ModelInfo>,
    ) -> Result<(), AttachmentError> {
        let Some(info) = info else {
            return Ok(());
        };
        let (needs, what) = match self.kind {
            Kind::Image(_) => (Modality::Image, "images"),
            Kind::Audio(_) => (Modality::Audio, "audio"),
            Kind::Pdf | Kind::Text => return Ok(()),
        };
        if info.input_modalities.contains(&needs) {
            return Ok(());
        }
        Err(AttachmentError::ModelCannot {
            model: model.to_string(),
            what: what.into(),
            inputs: info
                .input_modalities
                .iter()
                .map(|m| m.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })
    }
}

/// Whether a model reads PDFs as file parts: OpenAI's vision models do (each page as text
/// and an image); a model the catalogue does not know, or one without image input, gets the
/// PDF's text instead.
pub fn reads_files(info: Option<&ModelInfo>) -> bool {
    info.is_some_and(|i| i.input_modalities.contains(&Modality::Image))
}

/// A text part holding a file's text, headed by its name so the model can tell files apart.
pub fn text_part(name: &str, text: &str) -> ContentPart {
    ContentPart::Text {
        text: format!("--- {} ---\n{}", file_name(name), text.trim_end()),
    }
}

/// Refuses attachments whose bytes together pass the request limit.
pub fn check_total(attachments: &[Attachment]) -> Result<(), AttachmentError> {
    let size: u64 = attachments.iter().map(Attachment::len).sum();
    if size > MAX_TOTAL_BYTES {
        return Err(AttachmentError::TooLargeTogether {
            size,
            limit: MAX_TOTAL_BYTES,
        });
    }
    Ok(())
}

fn check_size(name: &str, kind: Kind, size: u64) -> Result<(), AttachmentError> {
    if size > kind.limit() {
        return Err(AttachmentError::TooLarge {
            name: name.to_string(),
            kind: kind.describe(),
            size,
            limit: kind.limit(),
        });
    }
    Ok(())
}

/// The last path component, for `filename` and text headers.
fn file_name(name: &str) -> String {
    std::path::Path::new(name)
        .file_name()
        .map_or_else(|| name.to_string(), |n| n.to_string_lossy().into_owned())
}

/// The kind of `bytes` by their leading signature; UTF-8 without NUL bytes is text.
fn sniff(b: &[u8]) -> Option<Kind> {
    let riff = |tag: &[u8]| b.len() >= 12 && &b[..4] == b"RIFF" && &b[8..12] == tag;
    if b.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(Kind::Image(ImageFormat::Png))
    } else if b.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(Kind::Image(ImageFormat::Jpeg))
    } else if b.starts_with(b"GIF87a") || b.starts_with(b"GIF89a") {
        Some(Kind::Image(ImageFormat::Gif))
    } else if riff(b"WEBP") {
        Some(Kind::Image(ImageFormat::Webp))
    } else if b.starts_with(b"%PDF-") {
        Some(Kind::Pdf)
    } else if riff(b"WAVE") {
        Some(Kind::Audio(AudioFormat::Wav))
    } else if b.starts_with(b"ID3") || (b.len() >= 2 && b[0] == 0xFF && b[1] & 0xE0 == 0xE0) {
        // An ID3 tag, or an MPEG audio frame sync (11 set bits).
        Some(Kind::Audio(AudioFormat::Mp3))
    } else if !b.contains(&0) && std::str::from_utf8(b).is_ok() {
        Some(Kind::Text)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let mut b = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        b.extend_from_slice(&w.to_be_bytes());
        b.extend_from_slice(&h.to_be_bytes());
        b.extend_from_slice(&[8, 6, 0, 0, 0, 0, 0, 0, 0]);
        b
    }

    #[test]
    fn recognised_by_bytes_not_names() {
        let a = Attachment::from_bytes("photo.jpg", png(3, 2)).unwrap();
        assert_eq!(a.kind(), Kind::Image(ImageFormat::Png));
        assert_eq!(a.image_size(), Some((3, 2)));
        let cases: [(&[u8], Kind); 6] = [
            (b"\xFF\xD8\xFF\xE0rest", Kind::Image(ImageFormat::Jpeg)),
            (b"GIF89a....", Kind::Image(ImageFormat::Gif)),
            (b"RIFF\0\0\0\0WEBPVP8 ", Kind::Image(ImageFormat::Webp)),
            (b"%PDF-1.7\n", Kind::Pdf),
            (b"RIFF\0\0\0\0WAVEfmt ", Kind::Audio(AudioFormat::Wav)),
            (b"notes: caf\xC3\xA9\n", Kind::Text),
        ];
        for (bytes, kind) in cases {
            assert_eq!(
                Attachment::from_bytes("x", bytes.to_vec()).unwrap().kind(),
                kind
            );
        }
    }

    #[test]
    fn refusals_say_what_to_do() {
        let elf = b"\x7fELF\x02\x01\x01\0\0\0".to_vec();
        let e = Attachment::from_bytes("a.out", elf).unwrap_err();
        assert!(matches!(e, AttachmentError::Unsupported { .. }), "{e}");
        assert!(e.hint().unwrap().contains("convert"));
        let e = Attachment::from_bytes("e.png", Vec::new()).unwrap_err();
        assert!(matches!(e, AttachmentError::Empty { .. }));
        let mut big = png(1, 1);
        big.resize(MAX_IMAGE_BYTES as usize + 1, 0);
        let e = Attachment::from_bytes("big.png", big).unwrap_err();
        assert!(e.to_string().contains("at most 20971520 bytes"), "{e}");
        assert!(e.hint().unwrap().contains("scale"));
        assert!(Attachment::from_url("https://example.com/doc.pdf").is_err());
        let a = Attachment::from_url("https://example.com/cat.JPG?x=1").unwrap();
        assert_eq!(a.kind(), Kind::Image(ImageFormat::Jpeg));
    }

    #[test]
    fn parts_carry_the_right_media_type() {
        let a = Attachment::from_bytes("dir/report.pdf", b"%PDF-1.4 x".to_vec()).unwrap();
        let ContentPart::File { file } = a.to_part(None) else {
            panic!("not a file part")
        };
        assert_eq!(file.filename.as_deref(), Some("report.pdf"));
        assert!(
            file.file_data
                .unwrap()
                .starts_with("data:application/pdf;base64,JVBER")
        );
        let a = Attachment::from_bytes("x.webp", png(1, 1)).unwrap();
        let ContentPart::ImageUrl { image_url } = a.to_part(Some(ImageDetail::Low)) else {
            panic!("not an image part")
        };
        assert!(image_url.url.starts_with("data:image/png;base64,"));
        assert_eq!(image_url.detail, Some(ImageDetail::Low));
        let t = Attachment::from_bytes("n.txt", b"hello\n".to_vec()).unwrap();
        assert_eq!(
            t.to_part(None),
            ContentPart::Text {
                text: "--- n.txt ---\nhello".into()
            }
        );
    }

    #[test]
    fn models_that_cannot_read_a_kind_are_refused() {
        let catalog = llmkit_client::ModelCatalog::builtin();
        let img = Attachment::from_bytes("a.png", png(1, 1)).unwrap();
        assert!(
            img.check_model("gpt-4o-mini", catalog.get("gpt-4o-mini"))
                .is_ok()
        );
        let e = img
            .check_model("o3-mini", catalog.get("o3-mini"))
            .unwrap_err();
        assert!(e.to_string().contains("does not read images"), "{e}");
        // Unknown models are left to the server.
        assert!(img.check_model("my-vllm-model", None).is_ok());
        assert!(reads_files(catalog.get("gpt-4o")));
        assert!(!reads_files(None));
    }

    #[test]
    fn the_total_is_capped() {
        let one = Attachment::from_bytes("a.pdf", {
            let mut b = b"%PDF-".to_vec();
            b.resize(30 * 1024 * 1024, b' ');
            b
        })
        .unwrap();
        assert!(check_total(std::slice::from_ref(&one)).is_ok());
        assert!(matches!(
            check_total(&[one.clone(), one]),
            Err(AttachmentError::TooLargeTogether { .. })
        ));
    }
}
