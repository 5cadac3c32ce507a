//! Rule bases (`--rules FILE`, TOML): must-follow statements, forbidden topics and a
//! glossary of preferred terms; their system-prompt text and the check of an answer.
//!
//! ```toml
//! must = ["Answer in at most three sentences.", "Call the product Acme Cloud."]
//! forbidden = ["legal advice", { topic = "competitors", keywords = ["Globex", "Initech"] }]
//!
//! [glossary]            # preferred term = avoided term(s)
//! "sign in" = ["log in", "login"]
//! "workspace" = "project"
//! ```
//!
//! `translate`'s glossary checker does not fit here: it checks that a *target-language* term
//! appears when its source term was in the input; a rule glossary instead flags discouraged
//! terms that *do* appear in the answer, matched as whole words.

use std::collections::BTreeMap;

use regex::Regex;
use serde::Deserialize;

use crate::error::KbError;

/// A parsed rule base.
#[derive(Debug, Clone, Default)]
pub struct RuleBase {
    /// Statements the answer must follow.
    pub must: Vec<String>,
    /// Topics the answer must not discuss, each with the words that reveal it.
    pub forbidden: Vec<ForbiddenTopic>,
    /// Preferred term → terms to avoid.
    pub glossary: Vec<(String, Vec<String>)>,
    matchers: Vec<Matcher>,
}

/// A topic the answer must stay away from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForbiddenTopic {
    pub topic: String,
    /// Words or phrases whose presence in an answer flags the topic (the topic itself
    /// always counts).
    pub keywords: Vec<String>,
}

/// One rule an answer broke.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RuleViolation {
    /// The answer used `found` where the glossary prefers `preferred`.
    Glossary { found: String, preferred: String },
    /// The answer touched a forbidden topic (`found` is the phrase that gave it away).
    ForbiddenTopic { topic: String, found: String },
}

impl std::fmt::Display for RuleViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Glossary { found, preferred } => {
                write!(f, "glossary: the answer says `{found}`; use `{preferred}`")
            }
            Self::ForbiddenTopic { topic, found } => {
                write!(
                    f,
                    "forbidden topic `{topic}` (the answer mentions `{found}`)"
                )
            }
        }
    }
}

#[derive(Debug, Clone)]
enum Target {
    Glossary(usize),
    Forbidden(usize),
}

