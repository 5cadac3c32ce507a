//! The generation loop: runs candle's quantized models over a prompt, samples tokens, streams
//! text pieces, and stops on end-of-sequence tokens, stop strings or the token limit.

use candle_core::{DType, Device, Tensor};
use candle_transformers::models::{
    quantized_gemma3, quantized_llama, quantized_phi3, quantized_qwen2, quantized_qwen3,
};

use crate::constrain::{JsonConstraint, Matcher};
use crate::error::{LocalError, candle_message, guard};
use crate::gguf::{GgufFile, reader};
use crate::sampler::{REPEAT_WINDOW, Sampler, SamplerConfig};
use crate::template::ChatTurn;
use crate::tokenizer::TextCodec;

/// The `general.architecture` values this crate can run.
pub const SUPPORTED_ARCHITECTURES: &[&str] = &["llama", "qwen2", "qwen3", "phi3", "gemma3"];

/// Default sampling settings, as in llama.cpp (temperature 0.8, top-k 40, top-p 0.95, no
/// repetition penalty): OpenAI's defaults (1.0, no top-k) make small models ramble.
pub const DEFAULT_TEMPERATURE: f64 = 0.8;
/// See [`DEFAULT_TEMPERATURE`].
pub const DEFAULT_TOP_P: f64 = 0.95;
/// See [`DEFAULT_TEMPERATURE`].
pub const DEFAULT_TOP_K: usize = 40;

/// Prompts are fed to the model in chunks of this many tokens, which bounds the size of the
/// attention matrices for long prompts.
const PREFILL_CHUNK: usize = 512;

/// A generation request. Build it with `..Default::default()`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GenerateRequest {
    /// The conversation, rendered with the model's chat template. Ignored when `raw_prompt` is set.
    pub messages: Vec<ChatTurn>,
    /// Completion mode: this text is the whole prompt, no template is applied.
    pub raw_prompt: Option<String>,
    /// At most this many tokens are generated (default: until the context window is full).
    pub max_tokens: Option<u32>,
    /// 0 means greedy (deterministic). Default [`DEFAULT_TEMPERATURE`].
    pub temperature: Option<f64>,
    /// Nucleus sampling, in `[0, 1]`. Default [`DEFAULT_TOP_P`].
    pub top_p: Option<f64>,
    /// Keep only the k most likely tokens; 0 turns it off. Default [`DEFAULT_TOP_K`].
    pub top_k: Option<usize>,
    /// Above 1 discourages repeating the last 64 tokens. Default 1 (off).
    pub repeat_penalty: Option<f32>,
    /// The same seed and request give the same text. Default: random.
    pub seed: Option<u64>,
    /// Generation stops before any of these strings; the string itself is not returned.
    pub stop: Vec<String>,
    /// Constrain the output to JSON (an object, or a value matching a schema): tokens that
    /// would break it are never sampled, and generation ends when the value is complete.
    pub json: Option<JsonConstraint>,
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// An end-of-sequence token, a stop string, or the caller cancelled.
    Stop,
    /// `max_tokens` or the context window was reached.
    Length,
}

impl FinishReason {
    /// The OpenAI spelling: `stop` or `length`.
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
        }
    }
}

/// The result of a generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerateOutput {
    /// The generated text (exactly what was streamed).
    pub text: String,
    /// Why generation ended.
    pub finish_reason: FinishReason,
    /// Tokens in the prompt.
    pub prompt_tokens: u32,
    /// Tokens generated (the end-of-sequence token is not counted).
    pub completion_tokens: u32,
}

/// The model families we can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arch {
    Llama,
    Qwen2,
    Qwen3,
    Phi3,
    Gemma3,
}

impl Arch {
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "llama" => Arch::Llama,
            "qwen2" => Arch::Qwen2,
            "qwen3" => Arch::Qwen3,
            "phi3" => Arch::Phi3,
            "gemma3" => Arch::Gemma3,
            _ => return None,
        })
    }

    /// The longest sequence candle's implementation can hold, where it is below the model's own.
    pub(crate) fn context_cap(self, native: bool) -> Option<usize> {
        match self {
            // The native engine's cache grows as needed.
            _ if native => None,
            // The rotary tables are precomputed for this many positions.
            Arch::Llama => Some(quantized_llama::MAX_SEQ_LEN),
            Arch::Gemma3 => Some(quantized_gemma3::MAX_SEQ_LEN),
            Arch::Qwen2 | Arch::Qwen3 | Arch::Phi3 => None,
        }
    }
}

