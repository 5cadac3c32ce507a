//! The input tokens an image costs, by OpenAI's published rules: tiles of 512 px for the
//! GPT-4o family and the o-series, 32 px patches for the models billed by patch.
//!
//! Used by [`crate::count_chat_tokens`], so `llmkit tokens`, `--dry-run`, the context check
//! and the budget reservation all count images the same way. An image whose size is unknown
//! (given by URL, or bytes no decoder reads) counts as the largest image the rule allows, so
//! a spending limit errs on the side of refusing.

use base64::Engine as _;
use llmkit_types::ImageDetail;

/// Longest side an image is fitted into before tiling (high detail).
const FIT_SQUARE: f64 = 2048.0;
/// Shortest side an image is scaled down to before tiling (high detail).
const SHORT_SIDE: f64 = 768.0;
/// Tile edge in pixels.
const TILE: f64 = 512.0;
/// Patch edge in pixels, and the most patches an image is scaled down to.
const PATCH: f64 = 32.0;
const MAX_PATCHES: f64 = 1536.0;
/// The most tiles the high-detail rule can produce (768 × 2048 → 2 × 4).
const MAX_TILES: u64 = 8;

/// How a model bills images.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Rule {
    /// `base + per_tile × tiles` at high detail, `base` at low detail.
    Tiles { base: u64, per_tile: u64 },
    /// `patches × multiplier`, whatever the detail.
    Patches { multiplier: f64 },
}

/// The rule for a model, from OpenAI's vision guide ("Calculating costs"). Unknown models get
/// the GPT-4o rule, the one most compatible vision models copy.
fn rule_for(model: &str) -> Rule {
    let m = model.rsplit('/').next().unwrap_or(model);
    let family = |prefix: &str| m == prefix || m.starts_with(&format!("{prefix}-"));
    if family("gpt-4.1-mini") || family("gpt-5-mini") {
        Rule::Patches { multiplier: 1.62 }
    } else if family("gpt-4.1-nano") || family("gpt-5-nano") {
        Rule::Patches { multiplier: 2.46 }
    } else if family("o4-mini") {
        Rule::Patches { multiplier: 1.72 }
    } else if family("gpt-4o-mini") {
        Rule::Tiles {
            base: 2833,
            per_tile: 5667,
        }
    } else if family("o1") || family("o1-pro") || family("o3") {
        Rule::Tiles {
            base: 75,
            per_tile: 150,
        }
    } else if family("computer-use-preview") {
        Rule::Tiles {
            base: 65,
            per_tile: 129,
        }
    } else {
        Rule::Tiles {
            base: 85,
            per_tile: 170,
        }
    }
}

/// The tokens one image costs on `model`; `size` is `(width, height)` in pixels when known.
/// `auto` detail is counted as high (the server may choose low; the estimate stays an upper
/// bound).
pub fn image_tokens(model: &str, size: Option<(u32, u32)>, detail: Option<&ImageDetail>) -> u64 {
    let low = matches!(detail, Some(ImageDetail::Low));
    match rule_for(model) {
        Rule::Tiles { base, .. } if low => base,
        Rule::Tiles { base, per_tile } => base + per_tile * size.map_or(MAX_TILES, tiles),
        Rule::Patches { multiplier } => {
            let patches = size.map_or(MAX_PATCHES, patches);
            (patches * multiplier).ceil() as u64
        }
    }
}

/// The 512 px tiles of an image after fitting it into 2048 × 2048 and its short side into
/// 768 px (never scaling up).
fn tiles((w, h): (u32, u32)) -> u64 {
    let (mut w, mut h) = (f64::from(w.max(1)), f64::from(h.max(1)));
    let fit = (FIT_SQUARE / w.max(h)).min(1.0);
    (w, h) = (w * fit, h * fit);
    let short = (SHORT_SIDE / w.min(h)).min(1.0);
    (w, h) = (w * short, h * short);
    ((w / TILE).ceil() * (h / TILE).ceil()) as u64
}

