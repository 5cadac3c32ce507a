//! The command-line definition (clap structs only; no behaviour lives here).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// llmkit: put GPT-4-class models to work on text, from the terminal.
///
/// With no API key configured, commands run on an embedded local model
/// (fetch it once with scripts/fetch-models.sh).
#[derive(Debug, Parser)]
#[command(name = "llmkit", version, about, max_term_width = 100)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command accepts.
#[derive(Debug, Args, Clone)]
pub(crate) struct GlobalArgs {
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
    /// Under --max-cost or a budget, still send requests to models without a known price
    /// (their cost is then unknown and not capped).
    #[arg(long, global = true)]
    pub allow_unpriced: bool,
    /// Bypass the response cache.
    #[arg(long, global = true, conflicts_with = "cache")]
    pub no_cache: bool,
    /// Cache policy: `auto` (only reproducible requests: temperature 0 or a seed) or `always`.
    #[arg(long, global = true, value_name = "auto|always")]
    pub cache: Option<CacheMode>,
    /// API for chat requests: auto (Responses on OpenAI, else chat), responses or chat.
    #[arg(long, global = true, value_name = "API")]
    pub api: Option<ApiChoice>,
    /// Let the provider store Responses API responses (default: `store: false`).
    #[arg(long, global = true)]
    pub store: bool,
    /// Print the model's reasoning summary on stderr.
    #[arg(long, global = true)]
    pub show_reasoning: bool,
}

/// The API that chat requests go to.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq, Default)]
pub(crate) enum ApiChoice {
    #[default]
    Auto,
    Responses,
    Chat,
}

/// When the response cache is used.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq, Default)]
pub(crate) enum CacheMode {
    #[default]
    Auto,
    Always,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
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
    /// Talk with a model: a REPL on a terminal, one turn per line when stdin is piped.
    Chat(ChatArgs),
    /// List, show, export or delete stored conversations.
    Sessions(SessionsArgs),
    /// Show spend and tokens from the usage ledger.
    Usage(UsageArgs),
    /// Inspect or clear the response cache.
    Cache(CacheArgs),
    /// The local store (sessions, ledger, cache): path, vacuum, export.
    Store(StoreArgs),
    /// List or show roles (system prompt, model and parameters presets).
    Roles(RolesArgs),
    /// Run many requests from a JSONL/CSV file: rate-limited, checkpointed, resumable.
    Batch(crate::commands::batch::BatchArgs),
    /// Knowledge bases: add documents, search them, answer from them with `ask --kb NAME`.
    Kb(crate::commands::kb::KbArgs),
    /// Evaluate prompts and models on a dataset: metrics, reports, quality gates.
    Eval(crate::commands::eval::EvalArgs),
    /// Fine-tuning data: validate chat JSONL and estimate tokens and cost.
    Finetune(crate::commands::finetune::FinetuneArgs),
    /// Run an OpenAI-compatible gateway with virtual keys, per-key budgets and the ledger.
    Serve(crate::commands::gateway::ServeArgs),
    /// Manage the gateway's virtual keys: create, list, revoke, rotate.
    Keys(crate::commands::gateway::KeysArgs),
    /// Summarize text, files or directories (map-reduce over long inputs).
    Summarize(SummarizeArgs),
    /// Translate text, keeping Markdown, code, URLs and placeholders intact.
    Translate(TranslateArgs),
    /// Sentiment of a text: label, score and evidence.
    Sentiment(SentimentArgs),
    /// Classify a text into given labels.
    Classify(ClassifyArgs),
    /// Extract data valid against a JSON Schema.
    Extract(ExtractArgs),
    /// Answer a question from a given context only.
    Qa(QaArgs),
    /// Write text from a template and variables.
    Write(WriteArgs),
    /// List, show or edit prompt templates.
    Templates(TemplatesArgs),
}