/// What the generation loop needs from an engine: logits for new tokens of one sequence.
pub(crate) trait Step {
    /// Forgets the sequence (the next call starts at position 0).
    fn reset(&mut self);
    /// Logits for the next token after `tokens`, which start at position `pos`.
    fn logits(&mut self, tokens: &[u32], pos: usize) -> Result<Vec<f32>, LocalError>;
    /// Starts a sequence for `prompt`: returns how many of its leading tokens already have
    /// their KV state in place (reused from an earlier sequence), always fewer than all of
    /// them so that the last one still runs. The default forgets the sequence and reuses
    /// nothing.
    fn resume(&mut self, _prompt: &[u32]) -> Result<usize, LocalError> {
        self.reset();
        Ok(0)
    }
    /// Offers the sequence's state after `tokens` (every one of them run) for later
    /// requests to reuse. The default keeps nothing.
    fn keep(&mut self, _tokens: &[u32]) -> Result<(), LocalError> {
        Ok(())
    }
}

impl Step for Weights {
    fn reset(&mut self) {
        Weights::reset(self);
    }

    fn logits(&mut self, tokens: &[u32], pos: usize) -> Result<Vec<f32>, LocalError> {
        Weights::logits(self, tokens, pos)
    }
}

/// Candle's loaded weights of one of the supported families. Each keeps its KV cache inside.
pub(crate) enum Weights {
    Llama(quantized_llama::ModelWeights),
    Qwen2(quantized_qwen2::ModelWeights),
    Qwen3(quantized_qwen3::ModelWeights),
    Phi3(quantized_phi3::ModelWeights),
    Gemma3(quantized_gemma3::ModelWeights),
}

impl Weights {
    /// Builds the model from a validated GGUF file.
    pub(crate) fn load(arch: Arch, file: &GgufFile) -> Result<Self, LocalError> {
        let content = file.reparse()?;
        let device = Device::Cpu;
        let mut r = reader(file.bytes());
        let loaded = guard("loading the model weights", || match arch {
            Arch::Llama => {
                quantized_llama::ModelWeights::from_gguf(content, &mut r, &device).map(Self::Llama)
            }
            Arch::Qwen2 => {
                quantized_qwen2::ModelWeights::from_gguf(content, &mut r, &device).map(Self::Qwen2)
            }
            Arch::Qwen3 => {
                quantized_qwen3::ModelWeights::from_gguf(content, &mut r, &device).map(Self::Qwen3)
            }
            Arch::Phi3 => quantized_phi3::ModelWeights::from_gguf(false, content, &mut r, &device)
                .map(Self::Phi3),
            Arch::Gemma3 => quantized_gemma3::ModelWeights::from_gguf(content, &mut r, &device)
                .map(Self::Gemma3),
        });
        let invalid = |detail: String| LocalError::InvalidModel {
            path: file.path().to_path_buf(),
            detail,
        };
        loaded
            .map_err(invalid)?
            .map_err(|e| invalid(candle_message(&e)))
    }

    fn forward(&mut self, input: &Tensor, pos: usize) -> candle_core::Result<Tensor> {
        match self {
            Weights::Llama(m) => m.forward(input, pos),
            Weights::Qwen2(m) => m.forward(input, pos),
            Weights::Qwen3(m) => m.forward(input, pos),
            Weights::Phi3(m) => m.forward(input, pos),
            Weights::Gemma3(m) => m.forward(input, pos),
        }
    }

    /// Empties the KV cache. Phi-3 and Gemma 3 have no such method; they drop their cache when
    /// a forward pass starts at position 0, which every request does.
    fn reset(&mut self) {
        match self {
            Weights::Llama(m) => m.clear_kv_cache(),
            Weights::Qwen2(m) => m.clear_kv_cache(),
            Weights::Qwen3(m) => m.clear_kv_cache(),
            Weights::Phi3(_) | Weights::Gemma3(_) => {}
        }
    }

