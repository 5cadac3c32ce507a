//! `LocalModel`: loads a GGUF chat model once and serves generation requests from many threads,
//! one at a time.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::batcher::{BatchStats, Batcher, KvCache};
use crate::error::LocalError;
use crate::generate::{
    Arch, GenerateOutput, GenerateRequest, Job, SUPPORTED_ARCHITECTURES, Weights, run,
    sampler_config,
};
use crate::gguf::{GgufFile, Meta};
use crate::native::{self, Native};
use crate::prefix_cache::KvCacheStats;
use crate::requant;
use crate::template::{ChatTemplate, ChatTurn};
use crate::tokenizer::TextCodec;

/// Receives one-line progress notices (such as a one-time weight conversion). The library never
/// prints; the caller decides where notices go.
pub type NoticeFn = Arc<dyn Fn(&str) + Send + Sync>;

/// How to load a model.
#[derive(Clone, Default)]
pub struct LoadOptions {
    /// Where to cache converted weights when the model's own directory is not writable.
    pub cache_dir: Option<PathBuf>,
    /// Worker threads for inference (default: the number of physical cores). The native
    /// engine starts its own pool of this size per model. Models that run on candle (other quant
    /// types, unknown tensors) use candle's pool, which candle 0.11 sizes once per
    /// process from `CANDLE_NUM_THREADS`; for those a different value only produces a notice.
    pub threads: Option<usize>,
    /// Progress notices; `None` discards them.
    pub on_notice: Option<NoticeFn>,
    /// Where the native engine keeps the KV state of recent sequences, so that a prompt
    /// sharing a prefix with one of them prefills only the rest (see [`KvCache`]); `None`
    /// (the default) reuses nothing. Models that run on candle ignore it.
    pub kv_cache: Option<KvCache>,
}

impl fmt::Debug for LoadOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadOptions")
            .field("cache_dir", &self.cache_dir)
            .field("threads", &self.threads)
            .field("on_notice", &self.on_notice.as_ref().map(|_| "Fn"))
            .field("kv_cache", &self.kv_cache)
            .finish()
    }
}

/// A loaded chat model. Cloning is cheap; all clones share the weights.
///
/// `generate` may be called from several threads at once. On the native engine each
/// request gets its own KV cache and their forward steps are batched (one pass over the
/// weights serves all of them); models that run on candle hold a single cache, so their
/// requests queue and run one after the other.
#[derive(Clone)]
pub struct LocalModel {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    architecture: String,
    context_window: usize,
    codec: TextCodec,
    template: ChatTemplate,
    engine: Engine,
}

/// Where generation runs.
enum Engine {
    /// candle's models: one request at a time (they hold a single KV cache).
    Candle(Mutex<Weights>),
    /// The native engine: concurrent requests are batched step by step.
    Native(Batcher),
}

impl fmt::Debug for LocalModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalModel")
            .field("name", &self.inner.name)
            .field("architecture", &self.inner.architecture)
            .field("context_window", &self.inner.context_window)
            .finish()
    }
}

impl LocalModel {
    /// Loads the GGUF model at `path`. Quant types that would run slowly are converted to Q8_0
    /// on the first load and cached next to the model (or in `opts.cache_dir`).
    pub fn load(path: &Path, opts: &LoadOptions) -> Result<LocalModel, LocalError> {
        Self::load_impl(path, opts, true)
    }

    /// Loads the model with its weights as stored, without the Q8_0 conversion. Llama-family
    /// Q4_1/Q8_0 files run the same either way (natively); Q5_0 and Q5_1 weights, and Q4_1 in
    /// other architectures, then run about 50 times slower on candle's scalar path. This exists
    /// for benchmarks and for comparing against llama.cpp on identical weights.
    pub fn load_unconverted(path: &Path, opts: &LoadOptions) -> Result<LocalModel, LocalError> {
        Self::load_impl(path, opts, false)
    }

