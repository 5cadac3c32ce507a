//! Grounded turns, shared by `ask --kb`, `qa --kb` and `chat --kb`: retrieve from the
//! knowledge base, answer "not in the knowledge base" below the relevance threshold without
//! asking a model, number the sources in the system prompt, then check the answer's
//! citations and rules and report the sources used.

use anyhow::Result;
use llmkit_kb::{Citations, Hit, Kb, NO_ANSWER, RuleBase, RuleViolation, SearchOptions};
use llmkit_types::{ChatCompletionRequest, ChatMessage, MessageContent, Role};
use serde_json::{Value, json};

use super::{Embedder, KbAskArgs, embed_texts, kb_dir, place};
use crate::app::PipelineSpec;
use crate::app::{Ctx, notice};
use crate::cli::ModelArgs;
use crate::commands::request::apply_sampling;
use crate::output;

/// An open knowledge base with its embedding model, ready to retrieve for questions.
pub(crate) struct Grounding {
    kb: Kb,
    embedder: Embedder,
    opts: SearchOptions,
    min_score: f32,
}

/// What retrieval found for a question.
pub(crate) enum Retrieved {
    /// Nothing relevant enough: answer [`NO_ANSWER`] without asking a model.
    Refused { best: Option<f32> },
    /// The sources to number in the prompt, best first.
    Sources(Vec<Hit>),
}

/// One grounded turn's outcome, as printed and as `--json`.
#[derive(Debug, Clone)]
pub(crate) struct Grounded {
    pub text: String,
    pub answered: bool,
    pub best_similarity: Option<f32>,
    pub hits: Vec<Hit>,
    pub citations: Citations,
    pub violations: Vec<RuleViolation>,
}

impl Grounding {
    /// Opens knowledge base `name` and its embedding model (once, for every turn).
    pub(crate) async fn open(ctx: &Ctx, name: &str, args: &KbAskArgs) -> Result<Self> {
        let kb = Kb::open(&kb_dir(ctx), name)?;
        Self::with_kb(ctx, kb, args).await
    }

    /// Like [`Grounding::open`], for a knowledge base already open.
    pub(crate) async fn with_kb(ctx: &Ctx, kb: Kb, args: &KbAskArgs) -> Result<Self> {
        if kb.chunk_count()? == 0 {
            return Err(anyhow::Error::from(llmkit_kb::KbError::Empty(
                kb.name().to_string(),
            )));
        }
        let embedder = Embedder::open(ctx, &kb.info().model, "kb").await?;
        Ok(Self {
            kb,
            embedder,
            opts: SearchOptions {
                k: usize::from(args.top_k),
                ..SearchOptions::default()
            },
            min_score: args.min_score,
        })
    }

    /// Retrieves the sources for `question`, or refuses when the best is below the threshold.
    pub(crate) async fn retrieve(&self, question: &str) -> Result<Retrieved> {
        let hits = self.search(question, &self.opts).await?;
        let best = hits.iter().filter_map(|h| h.similarity).reduce(f32::max);
        if hits.is_empty() || best.is_none_or(|b| b < self.min_score) {
            return Ok(Retrieved::Refused { best });
        }
        Ok(Retrieved::Sources(hits))
    }

    /// Embeds `query` with the knowledge base's model and runs the hybrid search.
    pub(crate) async fn search(&self, query: &str, opts: &SearchOptions) -> Result<Vec<Hit>> {
        let mut v = embed_texts(&self.embedder, vec![query.to_string()]).await?;
        let qv = v.pop().unwrap_or_default();
        self.kb
            .search(query, Some(&qv), opts)
            .map_err(anyhow::Error::from)
    }
}

impl Grounded {
    /// The fixed answer when the knowledge base has nothing relevant.
    pub(crate) fn refused(best: Option<f32>) -> Self {
        Self {
            text: NO_ANSWER.to_string(),
            answered: false,
            best_similarity: best,
            hits: Vec::new(),
            citations: Citations::default(),
            violations: Vec::new(),
        }
    }

    /// A model's answer over `hits`: citations and rules are checked, problems reported on
    /// stderr.
    pub(crate) fn answered(text: String, hits: Vec<Hit>, rules: Option<&RuleBase>) -> Self {
        let citations = llmkit_kb::check_citations(&text, hits.len());
        if !citations.invalid.is_empty() {
            let list: Vec<String> = citations.invalid.iter().map(|n| format!("[{n}]")).collect();
            notice(&format!(
                "warning: the answer cites sources that do not exist: {} (there are {})",
                list.join(" "),
                hits.len()
            ));
        }
        let violations = super::rules::check(rules, &text);
        Self {
            best_similarity: hits.iter().filter_map(|h| h.similarity).reduce(f32::max),
            text,
            answered: true,
            hits,
            citations,
            violations,
        }
    }

    /// The sources actually cited, in citation order.
    pub(crate) fn cited(&self) -> Vec<&Hit> {
        self.citations
            .used
            .iter()
            .filter_map(|n| self.hits.get(n - 1))
            .collect()
    }

    /// The `--json` object.
    pub(crate) fn json(&self, model: Option<&str>) -> Value {
        let sources = |hits: &[&Hit]| -> Vec<Value> {
            hits.iter()
                .map(|h| {
                    let n = self
                        .hits
                        .iter()
                        .position(|x| x.chunk_id == h.chunk_id)
                        .map_or(0, |i| i + 1);
                    json!({"n": n, "path": h.source, "location": h.location,
                           "score": h.score, "similarity": h.similarity})
                })
                .collect()
        };
        let all: Vec<&Hit> = self.hits.iter().collect();
        let mut v = json!({
            "text": self.text,
            "answered": self.answered,
            "best_similarity": self.best_similarity,
            "citations": self.citations,
            "sources": sources(&all),
            "cited_sources": sources(&self.cited()),
            "rule_violations": self.violations,
        });
        if let Some(m) = model {
            v["model"] = json!(m);
        }
        v
    }