    /// Logits for the next token after `tokens`, which start at position `pos`.
    fn logits(&mut self, tokens: &[u32], pos: usize) -> Result<Vec<f32>, LocalError> {
        let run = || -> candle_core::Result<Vec<f32>> {
            let input = Tensor::new(tokens, &Device::Cpu)?.unsqueeze(0)?;
            let logits = self.forward(&input, pos)?;
            logits.squeeze(0)?.to_dtype(DType::F32)?.to_vec1::<f32>()
        };
        guard("running the model", run)
            .map_err(LocalError::Inference)?
            .map_err(|e| LocalError::Inference(candle_message(&e)))
    }
}

/// Validated sampling settings for `req`.
pub(crate) fn sampler_config(req: &GenerateRequest) -> Result<SamplerConfig, LocalError> {
    let temperature = req.temperature.unwrap_or(DEFAULT_TEMPERATURE);
    if !temperature.is_finite() || temperature < 0.0 {
        return Err(LocalError::InvalidRequest(format!(
            "temperature must be 0 or more, got {temperature}"
        )));
    }
    let top_p = req.top_p.unwrap_or(DEFAULT_TOP_P);
    if !(0.0..=1.0).contains(&top_p) {
        return Err(LocalError::InvalidRequest(format!(
            "top_p must be between 0 and 1, got {top_p}"
        )));
    }
    let repeat_penalty = req.repeat_penalty.unwrap_or(1.0);
    if !repeat_penalty.is_finite() || repeat_penalty <= 0.0 {
        return Err(LocalError::InvalidRequest(format!(
            "repeat_penalty must be more than 0, got {repeat_penalty}"
        )));
    }
    Ok(SamplerConfig {
        temperature,
        top_p,
        top_k: req.top_k.unwrap_or(DEFAULT_TOP_K),
        repeat_penalty,
        seed: req.seed.unwrap_or_else(rand::random),
    })
}

/// One generation, ready to run.
pub(crate) struct Job<'a> {
    pub(crate) prompt: &'a [u32],
    pub(crate) max_new_tokens: usize,
    pub(crate) sampler: SamplerConfig,
    pub(crate) stop: &'a [String],
    pub(crate) json: Option<&'a JsonConstraint>,
}

/// The schema of `JsonConstraint::Object`.
static ANY_OBJECT: std::sync::LazyLock<serde_json::Value> =
    std::sync::LazyLock::new(|| serde_json::json!({"type": "object"}));

/// Masks every logit whose token would break the JSON constraint, keeping at most `keep`
/// allowed tokens (the most likely first); end-of-sequence is allowed once the value is
/// complete. When nothing fits (a model whose vocabulary cannot continue), end-of-sequence
/// is let through so generation stops instead of looping.
fn constrain(logits: &mut [f32], m: &Matcher<'_>, codec: &TextCodec, keep: usize) {
    let pieces = codec.pieces();
    let mut order: Vec<u32> = (0..logits.len() as u32)
        .filter(|&i| logits[i as usize].is_finite())
        .collect();
    order.sort_unstable_by(|a, b| logits[*b as usize].total_cmp(&logits[*a as usize]));
    let mut allowed = vec![false; logits.len()];
    let mut n = 0;
    let complete = m.is_complete();
    for id in order {
        let ok = if codec.stop_ids.contains(&id) {
            complete
        } else {
            match pieces.get(id as usize) {
                Some(Some(p)) => m.accepts(p),
                _ => false,
            }
        };
        if ok {
            allowed[id as usize] = true;
            n += 1;
            if n >= keep {
                break;
            }
        }
    }
    if n == 0 {
        for &s in &codec.stop_ids {
            if let Some(a) = allowed.get_mut(s as usize) {
                *a = true;
            }
        }
    }
    for (l, ok) in logits.iter_mut().zip(&allowed) {
        if !ok {
            *l = f32::NEG_INFINITY;
        }
    }
}