    fn load_impl(path: &Path, opts: &LoadOptions, convert: bool) -> Result<LocalModel, LocalError> {
        let notify = |message: &str| {
            if let Some(on_notice) = &opts.on_notice {
                on_notice(message);
            }
        };
        let source = GgufFile::open(path)?;
        let (arch, architecture) = architecture_of(&source)?;
        // The native engine runs Q4_1 and Q8_0 as stored; only what neither it nor
        // candle's SIMD kernels handle is converted.
        let file = if convert && !native::supports(&source) {
            requant::prepare(source, opts.cache_dir.as_deref(), &notify)?
        } else {
            source
        };
        let native = native::supports(&file);
        let threads = opts
            .threads
            .filter(|&n| n > 0)
            .unwrap_or_else(candle_core::utils::get_num_threads);
        if !native && let Some(threads) = opts.threads {
            let actual = candle_core::utils::get_num_threads();
            if threads != actual {
                notify(&format!(
                    "{threads} threads requested but candle uses {actual} for this model; set CANDLE_NUM_THREADS={threads} in the environment before starting to change it"
                ));
            }
        }

        let meta = Meta(file.content());
        let context_window = context_window_of(&meta, arch, &architecture, native);
        let codec = TextCodec::load(&file, path)?;
        let bos_text = codec.bos.as_ref().map(|(text, _)| text.as_str());
        let (template, template_notice) = ChatTemplate::new(
            meta.str("tokenizer.chat_template"),
            bos_text,
            codec.eos_text.as_deref(),
        );
        if let Some(message) = template_notice {
            notify(&message);
        }
        let engine = if native {
            // The engine keeps the map: its weights are read from it in place.
            Engine::Native(Batcher::new(
                Native::load(file, threads)?,
                opts.kv_cache.clone(),
            ))
        } else {
            let weights = Weights::load(arch, &file)?;
            // candle copied the weights out of the file; the map can go.
            drop(file);
            Engine::Candle(Mutex::new(weights))
        };

        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "local".into());
        Ok(LocalModel {
            inner: Arc::new(Inner {
                name,
                architecture,
                context_window,
                codec,
                template,
                engine,
            }),
        })
    }

    /// How the native engine has batched concurrent requests so far (`None` for models that
    /// run on candle, one request at a time).
    pub fn batch_stats(&self) -> Option<BatchStats> {
        match &self.inner.engine {
            Engine::Native(batcher) => Some(batcher.stats()),
            Engine::Candle(_) => None,
        }
    }

    /// The counters of the KV prefix cache this model uses (`None` without one, or for
    /// models that run on candle). A cache shared between models counts for all of them.
    pub fn kv_cache_stats(&self) -> Option<KvCacheStats> {
        match &self.inner.engine {
            Engine::Native(batcher) => batcher.cache_stats(),
            Engine::Candle(_) => None,
        }
    }

    /// The model's name: its file stem.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// `general.architecture`, e.g. `llama`.
    pub fn architecture(&self) -> &str {
        &self.inner.architecture
    }

    /// The most tokens (prompt plus completion) one request can use.
    pub fn context_window(&self) -> usize {
        self.inner.context_window
    }

    /// Tokens in `text` (no special tokens added).
    pub fn count_tokens(&self, text: &str) -> Result<usize, LocalError> {
        Ok(self.inner.codec.encode(text)?.len())
    }

    /// Tokens in the prompt that `messages` render to, as `generate` would see it.
    pub fn count_chat_tokens(&self, messages: &[ChatTurn]) -> Result<usize, LocalError> {
        Ok(self.prompt_ids(messages, None)?.len())
    }

    /// Token ids of `text` (no special tokens added).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, LocalError> {
        self.inner.codec.encode(text)
    }

    /// The prompt `messages` render to with the model's chat template.
    pub fn render_chat(&self, messages: &[ChatTurn]) -> Result<String, LocalError> {
        self.inner.template.render(messages)
    }

    /// Generates a reply, calling `on_token` with each new piece of text as it is produced
    /// (return `false` from it to stop early). Blocks; call it from a blocking thread.
    pub fn generate(
        &self,
        req: &GenerateRequest,
        on_token: &mut dyn FnMut(&str) -> bool,
    ) -> Result<GenerateOutput, LocalError> {
        let sampler = sampler_config(req)?;
        let prompt = self.prompt_ids(&req.messages, req.raw_prompt.as_deref())?;
        let window = self.inner.context_window;
        if prompt.len() >= window {
            return Err(LocalError::ContextOverflow {
                prompt_tokens: prompt.len(),
                context_window: window,
            });
        }
        let room = window - prompt.len();
        let max_new_tokens = req.max_tokens.map_or(room, |m| (m as usize).min(room));
        let job = Job {
            prompt: &prompt,
            max_new_tokens,
            sampler,
            stop: &req.stop,
            json: req.json.as_ref(),
        };
        let (text, finish_reason, completion) = match &self.inner.engine {
            Engine::Native(batcher) => {
                let mut session = batcher.session();
                run(&mut session, &self.inner.codec, job, on_token)?
            }
            Engine::Candle(weights) => {
                // A panic inside candle is caught where it happens, so the lock is never
                // poisoned by us; should it be anyway, the state is still usable because every
                // request starts by resetting the cache.
                let mut weights = weights
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                run(&mut *weights, &self.inner.codec, job, on_token)?
            }
        };
        Ok(GenerateOutput {
            text,
            finish_reason,
            prompt_tokens: to_u32(prompt.len()),
            completion_tokens: to_u32(completion),
        })
    }

    fn prompt_ids(
        &self,
        messages: &[ChatTurn],
        raw_prompt: Option<&str>,
    ) -> Result<Vec<u32>, LocalError> {
        let text = match raw_prompt {
            Some(raw) => raw.to_string(),
            None if messages.is_empty() => {
                return Err(LocalError::InvalidRequest(
                    "the request has no messages and no prompt".into(),
                ));
            }
            None => self.inner.template.render(messages)?,
        };
        self.inner.codec.encode_prompt(&text)
    }
}