/// The 32 px patches of an image, scaled down (keeping its aspect ratio) to at most 1536.
fn patches((w, h): (u32, u32)) -> f64 {
    let (w, h) = (f64::from(w.max(1)), f64::from(h.max(1)));
    let raw = (w / PATCH).ceil() * (h / PATCH).ceil();
    if raw <= MAX_PATCHES {
        return raw;
    }
    let mut r = (PATCH * PATCH * MAX_PATCHES / (w * h)).sqrt();
    // Shrink a little more so that whole patches fit along both sides.
    let along = |side: f64| (side * r / PATCH).floor() / (side * r / PATCH);
    r *= along(w).min(along(h));
    // By construction one side is a whole number of patches; the epsilon keeps rounding
    // error from adding a patch row to it.
    let ceil = |x: f64| (x - 1e-9).ceil();
    let cover = (ceil(w * r / PATCH) * ceil(h * r / PATCH)).min(MAX_PATCHES);
    cover.max(1.0)
}

/// Width and height of the image inside a `data:` URI (base64), when a decoder reads them.
pub fn data_uri_image_size(url: &str) -> Option<(u32, u32)> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    if !meta.ends_with(";base64") {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .ok()?;
    image_size(&bytes)
}

/// Width and height of an image (png, jpeg, gif, webp and the other formats `imagesize`
/// reads) from its bytes.
pub fn image_size(bytes: &[u8]) -> Option<(u32, u32)> {
    let size = imagesize::blob_size(bytes).ok()?;
    Some((
        u32::try_from(size.width).ok()?,
        u32::try_from(size.height).ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked examples of OpenAI's vision guide.
    #[test]
    fn published_tile_examples() {
        let high = Some(&ImageDetail::High);
        assert_eq!(image_tokens("gpt-4o", Some((1024, 1024)), high), 765);
        assert_eq!(image_tokens("gpt-4o", Some((2048, 4096)), high), 1105);
        let low = Some(&ImageDetail::Low);
        assert_eq!(image_tokens("gpt-4o", Some((4096, 8192)), low), 85);
        // Small images are not scaled up: one tile.
        assert_eq!(image_tokens("gpt-4o", Some((100, 100)), high), 255);
        assert_eq!(
            image_tokens("gpt-4o-mini", Some((1024, 1024)), high),
            2833 + 4 * 5667
        );
        assert_eq!(image_tokens("o1", Some((1024, 1024)), low), 75);
    }

    #[test]
    fn published_patch_examples() {
        // 1024 × 1024: 32 × 32 patches, under the cap.
        assert_eq!(patches((1024, 1024)), 1024.0);
        // 1800 × 2400 is scaled to fit 1536 patches: the guide's 1452.
        assert_eq!(patches((1800, 2400)), 1452.0);
        assert_eq!(
            image_tokens("gpt-4.1-mini", Some((1024, 1024)), None),
            (1024.0_f64 * 1.62).ceil() as u64
        );
    }

    #[test]
    fn unknown_sizes_count_as_the_largest() {
        let auto = Some(&ImageDetail::Auto);
        assert_eq!(image_tokens("gpt-4o", None, auto), 85 + 8 * 170);
        for (w, h) in [(1, 1), (768, 2048), (5000, 300), (20_000, 20_000)] {
            assert!(image_tokens("gpt-4o", Some((w, h)), auto) <= 85 + 8 * 170);
        }
        assert_eq!(
            image_tokens("o4-mini", None, None),
            (1536.0_f64 * 1.72).ceil() as u64
        );
    }

    #[test]
    fn sizes_from_data_uris() {
        // A 3 × 2 PNG header (the size lives in IHDR).
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        png.extend_from_slice(&3u32.to_be_bytes());
        png.extend_from_slice(&2u32.to_be_bytes());
        png.extend_from_slice(&[8, 6, 0, 0, 0, 0, 0, 0, 0]);
        let uri = format!(
            "data:image/png;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(&png)
        );
        assert_eq!(data_uri_image_size(&uri), Some((3, 2)));
        assert_eq!(data_uri_image_size("https://example.com/a.png"), None);
        assert_eq!(data_uri_image_size("data:image/png;base64,@@@"), None);
    }
}
