//! Input clean-up before a task sees text: HTML to text, Unicode NFC, control characters
//! stripped and whitespace normalised (fenced code blocks keep their spacing).

use unicode_normalization::UnicodeNormalization;

/// Cleans one input: HTML (when `html` says so, or when it is `None` and the text looks
/// like HTML) becomes plain text, then [`normalize`] applies.
pub fn prepare(text: &str, html: Option<bool>) -> String {
    let is_html = html.unwrap_or_else(|| looks_like_html(text));
    if is_html {
        normalize(&html_to_text(text))
    } else {
        normalize(text)
    }
}

/// NFC, control characters removed (tab and newline kept), `\r\n` to `\n`, Unicode spaces to
/// ASCII, runs of spaces inside a line collapsed, trailing spaces and 3+ blank lines removed.
/// Lines inside ``` fences keep their spacing, as it is meaningful there.
pub fn normalize(text: &str) -> String {
    let nfc: String = text
        .replace("\r\n", "\n")
        .replace('\r', "\n")
        .nfc()
        .collect();
    let mut out = String::with_capacity(nfc.len());
    let mut in_fence = false;
    let mut blank_run = 0usize;
    for line in nfc.split('\n') {
        let cleaned: String = line
            .chars()
            .filter(|c| !c.is_control() || *c == '\t')
            .map(|c| if is_unicode_space(c) { ' ' } else { c })
            .collect();
        let fence =
            cleaned.trim_start().starts_with("```") || cleaned.trim_start().starts_with("~~~");
        let line = if in_fence && !fence {
            cleaned.trim_end().to_string()
        } else {
            collapse_spaces(&cleaned)
        };
        if fence {
            in_fence = !in_fence;
        }
        if line.is_empty() && !in_fence {
            blank_run += 1;
            if blank_run > 1 {
                continue;
            }
        } else {
            blank_run = 0;
        }
        out.push_str(&line);
        out.push('\n');
    }
    out.trim_matches(|c: char| c.is_whitespace()).to_string()
}

/// True when the text is an HTML document or fragment rather than text that mentions a tag.
pub fn looks_like_html(text: &str) -> bool {
    let head: String = text
        .trim_start()
        .chars()
        .take(200)
        .collect::<String>()
        .to_ascii_lowercase();
    if head.starts_with("<!doctype html") || head.starts_with("<html") {
        return true;
    }
    let lower = text.to_ascii_lowercase();
    let tags = [
        "<p>", "<p ", "<div", "<br", "<li>", "<h1", "<h2", "<body", "<span", "<table",
    ];
    let hits: usize = tags.iter().map(|t| lower.matches(t).count()).sum();
    hits >= 3
}

/// A light HTML-to-text conversion: scripts, styles and comments dropped, block elements
/// become line breaks, list items `- `, other tags removed, entities decoded.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let lower = html.to_ascii_lowercase();
    let mut i = 0;
    let bytes = html.as_bytes();
    while i < bytes.len() {
        if bytes[i] != b'<' {
            let next = html[i..].find('<').map_or(html.len(), |p| i + p);
            out.push_str(&decode_entities(&html[i..next]));
            i = next;
            continue;
        }
        if lower[i..].starts_with("<!--") {
            i = lower[i..].find("-->").map_or(html.len(), |p| i + p + 3);
            continue;
        }
        let Some(end) = html[i..].find('>').map(|p| i + p) else {
            out.push_str(&decode_entities(&html[i..]));
            break;
        };
        let tag = &lower[i + 1..end];
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        let closing = tag.starts_with('/');
        i = end + 1;
        if !closing && (name == "script" || name == "style" || name == "head") {
            let close = format!("</{name}");
            i = lower[i..].find(&close).map_or(html.len(), |p| {
                let at = i + p;
                lower[at..].find('>').map_or(html.len(), |q| at + q + 1)
            });
            continue;
        }
        match name.as_str() {
            "br" => out.push('\n'),
            "li" if !closing => out.push_str("\n- "),
            "p" | "div" | "section" | "article" | "header" | "footer" | "ul" | "ol" | "table"
            | "tr" | "blockquote" | "pre" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "main"
            | "nav" | "aside" | "li" | "title" => out.push_str("\n\n"),
            "td" | "th" if closing => out.push('\t'),
            _ => {}
        }
    }
    out
}

/// Decodes the common named entities and numeric references; unknown ones stay as written.
fn decode_entities(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let end = rest.find(';').filter(|&e| e <= 10);
        let decoded = end.and_then(|e| entity(&rest[1..e]));
        match (end, decoded) {
            (Some(e), Some(c)) => {
                out.push(c);
                rest = &rest[e + 1..];
            }
            _ => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn entity(name: &str) -> Option<char> {
    if let Some(num) = name.strip_prefix('#') {
        let code = match num.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => num.parse().ok()?,
        };
        return char::from_u32(code);
    }
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => ' ',
        "mdash" => '—',
        "ndash" => '–',
        "hellip" => '…',
        "copy" => '©',
        "reg" => '®',
        "trade" => '™',
        "lsquo" => '‘',
        "rsquo" => '’',
        "ldquo" => '“',
        "rdquo" => '”',
        "laquo" => '«',
        "raquo" => '»',
        "euro" => '€',
        "middot" => '·',
        "bull" => '•',
        _ => return None,
    })
}

fn is_unicode_space(c: char) -> bool {
    c != ' ' && c != '\t' && c != '\n' && c.is_whitespace()
}

/// Keeps a line's indentation and collapses the other runs of spaces and tabs.
fn collapse_spaces(line: &str) -> String {
    let body = line.trim_start();
    let indent = &line[..line.len() - body.len()];
    let mut out = String::from(indent);
    let mut prev_space = false;
    for c in body.trim_end().chars() {
        let space = c == ' ' || c == '\t';
        if space {
            if !prev_space {
                out.push(' ');
            }
        } else {
            out.push(c);
        }
        prev_space = space;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_unicode_controls_and_spaces() {
        let text = "Cafe\u{301}\u{0007}  is   open.\r\n\r\n\r\n\r\nNext\u{00a0}line.  ";
        assert_eq!(normalize(text), "Café is open.\n\nNext line.");
    }

    #[test]
    fn code_fences_keep_spacing() {
        let text = "Text  here\n```\nfn  main()  {}\n\n\n    x\n```\n";
        assert_eq!(
            normalize(text),
            "Text here\n```\nfn  main()  {}\n\n\n    x\n```"
        );
    }

    #[test]
    fn html_becomes_text() {
        let html = "<!DOCTYPE html><html><head><title>T</title><style>p{}</style></head><body>\
                    <h1>Title</h1><p>Fish &amp; chips &#8212; &lt;tasty&gt;</p>\
                    <script>alert(1)</script><ul><li>one</li><li>two</li></ul></body></html>";
        assert!(looks_like_html(html));
        let text = prepare(html, None);
        assert_eq!(text, "Title\n\nFish & chips — <tasty>\n\n- one\n\n- two");
    }

    #[test]
    fn plain_text_mentioning_a_tag_is_not_html() {
        assert!(!looks_like_html("Use the <p> element for paragraphs."));
        assert_eq!(
            decode_entities("a & b &unknown; &#x41;"),
            "a & b &unknown; A"
        );
    }
}