    /// The list of cited sources printed under an answer.
    pub(crate) fn print_sources(&self) -> Result<()> {
        let cited = self.cited();
        if cited.is_empty() {
            return Ok(());
        }
        output::line("")?;
        for (n, h) in self.citations.used.iter().zip(cited) {
            output::line(&format!("[{n}] {}", place(h)))?;
        }
        Ok(())
    }
}

/// What `ask --kb` and `qa --kb` share: one question answered whole from the knowledge base.
pub(crate) struct OneShot<'a> {
    pub command: &'a str,
    pub model: &'a ModelArgs,
    /// A system prompt of the user's or a role's, placed before the grounded one.
    pub system: Option<&'a str>,
    pub kb_args: &'a KbAskArgs,
    pub json: bool,
}

/// Retrieves, refuses or asks, checks citations and rules, and prints the answer.
pub(crate) async fn answer_once(
    ctx: &Ctx,
    name: &str,
    question: &str,
    o: OneShot<'_>,
) -> Result<()> {
    let grounding = Grounding::open(ctx, name, o.kb_args).await?;
    let rules = super::rules::load(o.kb_args.rules.as_deref())?;
    let (outcome, model) = match grounding.retrieve(question).await? {
        Retrieved::Refused { best } => (Grounded::refused(best), None),
        Retrieved::Sources(hits) => {
            let mut messages = llmkit_kb::grounded_messages(
                question,
                &hits,
                rules.as_ref().map(|r| r.prompt()).as_deref(),
            );
            if let Some(extra) = o.system {
                merge_system(&mut messages, extra);
            }
            let opened = ctx.open_chat(o.model.model.as_deref()).await?;
            let pipe = ctx.pipeline(opened.backend, PipelineSpec::new(o.command))?;
            let req = apply_sampling(ChatCompletionRequest::new(opened.model, messages), o.model)?;
            let res = pipe.chat(&req).await?;
            ctx.show_redactions(&res.redactions);
            let text = res.response.text().trim_end().to_string();
            (
                Grounded::answered(text, hits, rules.as_ref()),
                Some(res.response.model.clone()),
            )
        }
    };
    if o.json {
        return output::json(&outcome.json(model.as_deref()));
    }
    output::line(&outcome.text)?;
    outcome.print_sources()
}

/// Grounding and rules applied to every turn of a chat.
pub(crate) struct TurnGuard {
    grounding: Option<Grounding>,
    rules: Option<RuleBase>,
}

/// A chat turn after retrieval.
pub(crate) enum Prepared {
    /// Answer this without asking the model.
    Refused(Grounded),
    /// The messages now carry the numbered sources.
    Ready(Vec<Hit>),
}

impl TurnGuard {
    /// `None` when neither `--kb` nor `--rules` was given.
    pub(crate) async fn open(
        ctx: &Ctx,
        kb: Option<&str>,
        args: &KbAskArgs,
    ) -> Result<Option<Self>> {
        let rules = super::rules::load(args.rules.as_deref())?;
        let grounding = match kb {
            Some(name) => Some(Grounding::open(ctx, name, args).await?),
            None => None,
        };
        if grounding.is_none() && rules.is_none() {
            return Ok(None);
        }
        Ok(Some(Self { grounding, rules }))
    }

    /// Retrieves for `question` and puts the sources (and rules) into the first system
    /// message of `messages`, or refuses.
    pub(crate) async fn prepare(
        &self,
        messages: &mut Vec<ChatMessage>,
        question: &str,
    ) -> Result<Prepared> {
        let rules = self.rules.as_ref().map(RuleBase::prompt);
        let Some(g) = &self.grounding else {
            if let Some(r) = &rules {
                append_system(messages, r);
            }
            return Ok(Prepared::Ready(Vec::new()));
        };
        match g.retrieve(question).await? {
            Retrieved::Refused { best } => Ok(Prepared::Refused(Grounded::refused(best))),
            Retrieved::Sources(hits) => {
                let system = llmkit_kb::grounded_system(&hits, rules.as_deref());
                // After the session's own system prompt, so a role still sets the tone.
                append_system(messages, &system);
                Ok(Prepared::Ready(hits))
            }
        }
    }

    /// After a streamed answer: checks its citations and rules and lists the sources used.
    pub(crate) fn finish(&self, hits: Vec<Hit>, text: &str) -> Result<()> {
        if self.grounding.is_none() {
            super::rules::check(self.rules.as_ref(), text);
            return Ok(());
        }
        Grounded::answered(text.to_string(), hits, self.rules.as_ref()).print_sources()
    }
}

/// Puts `extra` first in the system prompt (a new first message if there is none).
fn merge_system(messages: &mut Vec<ChatMessage>, extra: &str) {
    match messages.first_mut().filter(|m| m.role == Role::System) {
        Some(m) => {
            let text = format!("{}\n\n{}", extra.trim_end(), m.text_content());
            m.content = Some(MessageContent::Text(text));
        }
        None => messages.insert(0, ChatMessage::system(extra.to_string())),
    }
}

/// Appends `extra` to the first system message (a new first message if there is none):
/// one system message, because some chat templates accept no other.
pub(crate) fn append_system(messages: &mut Vec<ChatMessage>, extra: &str) {
    match messages.first_mut().filter(|m| m.role == Role::System) {
        Some(m) => {
            let text = format!("{}\n\n{}", m.text_content().trim_end(), extra);
            m.content = Some(MessageContent::Text(text));
        }
        None => messages.insert(0, ChatMessage::system(extra.to_string())),
    }
}