/// Converts the Q4_1, Q5_0 and Q5_1 weights of the GGUF at `path` to Q8_0 (as `load` does for
/// files it cannot run fast) and returns the path of the converted file, cached beside the
/// model or in `opts.cache_dir`. An existing conversion of the same source is reused.
pub fn convert_to_q8_0(path: &Path, opts: &LoadOptions) -> Result<PathBuf, LocalError> {
    let notify = |message: &str| {
        if let Some(on_notice) = &opts.on_notice {
            on_notice(message);
        }
    };
    let source = GgufFile::open(path)?;
    requant::convert_to_file(source, opts.cache_dir.as_deref(), &notify)
}

fn architecture_of(file: &GgufFile) -> Result<(Arch, String), LocalError> {
    let name = Meta(file.content())
        .str("general.architecture")
        .ok_or_else(|| LocalError::InvalidModel {
            path: file.path().to_path_buf(),
            detail: "the GGUF metadata has no `general.architecture`".into(),
        })?
        .to_string();
    match Arch::from_name(&name) {
        Some(arch) => Ok((arch, name)),
        None => Err(LocalError::UnsupportedArchitecture {
            architecture: name,
            supported: SUPPORTED_ARCHITECTURES.to_vec(),
        }),
    }
}

fn context_window_of(meta: &Meta<'_>, arch: Arch, name: &str, native: bool) -> usize {
    // 2048 is a conservative guess for files that do not say.
    let declared = meta
        .u64(&format!("{name}.context_length"))
        .and_then(|n| usize::try_from(n).ok())
        .filter(|&n| n > 0)
        .unwrap_or(2048);
    match arch.context_cap(native) {
        Some(cap) => declared.min(cap),
        None => declared,
    }
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
