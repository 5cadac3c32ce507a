//! Prompt templates: the built-in minijinja template of every task and `write` template,
//! overridable by `NAME.j2` files in a user directory that the caller passes in.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use minijinja::{Environment, UndefinedBehavior};
use serde_json::Value;

use crate::error::TaskError;

/// Where a template's text comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateSource {
    Builtin,
    File(PathBuf),
}

/// One template as `templates list` shows it.
#[derive(Debug, Clone)]
pub struct TemplateInfo {
    pub name: String,
    pub description: String,
    pub source: TemplateSource,
}

/// The templates: built-ins plus the user's `NAME.j2` files (which win).
#[derive(Debug, Clone, Default)]
pub struct Templates {
    user_dir: Option<PathBuf>,
}

/// Built-in templates: (name, description, source). Task templates render the system
/// prompt (the input text goes in the user message); the others are prompts for `write`.
const BUILTIN: &[(&str, &str, &str)] = &[
    (
        "summarize",
        "summarize: instructions for one text or one part",
        include_str!("templates/summarize.j2"),
    ),
    (
        "summarize-combine",
        "summarize: merging partial summaries",
        include_str!("templates/summarize-combine.j2"),
    ),
    (
        "translate",
        "translate: instructions",
        include_str!("templates/translate.j2"),
    ),
    (
        "sentiment",
        "sentiment: instructions",
        include_str!("templates/sentiment.j2"),
    ),
    (
        "classify",
        "classify: instructions",
        include_str!("templates/classify.j2"),
    ),
    (
        "extract",
        "extract: instructions",
        include_str!("templates/extract.j2"),
    ),
    ("qa", "qa: instructions", include_str!("templates/qa.j2")),
    (
        "repair",
        "structured output: the follow-up that asks to fix invalid JSON",
        include_str!("templates/repair.j2"),
    ),
    (
        "chat-summary",
        "chat: folding older turns into the running summary (context_strategy = summarize)",
        include_str!("templates/chat-summary.j2"),
    ),
    (
        "email",
        "write: an email (vars: topic; optional: to, tone, points)",
        include_str!("templates/email.j2"),
    ),
    (
        "blog-post",
        "write: a blog post (vars: topic; optional: audience, words, tone)",
        include_str!("templates/blog-post.j2"),
    ),
    (
        "social-post",
        "write: a short social media post (vars: topic; optional: platform, tone)",
        include_str!("templates/social-post.j2"),
    ),
    (
        "product-description",
        "write: a product description (vars: product; optional: features, audience)",
        include_str!("templates/product-description.j2"),
    ),
];

impl Templates {
    /// Templates with user overrides read from `user_dir` (`NAME.j2`), when given.
    pub fn new(user_dir: Option<PathBuf>) -> Self {
        Self { user_dir }
    }

    pub fn user_dir(&self) -> Option<&Path> {
        self.user_dir.as_deref()
    }

