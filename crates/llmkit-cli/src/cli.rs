//! The command-line definition (clap structs only; no behaviour lives here).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// llmkit: put GPT-4-class models to work on text, from the terminal.
///
/// With no API key configured, commands run on an embedded local model
/// (fetch it once with scripts/fetch-models.sh).
#[derive(Debug, Parser)]
#[command(name = "llmkit", version, about, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command accepts.
#[derive(Debug, Args, Clone)]
pub struct GlobalArgs {
    /// Configuration profile to use (env: LLMKIT_PROFILE).
    #[arg(long, global = true, value_name = "NAME")]
    pub profile: Option<String>,
    /// API base URL, e.g. http://localhost:8000/v1 (env: OPENAI_BASE_URL).
    #[arg(long, global = true, value_name = "URL")]
    pub base_url: Option<String>,
    /// Config file to read instead of $XDG_CONFIG_HOME/llmkit/config.toml.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Retries for failed requests (connect errors, 408, 409, 429, 5xx).
    #[arg(long, global = true, value_name = "N")]
    pub max_retries: Option<u32>,
    /// Whole-request timeout in seconds.
    #[arg(long, global = true, value_name = "SECS", value_parser = parse_positive_f64)]
    pub timeout: Option<f64>,
    /// End a stream that receives no bytes for this many seconds.
    #[arg(long, global = true, value_name = "SECS", value_parser = parse_positive_f64)]
    pub stall_timeout: Option<f64>,
    /// Replace personal data (emails, phones, cards, keys...) with placeholders before any
    /// request leaves, and restore it in the answer.
    #[arg(long, global = true)]
    pub redact: bool,
    /// Redact only these kinds (comma-separated; see the README), implies --redact.
    #[arg(long, global = true, value_name = "KINDS", value_delimiter = ',')]
    pub redact_kinds: Vec<String>,
    /// Print counts of redacted items by kind on stderr (never the values).
    #[arg(long, global = true)]
    pub show_redactions: bool,
    /// Refuse requests once this much (USD) has been spent by this invocation.
    #[arg(long, global = true, value_name = "USD", value_parser = parse_positive_f64)]
    pub max_cost: Option<f64>,
    /// Bypass the response cache.
    #[arg(long, global = true, conflicts_with = "cache")]
    pub no_cache: bool,
    /// Cache policy: `auto` (only reproducible requests: temperature 0 or a seed) or `always`.
    #[arg(long, global = true, value_name = "auto|always")]
    pub cache: Option<CacheMode>,
}

/// When the response cache is used.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq, Default)]
pub enum CacheMode {
    #[default]
    Auto,
    Always,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Ask a model a question (reads stdin when PROMPT is absent or `-`).
    Ask(AskArgs),
    /// Continue a prompt with text generation (/v1/completions, falling back to chat).
    Complete(CompleteArgs),
    /// List the server's models, or manage local model files.
    Models(ModelsArgs),
    /// Count tokens offline and check them against the model's context window.
    Tokens(TokensArgs),
    /// Embed text into vectors.
    Embed(EmbedArgs),
    /// Show or change the configuration.
    Config(ConfigArgs),
}

/// The model and sampling flags shared by every generating command.
#[derive(Debug, Args, Clone, Default)]
pub struct ModelArgs {
    /// Model: an API model name, `local:NAME` or `local:/path/model.gguf` (env: LLMKIT_MODEL).
    #[arg(short, long, value_name = "MODEL")]
    pub model: Option<String>,
    /// Sampling temperature, 0 to 2.
    #[arg(long, value_name = "T", value_parser = parse_temperature)]
    pub temperature: Option<f64>,
    /// Nucleus sampling mass, 0 to 1.
    #[arg(long, value_name = "P", value_parser = parse_unit)]
    pub top_p: Option<f64>,
    /// Maximum number of tokens to generate.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_tokens: Option<u32>,
    /// Stop sequence (repeatable, at most 4).
    #[arg(long = "stop", value_name = "TEXT")]
    pub stop: Vec<String>,
    /// Seed for reproducible sampling.
    #[arg(long, value_name = "N")]
    pub seed: Option<i64>,
}