/// Runs `job` on `weights`, calling `on_token` with each new piece of text.
pub(crate) fn run(
    weights: &mut dyn Step,
    codec: &TextCodec,
    job: Job<'_>,
    on_token: &mut dyn FnMut(&str) -> bool,
) -> Result<(String, FinishReason, usize), LocalError> {
    let mut scanner = StopScanner::new(job.stop);
    let mut output = String::new();
    if job.max_new_tokens == 0 || job.prompt.is_empty() {
        return Ok((output, FinishReason::Length, 0));
    }
    // Prefill starts after the prefix whose KV state is reused (never the whole prompt: the
    // last token's logits are needed).
    let mut pos = weights.resume(job.prompt)?.min(job.prompt.len() - 1);
    let mut logits = Vec::new();
    for chunk in job.prompt[pos..].chunks(PREFILL_CHUNK) {
        logits = weights.logits(chunk, pos)?;
        pos += chunk.len();
    }
    weights.keep(job.prompt)?;

    // How many allowed tokens the sampler chooses among: greedy without a penalty needs
    // only the best; a penalty may reorder the best few.
    let keep = if job.sampler.temperature <= f64::EPSILON && job.sampler.repeat_penalty == 1.0 {
        1
    } else if job.sampler.temperature <= f64::EPSILON {
        8
    } else if job.sampler.top_k > 0 {
        job.sampler.top_k
    } else {
        64
    };
    let schema = match job.json {
        Some(JsonConstraint::Schema(s)) => Some(s),
        Some(JsonConstraint::Object) => Some(&*ANY_OBJECT),
        None => None,
    };
    let mut matcher = schema.map(Matcher::new);
    let mut sampler = Sampler::new(job.sampler);
    let mut context: Vec<u32> = job.prompt.to_vec();
    let mut generated: Vec<u32> = Vec::new();
    let mut decoded = String::new();
    let mut finish = FinishReason::Length;
    // Set when a stop string ended generation or the caller cancelled: the held-back text is
    // then dropped rather than flushed.
    let mut ended_early = false;
    loop {
        let recent = &context[context.len().saturating_sub(REPEAT_WINDOW)..];
        if let Some(m) = &matcher {
            constrain(&mut logits, m, codec, keep);
        }
        let next = sampler.sample(&mut logits, recent)?;
        if codec.stop_ids.contains(&next) {
            finish = FinishReason::Stop;
            break;
        }
        let json_done = match &mut matcher {
            Some(m) => {
                let piece = codec.pieces().get(next as usize).and_then(Option::as_deref);
                m.feed_str(piece.unwrap_or_default()) && m.is_complete()
            }
            None => false,
        };
        generated.push(next);
        context.push(next);
        if let Some(piece) = new_text(codec, &generated, &mut decoded)? {
            let (emit, stopped) = scanner.push(&piece);
            if !emit.is_empty() {
                output.push_str(&emit);
                if !on_token(&emit) {
                    finish = FinishReason::Stop;
                    ended_early = true;
                    break;
                }
            }
            if stopped {
                finish = FinishReason::Stop;
                ended_early = true;
                break;
            }
        }
        if json_done {
            // The value is complete: only whitespace could follow, so stop here.
            finish = FinishReason::Stop;
            break;
        }
        if generated.len() >= job.max_new_tokens {
            break;
        }
        logits = weights.logits(&[next], pos)?;
        pos += 1;
    }
    // The prompt and the tokens generated after it (all but the last, which never ran) for
    // the next turn of the conversation. The answer is complete whether or not this is kept.
    let _ = weights.keep(&context[..pos]);
    if !ended_early {
        let rest = scanner.finish();
        if !rest.is_empty() {
            output.push_str(&rest);
            // Generation is over, so a cancellation answer no longer changes anything.
            let _ = on_token(&rest);
        }
    }
    Ok((output, finish, generated.len()))
}

/// Text added by the last token, once it forms complete characters.
///
/// The whole completion is decoded each time (cheap next to a forward pass) because decoding a
/// suffix alone drops or adds spaces with SentencePiece vocabularies.
fn new_text(
    codec: &TextCodec,
    generated: &[u32],
    decoded: &mut String,
) -> Result<Option<String>, LocalError> {
    let full = codec
        .tokenizer()
        .decode(generated, true)
        .map_err(|e| LocalError::Tokenizer(e.to_string()))?;
    if full.ends_with('\u{FFFD}') {
        // An incomplete UTF-8 sequence: wait for the token that completes it.
        return Ok(None);
    }
    if full.len() > decoded.len() && full.starts_with(decoded.as_str()) {
        let piece = full[decoded.len()..].to_string();
        *decoded = full;
        Ok(Some(piece))
    } else {
        *decoded = full;
        Ok(None)
    }
}

/// Finds stop strings in streamed text, holding back any tail that could be the start of one.
pub(crate) struct StopScanner<'a> {
    stops: Vec<&'a str>,
    pending: String,
}