    /// The built-in text of a template.
    pub fn builtin(name: &str) -> Option<&'static str> {
        BUILTIN
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, _, s)| *s)
    }

    /// Every template, built-in and user, sorted by name, with its effective source.
    pub fn list(&self) -> Vec<TemplateInfo> {
        let mut out: BTreeMap<String, TemplateInfo> = BTreeMap::new();
        for (name, desc, _) in BUILTIN {
            out.insert(
                (*name).to_string(),
                TemplateInfo {
                    name: (*name).to_string(),
                    description: (*desc).to_string(),
                    source: TemplateSource::Builtin,
                },
            );
        }
        for (name, path) in self.user_files() {
            let description = out
                .get(&name)
                .map_or_else(|| "user template".to_string(), |t| t.description.clone());
            out.insert(
                name.clone(),
                TemplateInfo {
                    name,
                    description,
                    source: TemplateSource::File(path),
                },
            );
        }
        out.into_values().collect()
    }

    /// A template's text and where it comes from; an unknown name lists the known ones.
    pub fn source(&self, name: &str) -> Result<(String, TemplateSource), TaskError> {
        if let Some(path) = self.user_path(name).filter(|p| p.is_file()) {
            let text = std::fs::read_to_string(&path).map_err(|e| TaskError::TemplateFile {
                path: path.clone(),
                message: e.to_string(),
            })?;
            return Ok((text, TemplateSource::File(path)));
        }
        match Self::builtin(name) {
            Some(s) => Ok((s.to_string(), TemplateSource::Builtin)),
            None => Err(TaskError::UnknownTemplate {
                name: name.to_string(),
                known: self.list().into_iter().map(|t| t.name).collect(),
            }),
        }
    }

    /// The user file for `name` (whether or not it exists); `None` without a user
    /// directory or for a name that is not a plain file name.
    pub fn user_path(&self, name: &str) -> Option<PathBuf> {
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid {
            return None;
        }
        self.user_dir.as_ref().map(|d| d.join(format!("{name}.j2")))
    }

    /// Copies the built-in `name` into the user directory unless a file is already there;
    /// returns the file's path (for `templates edit`).
    pub fn ensure_user_copy(&self, name: &str) -> Result<PathBuf, TaskError> {
        let (text, _) = self.source(name)?;
        let Some(path) = self.user_path(name) else {
            return Err(TaskError::Template {
                name: name.to_string(),
                message: "no user template directory is configured".to_string(),
            });
        };
        if !path.is_file() {
            let io = |e: std::io::Error| TaskError::TemplateFile {
                path: path.clone(),
                message: e.to_string(),
            };
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(io)?;
            }
            std::fs::write(&path, text).map_err(io)?;
        }
        Ok(path)
    }

    /// Renders a template with `vars` (a JSON object). Variables a template uses but that
    /// are absent from `vars` are an error naming them.
    pub fn render(&self, name: &str, vars: &Value) -> Result<String, TaskError> {
        let (text, _) = self.source(name)?;
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        if let Ok(syntax) = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
        {
            env.set_syntax(syntax);
        }
        let template_err = |e: minijinja::Error| TaskError::Template {
            name: name.to_string(),
            message: e.to_string(),
        };
        let tmpl = env.template_from_str(&text).map_err(template_err)?;
        let ctx = to_minijinja(vars);
        match tmpl.render(&ctx) {
            Ok(s) => Ok(s.trim().to_string()),
            Err(e) if e.kind() == minijinja::ErrorKind::UndefinedError => {
                let given: Vec<&str> = vars
                    .as_object()
                    .map(|m| m.keys().map(String::as_str).collect())
                    .unwrap_or_default();
                let candidates: Vec<String> = tmpl
                    .undeclared_variables(false)
                    .into_iter()
                    .filter(|v| !given.contains(&v.as_str()))
                    .collect();
                // A variable is required when rendering fails with only it left unset
                // (optional ones are guarded by `is defined`).
                let mut missing: Vec<String> = candidates
                    .iter()
                    .filter(|c| {
                        let mut trial = vars.as_object().cloned().unwrap_or_default();
                        for other in candidates.iter().filter(|o| o != c) {
                            trial.insert(other.clone(), Value::String(String::new()));
                        }
                        tmpl.render(to_minijinja(&Value::Object(trial))).is_err()
                    })
                    .cloned()
                    .collect();
                missing.sort();
                if missing.is_empty() {
                    Err(template_err(e))
                } else {
                    Err(TaskError::MissingVariables {
                        name: name.to_string(),
                        missing,
                    })
                }
            }
            Err(e) => Err(template_err(e)),
        }
    }

    fn user_files(&self) -> Vec<(String, PathBuf)> {
        let Some(dir) = &self.user_dir else {
            return Vec::new();
        };
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut out: Vec<(String, PathBuf)> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "j2"))
            .filter_map(|p| Some((p.file_stem()?.to_str()?.to_string(), p.clone())))
            .collect();
        out.sort();
        out
    }
}

/// A JSON value as a minijinja value (minijinja's own serde support is a feature we do not
/// enable, to keep one build of it for the whole workspace).
pub fn to_minijinja(v: &Value) -> minijinja::Value {
    match v {
        Value::Null => minijinja::Value::from(()),
        Value::Bool(b) => minijinja::Value::from(*b),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => minijinja::Value::from(i),
            (None, Some(f)) => minijinja::Value::from(f),
            _ => minijinja::Value::from(n.to_string()),
        },
        Value::String(s) => minijinja::Value::from(s.as_str()),
        Value::Array(items) => {
            minijinja::Value::from(items.iter().map(to_minijinja).collect::<Vec<_>>())
        }
        Value::Object(map) => minijinja::Value::from(
            map.iter()
                .map(|(k, v)| (k.clone(), to_minijinja(v)))
                .collect::<BTreeMap<String, minijinja::Value>>(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_builtin_parses() {
        let env = Environment::new();
        for (name, _, src) in BUILTIN {
            assert!(env.template_from_str(src).is_ok(), "{name}");
        }
    }

    #[test]
    fn unknown_template_lists_names() {
        let t = Templates::new(None);
        let e = t.render("nope", &json!({})).unwrap_err();
        assert!(matches!(e, TaskError::UnknownTemplate { .. }));
        assert!(e.hint().unwrap().contains("email"));
    }

    #[test]
    fn missing_write_variables_are_named() {
        let t = Templates::new(None);
        let e = t.render("email", &json!({})).unwrap_err();
        assert!(e.to_string().contains("`topic`"), "{e}");
        let ok = t.render("email", &json!({"topic": "the picnic"})).unwrap();
        assert!(ok.contains("the picnic"));
    }

    #[test]
    fn user_files_override_and_path_names_are_refused() {
        let dir = std::env::temp_dir().join(format!("llmkit-tmpl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("email.j2"), "Hi {{ topic }}!").unwrap();
        let t = Templates::new(Some(dir.clone()));
        assert_eq!(t.render("email", &json!({"topic": "x"})).unwrap(), "Hi x!");
        let email = t.list().into_iter().find(|i| i.name == "email").unwrap();
        assert_eq!(email.source, TemplateSource::File(dir.join("email.j2")));
        assert!(t.user_path("../etc/passwd").is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