#[derive(Debug, Clone)]
struct Matcher {
    phrase: String,
    re: Regex,
    target: Target,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    #[serde(default)]
    must: Vec<String>,
    #[serde(default)]
    forbidden: Vec<TopicEntry>,
    #[serde(default)]
    glossary: BTreeMap<String, Terms>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum TopicEntry {
    Plain(String),
    Detailed {
        topic: String,
        #[serde(default)]
        keywords: Vec<String>,
    },
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Terms {
    One(String),
    Many(Vec<String>),
}

impl RuleBase {
    /// Parses a TOML rule file; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, KbError> {
        let bad = |message: String| KbError::BadRules {
            path: origin.into(),
            message,
        };
        let file: RuleFile = toml::from_str(text).map_err(|e| bad(e.message().trim().into()))?;
        let mut rules = Self {
            must: clean(file.must),
            ..Self::default()
        };
        for t in file.forbidden {
            let (topic, keywords) = match t {
                TopicEntry::Plain(t) => (t, Vec::new()),
                TopicEntry::Detailed { topic, keywords } => (topic, keywords),
            };
            let topic = topic.trim().to_string();
            if topic.is_empty() {
                return Err(bad("a forbidden topic is empty".into()));
            }
            rules.forbidden.push(ForbiddenTopic {
                topic,
                keywords: clean(keywords),
            });
        }
        for (preferred, terms) in file.glossary {
            let avoid = clean(match terms {
                Terms::One(t) => vec![t],
                Terms::Many(v) => v,
            });
            if preferred.trim().is_empty() || avoid.is_empty() {
                return Err(bad(format!(
                    "glossary entry `{preferred}` needs a preferred term and at least one term \
                     to avoid"
                )));
            }
            rules.glossary.push((preferred.trim().to_string(), avoid));
        }
        if rules.is_empty() {
            return Err(bad(
                "no rules: give `must`, `forbidden` or `[glossary]`".into()
            ));
        }
        rules.matchers = rules.build_matchers().map_err(bad)?;
        Ok(rules)
    }

    /// True when the file held nothing.
    pub fn is_empty(&self) -> bool {
        self.must.is_empty() && self.forbidden.is_empty() && self.glossary.is_empty()
    }

    /// The rules as system-prompt text.
    pub fn prompt(&self) -> String {
        let mut s = String::from("Rules (follow them in every answer):\n");
        for m in &self.must {
            s.push_str(&format!("- {m}\n"));
        }
        if !self.forbidden.is_empty() {
            let topics: Vec<&str> = self.forbidden.iter().map(|t| t.topic.as_str()).collect();
            s.push_str(&format!(
                "- Never discuss these topics; if asked, say politely that you cannot help \
                 with that: {}.\n",
                topics.join("; ")
            ));
        }
        for (preferred, avoid) in &self.glossary {
            let avoid: Vec<String> = avoid.iter().map(|a| format!("\"{a}\"")).collect();
            s.push_str(&format!(
                "- Say \"{preferred}\", never {}.\n",
                avoid.join(" or ")
            ));
        }
        s
    }

    /// The glossary terms and forbidden topics `answer` uses, in order of appearance.
    pub fn check(&self, answer: &str) -> Vec<RuleViolation> {
        let mut found: Vec<(usize, RuleViolation)> = Vec::new();
        for m in &self.matchers {
            let Some(at) = m.re.find(answer) else {
                continue;
            };
            let v = match m.target {
                Target::Glossary(i) => RuleViolation::Glossary {
                    found: at.as_str().to_string(),
                    preferred: self.glossary[i].0.clone(),
                },
                Target::Forbidden(i) => RuleViolation::ForbiddenTopic {
                    topic: self.forbidden[i].topic.clone(),
                    found: at.as_str().to_string(),
                },
            };
            // One report per glossary entry / topic: the first phrase that gives it away.
            let dup = found.iter().any(|(_, f)| match (f, &v) {
                (
                    RuleViolation::Glossary { preferred: a, .. },
                    RuleViolation::Glossary { preferred: b, .. },
                ) => a == b,
                (
                    RuleViolation::ForbiddenTopic { topic: a, .. },
                    RuleViolation::ForbiddenTopic { topic: b, .. },
                ) => a == b,
                _ => false,
            });
            if !dup {
                found.push((at.start(), v));
            }
        }
        found.sort_by_key(|(at, _)| *at);
        found.into_iter().map(|(_, v)| v).collect()
    }

    fn build_matchers(&self) -> Result<Vec<Matcher>, String> {
        let mut out = Vec::new();
        let mut add = |phrase: &str, target: Target| -> Result<(), String> {
            out.push(Matcher {
                phrase: phrase.to_string(),
                re: phrase_regex(phrase)?,
                target,
            });
            Ok(())
        };
        for (i, (preferred, avoid)) in self.glossary.iter().enumerate() {
            for a in avoid {
                // An avoided term inside the preferred one ("login" when "login page" is
                // preferred) would flag every correct answer, so it is not checked.
                if !preferred.to_lowercase().contains(&a.to_lowercase()) {
                    add(a, Target::Glossary(i))?;
                }
            }
        }
        for (i, t) in self.forbidden.iter().enumerate() {
            add(&t.topic, Target::Forbidden(i))?;
            for k in &t.keywords {
                add(k, Target::Forbidden(i))?;
            }
        }
        // Longer phrases first, so "log in" wins over "log" when both are listed.
        out.sort_by_key(|m| std::cmp::Reverse(m.phrase.len()));
        Ok(out)
    }
}

/// A case-insensitive whole-word regex for a phrase, any whitespace between its words.
fn phrase_regex(phrase: &str) -> Result<Regex, String> {
    let words: Vec<String> = phrase.split_whitespace().map(regex::escape).collect();
    let body = words.join(r"\s+");
    let start = if phrase.starts_with(|c: char| c.is_alphanumeric()) {
        r"\b"
    } else {
        ""
    };
    let end = if phrase.ends_with(|c: char| c.is_alphanumeric()) {
        r"\b"
    } else {
        ""
    };
    Regex::new(&format!("(?i){start}{body}{end}")).map_err(|e| format!("`{phrase}`: {e}"))
}

fn clean(v: Vec<String>) -> Vec<String> {
    v.into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: &str = r#"
must = ["Answer in English.", "  "]
forbidden = ["legal advice", { topic = "competitors", keywords = ["Globex", "Initech Cloud"] }]

[glossary]
"sign in" = ["log in", "login"]
"workspace" = "project"
"#;

    #[test]
    fn parses_and_renders_the_prompt() {
        let r = RuleBase::parse(RULES, "rules.toml").unwrap();
        assert_eq!(r.must, vec!["Answer in English."]);
        assert_eq!(r.forbidden[1].keywords, vec!["Globex", "Initech Cloud"]);
        let p = r.prompt();
        assert!(p.contains("- Answer in English."), "{p}");
        assert!(p.contains("legal advice; competitors"), "{p}");
        assert!(
            p.contains("Say \"sign in\", never \"log in\" or \"login\"."),
            "{p}"
        );
    }

    #[test]
    fn flags_avoided_terms_and_topics_as_whole_words() {
        let r = RuleBase::parse(RULES, "rules.toml").unwrap();
        let v = r.check("Please Log  In to your project. Globex is cheaper. A projector.");
        assert_eq!(
            v,
            vec![
                RuleViolation::Glossary {
                    found: "Log  In".into(),
                    preferred: "sign in".into()
                },
                RuleViolation::Glossary {
                    found: "project".into(),
                    preferred: "workspace".into()
                },
                RuleViolation::ForbiddenTopic {
                    topic: "competitors".into(),
                    found: "Globex".into()
                },
            ]
        );
        assert!(r.check("Sign in to your workspace [1].").is_empty());
        assert!(r.check("Our projects page").is_empty(), "whole words only");
    }

    #[test]
    fn bad_files_are_clear_errors() {
        for (text, needle) in [
            ("must = 3", "invalid type"),
            ("", "no rules"),
            ("colour = [\"x\"]", "unknown field"),
            ("[glossary]\n\"x\" = []", "at least one term"),
            ("forbidden = [\" \"]", "empty"),
        ] {
            let e = RuleBase::parse(text, "r.toml").unwrap_err().to_string();
            assert!(e.contains("r.toml") && e.contains(needle), "{text}: {e}");
        }
    }
}