/// The model and sampling flags shared by every generating command.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct ModelArgs {
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
    /// Reasoning effort of reasoning models (`reasoning_effort`).
    #[arg(long, value_name = "LEVEL", value_parser = ["none", "minimal", "low", "medium", "high", "xhigh", "max"])]
    pub reasoning_effort: Option<String>,
    /// How long the answer should be (`verbosity`: low, medium, high).
    #[arg(long, value_name = "LEVEL", value_parser = ["low", "medium", "high"])]
    pub verbosity: Option<String>,
    /// Processing tier (`service_tier`): auto, default, flex, priority, scale, fast.
    #[arg(long, value_name = "TIER", value_parser = ["auto", "default", "flex", "priority", "scale", "fast"])]
    pub service_tier: Option<String>,
    /// Any other request field, as KEY=VALUE (repeatable); VALUE is parsed as JSON when it
    /// parses (`-o logprobs=true`, `-o 'metadata={"team":"a"}'`), else sent as a string.
    #[arg(short = 'o', long = "option", value_name = "KEY=VALUE")]
    pub options: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct AskArgs {
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
    /// Run the request in the provider's background mode (Responses API: `background:
    /// true`, polled until done); Ctrl-C cancels it at the server.
    #[arg(long)]
    pub background: bool,
    /// Print one JSON object: text (or choices), finish_reason, usage, model, latency_ms, request_id.
    #[arg(long)]
    pub json: bool,
    /// Continue the most recent conversation.
    #[arg(short = 'c', long = "continue", conflicts_with = "cid")]
    pub continue_last: bool,
    /// Continue the conversation with this id or name (see `llmkit sessions list`).
    #[arg(long, value_name = "ID")]
    pub cid: Option<String>,
    /// Use a role: $XDG_CONFIG_HOME/llmkit/roles/NAME.toml or a built-in (`llmkit roles list`).
    #[arg(long, value_name = "NAME")]
    pub role: Option<String>,
    #[command(flatten)]
    pub kb: crate::commands::kb::KbAskArgs,
    #[command(flatten)]
    pub tools: crate::commands::tools::ToolArgs,
    #[command(flatten)]
    pub attach: crate::commands::attach::AttachArgs,
}

#[derive(Debug, Args)]
pub(crate) struct ChatArgs {
    /// Create or resume the session with this name (or id).
    #[arg(short = 's', long = "session", value_name = "NAME")]
    pub session: Option<String>,
    #[command(flatten)]
    pub model: ModelArgs,
    /// System prompt (replaces the session's).
    #[arg(long, value_name = "TEXT")]
    pub system: Option<String>,
    /// Use a role (`llmkit roles list`).
    #[arg(long, value_name = "NAME")]
    pub role: Option<String>,
    /// Ground every turn in a knowledge base (`--kb NAME`), and/or follow `--rules FILE`.
    #[command(flatten)]
    pub kb: crate::commands::kb::KbAskArgs,
    #[command(flatten)]
    pub tools: crate::commands::tools::ToolArgs,
    #[command(flatten)]
    pub attach: crate::commands::attach::AttachArgs,
}

