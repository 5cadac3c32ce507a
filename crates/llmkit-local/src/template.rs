//! Renders chat messages into a prompt with the model's own Jinja chat template (from the GGUF),
//! or ChatML when the model has none.

use minijinja::syntax::SyntaxConfig;
use minijinja::{Environment, Error as JinjaError, ErrorKind, Value};
use serde::{Deserialize, Serialize};

use crate::error::LocalError;

/// The system prompt used when the conversation has none.
///
/// Several chat templates inject their own default system prompt when the conversation lacks
/// one; SmolLM2's ("You are a helpful AI assistant named SmolLM, trained by Hugging Face")
/// measurably worsens the 135M model's answers (it talks about itself instead of answering).
/// A short neutral prompt keeps the template from doing that.
pub const DEFAULT_SYSTEM_PROMPT: &str = "You are a helpful assistant.";

const TEMPLATE_NAME: &str = "chat";

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatTurn {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The message text.
    pub content: String,
}

impl ChatTurn {
    /// A message with the given role.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            content: content.into(),
        }
    }

    /// A `system` message.
    pub fn system(content: impl Into<String>) -> Self {
        Self::new("system", content)
    }

    /// A `user` message.
    pub fn user(content: impl Into<String>) -> Self {
        Self::new("user", content)
    }

    /// An `assistant` message.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new("assistant", content)
    }
}

/// A compiled chat template.
pub(crate) struct ChatTemplate {
    env: Option<Environment<'static>>,
    bos_token: String,
    eos_token: String,
}

impl ChatTemplate {
    /// Compiles `source` (the GGUF's `tokenizer.chat_template`). Returns the template and, when
    /// the source was unusable, a notice saying that ChatML is used instead.
    pub(crate) fn new(
        source: Option<&str>,
        bos_token: Option<&str>,
        eos_token: Option<&str>,
    ) -> (Self, Option<String>) {
        let mut notice = None;
        let env = match source {
            Some(source) if !source.trim().is_empty() => match compile(source) {
                Ok(env) => Some(env),
                Err(err) => {
                    notice = Some(format!(
                        "the model's chat template does not compile ({err}); using ChatML"
                    ));
                    None
                }
            },
            _ => None,
        };
        let template = Self {
            env,
            bos_token: bos_token.unwrap_or_default().to_string(),
            eos_token: eos_token.unwrap_or_default().to_string(),
        };
        (template, notice)
    }

    /// The prompt for `messages`, ending with the opening of the assistant's turn.
    pub(crate) fn render(&self, messages: &[ChatTurn]) -> Result<String, LocalError> {
        let messages = with_default_system(messages);
        match &self.env {
            Some(env) => {
                let template = env
                    .get_template(TEMPLATE_NAME)
                    .map_err(|e| LocalError::Template(e.to_string()))?;
                template
                    .render(minijinja::context! {
                        messages => messages_value(&messages),
                        add_generation_prompt => true,
                        bos_token => self.bos_token.as_str(),
                        eos_token => self.eos_token.as_str(),
                    })
                    .map_err(|e| LocalError::Template(describe(&e)))
            }
            None => Ok(render_chatml(&messages)),
        }
    }
}

/// Puts [`DEFAULT_SYSTEM_PROMPT`] in front of a conversation that has no system message.
fn with_default_system(messages: &[ChatTurn]) -> Vec<ChatTurn> {
    let mut out = Vec::with_capacity(messages.len() + 1);
    if !messages.iter().any(|m| m.role == "system") {
        out.push(ChatTurn::system(DEFAULT_SYSTEM_PROMPT));
    }
    out.extend_from_slice(messages);
    out
}

/// The messages as template values: a list of `{role, content}` maps.
fn messages_value(messages: &[ChatTurn]) -> Value {
    messages
        .iter()
        .map(|m| {
            Value::from_pairs([
                ("role", Value::from(m.role.as_str())),
                ("content", Value::from(m.content.as_str())),
            ])
        })
        .collect()
}