#[derive(Debug, Args)]
pub struct AskArgs {
    /// The prompt; `-` or nothing reads stdin. With a prompt and piped stdin, stdin is
    /// appended as context.
    pub prompt: Option<String>,
    #[command(flatten)]
    pub model: ModelArgs,
    /// System prompt.
    #[arg(short, long, value_name = "TEXT")]
    pub system: Option<String>,
    /// Number of answers to generate.
    #[arg(short, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=128))]
    pub n: u32,
    /// Ask for a JSON object (`json`) or JSON valid against a schema file.
    #[arg(long, value_name = "json|FILE.json")]
    pub format: Option<String>,
    /// Print the whole answer at the end instead of streaming tokens.
    #[arg(long)]
    pub no_stream: bool,
    /// Print one JSON object: text (or choices), finish_reason, usage, model, latency_ms, request_id.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CompleteArgs {
    /// The text to continue (`-` reads stdin).
    pub prompt: String,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Number of continuations.
    #[arg(short, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=128))]
    pub n: u32,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ModelsArgs {
    #[command(subcommand)]
    pub action: Option<ModelsAction>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ModelsAction {
    /// List models: the server's, or with --local the installed model files.
    List {
        /// Show installed local models and their sizes.
        #[arg(long)]
        local: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Download a known model from the Hugging Face Hub into the models directory.
    Pull {
        /// A catalogue name, e.g. smollm2-360m (see `llmkit models list --local`).
        name: String,
    },
}

#[derive(Debug, Args)]
pub struct TokensArgs {
    /// File to count (`-` or nothing reads stdin).
    pub file: Option<PathBuf>,
    /// Model whose tokenizer, context window and price apply.
    #[arg(short, long, value_name = "MODEL")]
    pub model: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct EmbedArgs {
    /// Text, a file, or `-` for stdin (one text per line with --lines).
    pub input: Option<String>,
    /// Embedding model: `local:minilm` or an API model such as text-embedding-3-small.
    #[arg(short, long, value_name = "MODEL")]
    pub model: Option<String>,
    /// Embed each input line separately.
    #[arg(long)]
    pub lines: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub action: ConfigAction,
}

#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Show the resolved settings (keys are masked).
    Show {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Set a value in the config file (in the --profile section when one is given).
    Set {
        /// Key: api_key, base_url, model, organization, project, azure_api_version,
        /// azure_deployment, max_retries, timeout, connect_timeout, stall_timeout,
        /// models_dir, default_profile.
        key: String,
        /// The value.
        value: String,
    },
    /// Print the config file's path.
    Path,
}

/// Output formats for commands that can print several.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum OutputFormat {
    Text,
    Json,
}

fn parse_f64(s: &str) -> Result<f64, String> {
    s.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| format!("`{s}` is not a number"))
}

fn parse_temperature(s: &str) -> Result<f64, String> {
    let v = parse_f64(s)?;
    if (0.0..=2.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is outside 0..=2"))
    }
}

fn parse_unit(s: &str) -> Result<f64, String> {
    let v = parse_f64(s)?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is outside 0..=1"))
    }
}

fn parse_positive_f64(s: &str) -> Result<f64, String> {
    let v = parse_f64(s)?;
    if v > 0.0 {
        Ok(v)
    } else {
        Err(format!("{v} must be greater than 0"))
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn bad_values_are_rejected() {
        assert!(Cli::try_parse_from(["llmkit", "ask", "--temperature", "3", "x"]).is_err());
        assert!(Cli::try_parse_from(["llmkit", "ask", "--top-p", "nan", "x"]).is_err());
        assert!(Cli::try_parse_from(["llmkit", "ask", "--max-tokens", "0", "x"]).is_err());
        assert!(Cli::try_parse_from(["llmkit", "ask", "-n", "0", "x"]).is_err());
        assert!(Cli::try_parse_from(["llmkit", "ask", "--temperature", "0.5", "x"]).is_ok());
    }
}