#[derive(Debug, Args)]
pub(crate) struct SessionsArgs {
    #[command(subcommand)]
    pub action: Option<SessionsAction>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum SessionsAction {
    /// List sessions, most recent first.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a session's messages.
    Show {
        /// Session name or id.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Export a session as JSON or Markdown.
    Export {
        /// Session name or id.
        name: String,
        /// `json` or `md`.
        #[arg(long, value_name = "json|md", default_value = "json")]
        format: ExportFormat,
        /// Write to FILE instead of stdout.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Delete a session and its messages.
    Delete {
        /// Session name or id.
        name: String,
    },
}

/// Session export formats.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum ExportFormat {
    Json,
    Md,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct UsageArgs {
    #[command(subcommand)]
    pub action: Option<UsageAction>,
    /// From this local date or time (YYYY-MM-DD or "YYYY-MM-DD HH:MM"), inclusive.
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,
    /// Up to this local date or time, exclusive.
    #[arg(long, value_name = "DATE")]
    pub until: Option<String>,
    /// Group rows.
    #[arg(long, value_name = "day|model|session|command")]
    pub by: Option<UsageBy>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// A bar chart of spend per day.
    #[arg(long, conflicts_with = "json")]
    pub chart: bool,
}

/// The subcommands of `usage`.
#[derive(Debug, Subcommand)]
pub(crate) enum UsageAction {
    /// Compare the ledger, day by model, with the organisation's usage and cost reports
    /// (needs OPENAI_ADMIN_KEY); exits 3 when they disagree.
    Reconcile(crate::commands::usage_reconcile::ReconcileArgs),
}

/// How `usage` groups.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum UsageBy {
    Day,
    Model,
    Session,
    Command,
}

#[derive(Debug, Args)]
pub(crate) struct CacheArgs {
    #[command(subcommand)]
    pub action: CacheAction,
}

#[derive(Debug, Subcommand)]
pub(crate) enum CacheAction {
    /// Entries, hits and size.
    Stats {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove cached responses.
    Clear {
        /// Only those older than the TTL.
        #[arg(long)]
        expired: bool,
    },
}

#[derive(Debug, Args)]
pub(crate) struct StoreArgs {
    #[command(subcommand)]
    pub action: StoreAction,
}

#[derive(Debug, Subcommand)]
pub(crate) enum StoreAction {
    /// Print the store file's path.
    Path,
    /// Compact the file.
    Vacuum,
    /// Export sessions and the ledger as JSON.
    Export {
        /// Write to FILE instead of stdout.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// List the features servers rejected (remembered per base URL), or forget them.
    Capabilities {
        /// Forget what is remembered of the current base URL (`--base-url`, the config).
        #[arg(long)]
        forget: bool,
        /// With --forget: forget every server's.
        #[arg(long, requires = "forget")]
        all: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub(crate) struct RolesArgs {
    #[command(subcommand)]
    pub action: Option<RolesAction>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum RolesAction {
    /// List roles: built-in and those in $XDG_CONFIG_HOME/llmkit/roles.
    List,
    /// Show one role.
    Show {
        /// Role name.
        name: String,
    },
}

#[derive(Debug, Args)]
pub(crate) struct CompleteArgs {
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
pub(crate) struct ModelsArgs {
    #[command(subcommand)]
    pub action: Option<ModelsAction>,
    /// Show the built-in price list (with the config's `[models."NAME"]` overrides): context
    /// window, output limit and USD per 1M tokens. Works offline, with no API key.
    #[arg(long)]
    pub prices: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ModelsAction {
    /// List models: the server's, or with --local the installed model files.
    List {
        /// Show installed local models and their sizes.
        #[arg(long)]
        local: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Download a model from the Hugging Face Hub into the models directory: a catalogued one
    /// (pinned revision, checksum verified) or any file as hf:OWNER/REPO/FILE[@REVISION].
    Pull {
        /// A catalogue name, e.g. smollm2-360m (see `llmkit models list --local`), or
        /// hf:OWNER/REPO/FILE[@REVISION], e.g.
        /// hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF/qwen2.5-0.5b-instruct-q4_k_m.gguf.
        name: String,
    },
}

#[derive(Debug, Args)]
pub(crate) struct TokensArgs {
    /// File to count (`-` or nothing reads stdin).
    pub file: Option<PathBuf>,
    /// Model whose tokenizer, context window and price apply.
    #[arg(short, long, value_name = "MODEL")]
    pub model: Option<String>,
    /// Count an attachment too: an image by OpenAI's rule for the model, or a text file.
    /// Repeatable.
    #[arg(short = 'a', long = "attach", value_name = "FILE|URL")]
    pub attach: Vec<String>,
    /// The detail the images are sent at (`low` costs a fixed, small amount).
    #[arg(long, value_enum, value_name = "low|high|auto")]
    pub image_detail: Option<crate::commands::attach::Detail>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct EmbedArgs {
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
pub(crate) struct ConfigArgs {
    #[command(subcommand)]
    pub action: ConfigAction,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ConfigAction {
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

/// Input, model and output flags shared by the NLP task commands.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct TaskInput {
    /// Text, files or directories (read recursively); `-` or nothing reads stdin.
    #[arg(value_name = "INPUT")]
    pub inputs: Vec<String>,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Context window in tokens, overriding the model's (sizes the chunks).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(256..))]
    pub context_window: Option<u32>,
    /// Treat input as HTML and convert it to text (default: detect by extension or content).
    #[arg(long)]
    pub html: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub tools: crate::commands::tools::ToolArgs,
}

/// Flags of the commands that return validated JSON.
#[derive(Debug, Args, Clone)]
pub(crate) struct StructuredArgs {
    /// Follow-up requests that quote the validation error when an answer is invalid.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub repair_attempts: u32,
    /// How JSON is requested: `schema` (strict json_schema), `prompt` (JSON mode plus the
    /// schema in the prompt), or `auto` (schema; the embedded model honours it with
    /// constrained decoding).
    #[arg(long, value_name = "MODE", default_value = "auto")]
    pub json_mode: JsonMode,
}

/// How structured output is requested.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq, Default)]
pub(crate) enum JsonMode {
    #[default]
    Auto,
    Schema,
    Prompt,
}

#[derive(Debug, Args)]
pub(crate) struct SummarizeArgs {
    #[command(flatten)]
    pub input: TaskInput,
    /// Summary length.
    #[arg(long, value_name = "short|medium|long", default_value = "medium")]
    pub length: SummaryLength,
    /// At most this many words (wins over --length).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub words: Option<u32>,
    /// Prose or a bulleted list.
    #[arg(long, value_name = "paragraph|bullets", default_value = "paragraph")]
    pub format: SummaryStyle,
    /// What the summary should concentrate on.
    #[arg(long, value_name = "TEXT")]
    pub focus: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum SummaryLength {
    Short,
    Medium,
    Long,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum SummaryStyle {
    Paragraph,
    Bullets,
}

#[derive(Debug, Args)]
pub(crate) struct TranslateArgs {
    #[command(flatten)]
    pub input: TaskInput,
    /// Target language, e.g. French or fr.
    #[arg(long, value_name = "LANG")]
    pub to: String,
    /// Source language (default: detected by the model).
    #[arg(long, value_name = "LANG")]
    pub from: Option<String>,
    /// Glossary: TSV/CSV `source<TAB>target` lines or a JSON object.
    #[arg(long, value_name = "FILE")]
    pub glossary: Option<PathBuf>,
    /// Fail (exit 1) when a glossary term's target is missing from the translation.
    #[arg(long)]
    pub strict: bool,
}

#[derive(Debug, Args)]
pub(crate) struct SentimentArgs {
    #[command(flatten)]
    pub input: TaskInput,
    #[command(flatten)]
    pub structured: StructuredArgs,
}

#[derive(Debug, Args)]
pub(crate) struct ClassifyArgs {
    #[command(flatten)]
    pub input: TaskInput,
    #[command(flatten)]
    pub structured: StructuredArgs,
    /// The labels to choose from, comma-separated.
    #[arg(long, value_name = "A,B,C", value_delimiter = ',', required = true)]
    pub labels: Vec<String>,
    /// Allow several labels.
    #[arg(long)]
    pub multi: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ExtractArgs {
    #[command(flatten)]
    pub input: TaskInput,
    #[command(flatten)]
    pub structured: StructuredArgs,
    /// JSON Schema file the result must be valid against.
    #[arg(long, value_name = "FILE.json")]
    pub schema: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct QaArgs {
    /// The question.
    #[arg(value_name = "QUESTION", required = true)]
    pub question: Vec<String>,
    /// Context files or directories (repeatable); `-` reads stdin. Not needed with --kb.
    #[arg(long = "context", value_name = "FILE", required_unless_present = "kb")]
    pub context: Vec<String>,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub structured: StructuredArgs,
    /// Context window in tokens, overriding the model's.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(256..))]
    pub context_window: Option<u32>,
    /// Print JSON: {answer, found, quote} (with --kb: the grounded answer's object).
    #[arg(long)]
    pub json: bool,
    /// Answer from a knowledge base instead of --context (`--kb NAME`); `--rules FILE`.
    #[command(flatten)]
    pub kb: crate::commands::kb::KbAskArgs,
    #[command(flatten)]
    pub tools: crate::commands::tools::ToolArgs,
}

#[derive(Debug, Args)]
pub(crate) struct WriteArgs {
    /// Template name (see `llmkit templates list`).
    #[arg(long, value_name = "NAME")]
    pub template: String,
    /// A template variable (repeatable).
    #[arg(long = "var", value_name = "KEY=VALUE")]
    pub vars: Vec<String>,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Context window in tokens, overriding the model's.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(256..))]
    pub context_window: Option<u32>,
    /// Print JSON: {text, template}.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub tools: crate::commands::tools::ToolArgs,
}

#[derive(Debug, Args)]
pub(crate) struct TemplatesArgs {
    #[command(subcommand)]
    pub action: TemplatesAction,
}

#[derive(Debug, Subcommand)]
pub(crate) enum TemplatesAction {
    /// List templates with their source (built-in or file path).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a template's text.
    Show { name: String },
    /// Copy a built-in template to the user directory (if absent) and open it in $EDITOR.
    Edit { name: String },
}

/// Output formats for commands that can print several.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum OutputFormat {
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

pub(crate) fn parse_positive_f64(s: &str) -> Result<f64, String> {
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