fn compile(source: &str) -> Result<Environment<'static>, JinjaError> {
    let mut env = Environment::new();
    // Hugging Face renders chat templates with these two options on; templates are written
    // for them.
    env.set_syntax(
        SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()?,
    );
    // Python string and dict methods (`.strip()`, `.items()`, ...) that templates use.
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function("raise_exception", raise_exception);
    env.add_template_owned(TEMPLATE_NAME, source.to_string())?;
    Ok(env)
}

fn raise_exception(message: String) -> Result<String, JinjaError> {
    Err(JinjaError::new(ErrorKind::InvalidOperation, message))
}

fn describe(err: &JinjaError) -> String {
    match err.detail() {
        Some(detail) if err.kind() == ErrorKind::InvalidOperation => detail.to_string(),
        _ => err.to_string(),
    }
}

fn render_chatml(messages: &[ChatTurn]) -> String {
    let mut out = String::new();
    for m in messages {
        out.push_str("<|im_start|>");
        out.push_str(&m.role);
        out.push('\n');
        out.push_str(&m.content);
        out.push_str("<|im_end|>\n");
    }
    out.push_str("<|im_start|>assistant\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SmolLM2-135M-Instruct's template, verbatim from its GGUF.
    const SMOLLM2: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    #[test]
    fn chatml_fallback() {
        let (t, notice) = ChatTemplate::new(None, None, None);
        assert!(notice.is_none());
        let out = t
            .render(&[ChatTurn::system("Be brief."), ChatTurn::user("Hi")])
            .unwrap();
        assert_eq!(
            out,
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn smollm2_template_gets_neutral_system_prompt() {
        let (t, _) = ChatTemplate::new(Some(SMOLLM2), Some("<|im_start|>"), Some("<|im_end|>"));
        let out = t.render(&[ChatTurn::user("Hi")]).unwrap();
        assert_eq!(
            out,
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
        assert!(!out.contains("SmolLM"));
    }

    #[test]
    fn smollm2_template_keeps_user_system_prompt() {
        let (t, _) = ChatTemplate::new(Some(SMOLLM2), None, None);
        let out = t
            .render(&[
                ChatTurn::system("Answer in French."),
                ChatTurn::user("Hi"),
                ChatTurn::assistant("Salut"),
                ChatTurn::user("Ça va?"),
            ])
            .unwrap();
        assert!(out.starts_with("<|im_start|>system\nAnswer in French.<|im_end|>\n"));
        assert!(out.ends_with("<|im_start|>user\nÇa va?<|im_end|>\n<|im_start|>assistant\n"));
        assert_eq!(out.matches("<|im_start|>system").count(), 1);
    }

    #[test]
    fn raise_exception_becomes_template_error() {
        let src = "{% if messages[1]['role'] != 'user' %}{{ raise_exception('Conversation roles must alternate user/assistant') }}{% endif %}";
        let (t, _) = ChatTemplate::new(Some(src), None, None);
        let err = t.render(&[ChatTurn::assistant("x")]).unwrap_err();
        assert!(err.to_string().contains("roles must alternate"), "{err}");
    }

    #[test]
    fn python_methods_and_special_tokens_work() {
        let src = "{{ bos_token }}{% for m in messages %}{{ m['role'] | upper }}: {{ m['content'].strip() }}{{ eos_token }}\n{% endfor %}";
        let (t, _) = ChatTemplate::new(Some(src), Some("<s>"), Some("</s>"));
        let out = t
            .render(&[ChatTurn::system("  S  "), ChatTurn::user(" hi ")])
            .unwrap();
        assert_eq!(out, "<s>SYSTEM: S</s>\nUSER: hi</s>\n");
    }

    #[test]
    fn broken_template_falls_back_to_chatml_with_notice() {
        let (t, notice) = ChatTemplate::new(Some("{% for %}"), None, None);
        assert!(notice.unwrap().contains("ChatML"));
        assert!(
            t.render(&[ChatTurn::user("x")])
                .unwrap()
                .contains("<|im_start|>user\nx")
        );
    }
}