impl<'a> StopScanner<'a> {
    pub(crate) fn new(stops: &'a [String]) -> Self {
        Self {
            stops: stops
                .iter()
                .map(String::as_str)
                .filter(|s| !s.is_empty())
                .collect(),
            pending: String::new(),
        }
    }

    /// Adds `piece`; returns the text that is safe to emit, and whether a stop string was found
    /// (the text before it is returned; the stop string and anything after are dropped).
    pub(crate) fn push(&mut self, piece: &str) -> (String, bool) {
        self.pending.push_str(piece);
        let earliest = self
            .stops
            .iter()
            .filter_map(|stop| self.pending.find(stop))
            .min();
        if let Some(at) = earliest {
            let out = self.pending[..at].to_string();
            self.pending.clear();
            return (out, true);
        }
        let hold = self
            .stops
            .iter()
            .map(|stop| partial_suffix_len(&self.pending, stop))
            .max()
            .unwrap_or(0);
        let cut = self.pending.len() - hold;
        let out = self.pending[..cut].to_string();
        self.pending.drain(..cut);
        (out, false)
    }

    /// The text still held back, at the end of generation.
    pub(crate) fn finish(&mut self) -> String {
        std::mem::take(&mut self.pending)
    }
}

/// The length of the longest suffix of `text` that is a proper prefix of `stop`.
fn partial_suffix_len(text: &str, stop: &str) -> usize {
    let max = stop.len().saturating_sub(1).min(text.len());
    (1..=max)
        .rev()
        .find(|&k| {
            stop.is_char_boundary(k)
                && text.is_char_boundary(text.len() - k)
                && text.ends_with(&stop[..k])
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(stops: &[&str], pieces: &[&str]) -> (String, bool) {
        let stops: Vec<String> = stops.iter().map(|s| s.to_string()).collect();
        let mut s = StopScanner::new(&stops);
        let mut out = String::new();
        for p in pieces {
            let (emit, stopped) = s.push(p);
            out.push_str(&emit);
            if stopped {
                return (out, true);
            }
        }
        out.push_str(&s.finish());
        (out, false)
    }

    #[test]
    fn stop_string_inside_one_piece() {
        assert_eq!(
            scan(&["\n\n"], &["Paris.\n\nMore"]),
            ("Paris.".into(), true)
        );
    }

    #[test]
    fn stop_string_across_pieces() {
        assert_eq!(
            scan(&["END"], &["The ", "answer E", "N", "D and more"]),
            ("The answer ".into(), true)
        );
    }

    #[test]
    fn held_back_prefix_is_released_when_it_does_not_match() {
        let stops = vec!["END".to_string()];
        let mut s = StopScanner::new(&stops);
        assert_eq!(s.push("abc E"), ("abc ".into(), false));
        assert_eq!(s.push("x"), ("Ex".into(), false));
        assert_eq!(s.push("EN"), ("".into(), false));
        assert_eq!(s.finish(), "EN");
    }

    #[test]
    fn earliest_of_several_stops_wins() {
        assert_eq!(scan(&["c", "b"], &["abcd"]), ("a".into(), true));
    }

    #[test]
    fn no_stops_passes_everything_through() {
        assert_eq!(scan(&[], &["a", "b"]), ("ab".into(), false));
        assert_eq!(scan(&[""], &["a", "b"]), ("ab".into(), false));
    }

    #[test]
    fn multibyte_stop_strings() {
        assert_eq!(scan(&["é!"], &["café", "!x"]), ("caf".into(), true));
        assert_eq!(partial_suffix_len("abcé", "é!"), "é".len());
    }

    #[test]
    fn request_validation() {
        let bad = |req: GenerateRequest| sampler_config(&req).is_err();
        assert!(bad(GenerateRequest {
            temperature: Some(-1.0),
            ..Default::default()
        }));
        assert!(bad(GenerateRequest {
            top_p: Some(1.5),
            ..Default::default()
        }));
        assert!(bad(GenerateRequest {
            repeat_penalty: Some(0.0),
            ..Default::default()
        }));
        let ok = sampler_config(&GenerateRequest {
            seed: Some(3),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(ok.seed, 3);
        assert_eq!(ok.top_k, DEFAULT_TOP_K);
    }

    #[test]
    fn architectures_round_trip() {
        for name in SUPPORTED_ARCHITECTURES {
            assert!(Arch::from_name(name).is_some(), "{name}");
        }
        assert!(Arch::from_name("mamba").is_none());
    }
}
