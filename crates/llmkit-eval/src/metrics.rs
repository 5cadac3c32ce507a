//! Evaluation metrics, each to its published definition: accuracy, macro-F1 and the
//! confusion matrix; exact and regex match; JSON-schema validity; chrF (Popović 2015, as
//! sacrebleu's default); corpus BLEU (Papineni 2002, sacrebleu's defaults: 13a tokenisation,
//! `exp` smoothing); ROUGE-L (Lin 2004); latency percentiles and cost per item.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::EvalError;

/// A metric a spec can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Share of items whose label equals the expected one (trimmed, case-insensitive).
    Accuracy,
    /// The unweighted mean of per-label F1 over the labels seen in expected or predicted.
    MacroF1,
    /// Share of outputs equal to the expected output after trimming (JSON compared as values).
    ExactMatch,
    /// Share of outputs matching the spec's `regex`.
    RegexMatch,
    /// Share of outputs that parse as JSON and validate against the spec's schema.
    JsonValid,
    /// Corpus chrF (0 to 100): character 1..6-grams, β = 2, whitespace removed.
    Chrf,
    /// Corpus BLEU (0 to 100): 4-grams, brevity penalty, 13a tokenisation, exp smoothing.
    Bleu,
    /// Mean ROUGE-L F1 (0 to 1) over items, on lowercased alphanumeric tokens.
    RougeL,
    /// Median latency in milliseconds.
    LatencyP50,
    /// 95th-percentile latency in milliseconds.
    LatencyP95,
    /// Mean cost per item in USD (catalogue prices).
    CostPerItem,
    /// Mean LLM-as-judge score (1 to the judge's scale) against the spec's rubric; failed
    /// items and failed judgements count as 0.
    Judge,
}

impl Metric {
    pub const ALL: [Metric; 12] = [
        Self::Accuracy,
        Self::MacroF1,
        Self::ExactMatch,
        Self::RegexMatch,
        Self::JsonValid,
        Self::Chrf,
        Self::Bleu,
        Self::RougeL,
        Self::LatencyP50,
        Self::LatencyP95,
        Self::CostPerItem,
        Self::Judge,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Accuracy => "accuracy",
            Self::MacroF1 => "macro_f1",
            Self::ExactMatch => "exact_match",
            Self::RegexMatch => "regex_match",
            Self::JsonValid => "json_valid",
            Self::Chrf => "chrf",
            Self::Bleu => "bleu",
            Self::RougeL => "rouge_l",
            Self::LatencyP50 => "latency_p50",
            Self::LatencyP95 => "latency_p95",
            Self::CostPerItem => "cost_per_item",
            Self::Judge => "judge",
        }
    }

    pub fn parse(name: &str) -> Result<Self, EvalError> {
        let n = name.trim().to_ascii_lowercase().replace('-', "_");
        Self::ALL
            .into_iter()
            .find(|m| m.name() == n)
            .ok_or_else(|| EvalError::UnknownMetric(name.to_string()))
    }

    /// Whether a larger value is better (false for latency and cost).
    pub fn higher_is_better(self) -> bool {
        !matches!(
            self,
            Self::LatencyP50 | Self::LatencyP95 | Self::CostPerItem
        )
    }

    /// Whether the metric has a per-item value (used for drill-down and regressions).
    pub fn per_item(self) -> bool {
        !matches!(
            self,
            Self::MacroF1 | Self::Bleu | Self::LatencyP50 | Self::LatencyP95 | Self::CostPerItem
        )
    }
}

/// Trimmed, lowercased label for label comparisons.
pub fn norm_label(s: &str) -> String {
    s.trim().to_lowercase()
}

/// Share of pairs whose normalised labels agree; 0 for no pairs.
pub fn accuracy(pairs: &[(String, String)]) -> f64 {
    if pairs.is_empty() {
        return 0.0;
    }
    let hits = pairs
        .iter()
        .filter(|(e, p)| norm_label(e) == norm_label(p))
        .count();
    hits as f64 / pairs.len() as f64
}

/// A confusion matrix over normalised labels: `counts[expected][predicted]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Confusion {
    pub labels: Vec<String>,
    pub counts: BTreeMap<String, BTreeMap<String, u64>>,
}

impl Confusion {
    /// Labels are the union of expected and predicted labels, sorted.
    pub fn new(pairs: &[(String, String)]) -> Self {
        let mut labels = BTreeSet::new();
        let mut counts: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        for (e, p) in pairs {
            let (e, p) = (norm_label(e), norm_label(p));
            labels.insert(e.clone());
            labels.insert(p.clone());
            *counts.entry(e).or_default().entry(p).or_default() += 1;
        }
        Self {
            labels: labels.into_iter().collect(),
            counts,
        }
    }

    pub fn get(&self, expected: &str, predicted: &str) -> u64 {
        self.counts
            .get(expected)
            .and_then(|r| r.get(predicted))
            .copied()
            .unwrap_or(0)
    }

    /// Per-label F1 = 2·TP / (2·TP + FP + FN), 0 where the denominator is 0.
    pub fn f1(&self, label: &str) -> f64 {
        let tp = self.get(label, label);
        let fn_: u64 = self.labels.iter().map(|p| self.get(label, p)).sum::<u64>() - tp;
        let fp: u64 = self.labels.iter().map(|e| self.get(e, label)).sum::<u64>() - tp;
        let denom = 2 * tp + fp + fn_;
        if denom == 0 {
            0.0
        } else {
            (2 * tp) as f64 / denom as f64
        }
    }

    /// The unweighted mean of per-label F1 (scikit-learn's `average="macro"`).
    pub fn macro_f1(&self) -> f64 {
        if self.labels.is_empty() {
            return 0.0;
        }
        self.labels.iter().map(|l| self.f1(l)).sum::<f64>() / self.labels.len() as f64
    }
}

/// Macro-F1 over (expected, predicted) label pairs.
pub fn macro_f1(pairs: &[(String, String)]) -> f64 {
    Confusion::new(pairs).macro_f1()
}

/// Exact match after trimming; when the expected value is JSON (not a string) the output is
/// parsed and compared as a value, so key order and spacing do not matter.
pub fn exact_match(expected: &Value, output: &str) -> bool {
    match expected {
        Value::String(s) => s.trim() == output.trim(),
        other => llmkit_tasks::extract_json(output).is_some_and(|v| &v == other),
    }
}

/// Whether the output matches `re` anywhere (anchor the pattern to require a full match).
pub fn regex_match(re: &Regex, output: &str) -> bool {
    re.is_match(output)
}

/// Whether the output is JSON (code fences allowed) valid against `schema`.
pub fn json_valid(schema: &Value, output: &str) -> bool {
    llmkit_tasks::extract_json(output).is_some_and(|v| llmkit_tasks::validate(schema, &v).is_ok())
}

/// The chrF statistics of one pair: (hyp n-grams, ref n-grams, matches) per order 1..=6.
pub fn chrf_stats(hypothesis: &str, reference: &str) -> [u64; 18] {
    let strip = |s: &str| -> Vec<char> { s.chars().filter(|c| !c.is_whitespace()).collect() };
    let (h, r) = (strip(hypothesis), strip(reference));
    let mut out = [0u64; 18];
    for n in 1..=6 {
        let hc = char_ngrams(&h, n);
        let rc = char_ngrams(&r, n);
        let matches: u64 = hc
            .iter()
            .map(|(g, c)| (*c).min(rc.get(g).copied().unwrap_or(0)))
            .sum();
        out[3 * (n - 1)] = hc.values().sum();
        out[3 * (n - 1) + 1] = rc.values().sum();
        out[3 * (n - 1) + 2] = matches;
    }
    out
}

fn char_ngrams(chars: &[char], n: usize) -> HashMap<&[char], u64> {
    let mut m = HashMap::new();
    if chars.len() >= n {
        for w in chars.windows(n) {
            *m.entry(w).or_default() += 1;
        }
    }
    m
}

/// chrF from summed statistics: precision and recall averaged over the orders where both
/// sides have n-grams, then F-β with β = 2, scaled to 0..100 (sacrebleu's formula).
pub fn chrf_from_stats(stats: &[u64; 18]) -> f64 {
    let (mut p, mut r, mut orders) = (0.0, 0.0, 0u32);
    for i in 0..6 {
        let (hyp, refn, hit) = (stats[3 * i], stats[3 * i + 1], stats[3 * i + 2]);
        if hyp > 0 && refn > 0 {
            p += hit as f64 / hyp as f64;
            r += hit as f64 / refn as f64;
            orders += 1;
        }
    }
    if orders == 0 {
        return 0.0;
    }
    p /= f64::from(orders);
    r /= f64::from(orders);
    if p + r == 0.0 {
        return 0.0;
    }
    let b2 = 4.0;
    100.0 * (1.0 + b2) * p * r / (b2 * p + r)
}

/// Corpus chrF over (hypothesis, reference) pairs: statistics are summed, then scored.
pub fn chrf(pairs: &[(&str, &str)]) -> f64 {
    let mut total = [0u64; 18];
    for (h, r) in pairs {
        for (t, s) in total.iter_mut().zip(chrf_stats(h, r)) {
            *t += s;
        }
    }
    chrf_from_stats(&total)
}

/// The mteval-v13a rules as sacrebleu applies them, in order.
const RULES_13A: [(&str, &str); 4] = [
    (r"([\{-\~\[-\` -\&\(-\+\:-\@\/])", " ${1} "),
    (r"([^0-9])([\.,])", "${1} ${2} "),
    (r"([\.,])([^0-9])", " ${1} ${2}"),
    (r"([0-9])(-)", "${1} ${2} "),
];

static TOK13A: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    RULES_13A
        .iter()
        .filter_map(|(p, r)| Regex::new(p).ok().map(|re| (re, *r)))
        .collect()
});

/// sacrebleu's default `13a` tokenisation (mteval-v13a).
pub fn tokenize_13a(line: &str) -> Vec<String> {
    let mut s = line
        .replace("<skipped>", "")
        .replace("-\n", "")
        .replace('\n', " ");
    if s.contains('&') {
        s = s
            .replace("&quot;", "\"")
            .replace("&amp;", "&")
            .replace("&lt;", "<")
            .replace("&gt;", ">");
    }
    let mut s = format!(" {s} ");
    for (re, rep) in TOK13A.iter() {
        s = re.replace_all(&s, *rep).into_owned();
    }
    s.split_whitespace().map(str::to_string).collect()
}

/// Corpus BLEU over hypotheses each with one or more references, as sacrebleu computes it
/// by default: 13a tokens, clipped n-gram counts up to 4 summed over the corpus, the
/// closest reference length (ties to the shorter), `exp` smoothing of zero counts, 0..100.
pub fn bleu(hyps: &[&str], refs: &[Vec<&str>]) -> f64 {
    let (mut correct, mut total) = ([0u64; 4], [0u64; 4]);
    let (mut sys_len, mut ref_len) = (0usize, 0usize);
    for (h, rs) in hyps.iter().zip(refs) {
        let ht = tokenize_13a(h);
        let rts: Vec<Vec<String>> = rs.iter().map(|r| tokenize_13a(r)).collect();
        sys_len += ht.len();
        let mut closest: Option<(usize, usize)> = None;
        for r in &rts {
            let diff = r.len().abs_diff(ht.len());
            if closest.is_none_or(|(d, l)| diff < d || (diff == d && r.len() < l)) {
                closest = Some((diff, r.len()));
            }
        }
        ref_len += closest.map_or(0, |(_, l)| l);
        for n in 1..=4 {
            let hc = word_ngrams(&ht, n);
            let mut max_ref: HashMap<&[String], u64> = HashMap::new();
            for r in &rts {
                for (g, c) in word_ngrams(r, n) {
                    let e = max_ref.entry(g).or_default();
                    *e = (*e).max(c);
                }
            }
            for (g, c) in &hc {
                correct[n - 1] += (*c).min(max_ref.get(g).copied().unwrap_or(0));
                total[n - 1] += c;
            }
        }
    }
    if sys_len == 0 {
        return 0.0;
    }
    let mut log_sum = 0.0;
    let mut smooth = 1.0;
    for n in 0..4 {
        if total[n] == 0 {
            return 0.0;
        }
        let p = if correct[n] == 0 {
            smooth *= 2.0;
            100.0 / (smooth * total[n] as f64)
        } else {
            100.0 * correct[n] as f64 / total[n] as f64
        };
        log_sum += p.ln();
    }
    let bp = if sys_len >= ref_len {
        1.0
    } else {
        (1.0 - ref_len as f64 / sys_len as f64).exp()
    };
    bp * (log_sum / 4.0).exp()
}

fn word_ngrams(tokens: &[String], n: usize) -> HashMap<&[String], u64> {
    let mut m = HashMap::new();
    if tokens.len() >= n {
        for w in tokens.windows(n) {
            *m.entry(w).or_default() += 1;
        }
    }
    m
}

/// Tokens for ROUGE: lowercased, runs of anything but `a-z0-9` are separators (as Google's
/// `rouge_score` without stemming).
fn rouge_tokens(s: &str) -> Vec<String> {
    s.to_lowercase()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

/// ROUGE-L F1 of one pair: LCS-based recall and precision (Lin 2004), β = 1.
pub fn rouge_l(hypothesis: &str, reference: &str) -> f64 {
    let (h, r) = (rouge_tokens(hypothesis), rouge_tokens(reference));
    if h.is_empty() || r.is_empty() {
        return 0.0;
    }
    let lcs = lcs_len(&h, &r) as f64;
    if lcs == 0.0 {
        return 0.0;
    }
    let (p, rec) = (lcs / h.len() as f64, lcs / r.len() as f64);
    2.0 * p * rec / (p + rec)
}

fn lcs_len(a: &[String], b: &[String]) -> usize {
    let mut prev = vec![0usize; b.len() + 1];
    let mut cur = vec![0usize; b.len() + 1];
    for x in a {
        for (j, y) in b.iter().enumerate() {
            cur[j + 1] = if x == y {
                prev[j] + 1
            } else {
                cur[j].max(prev[j + 1])
            };
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The `q`-th percentile (0..=100) with linear interpolation between closest ranks (numpy's
/// default); None for no values.
pub fn percentile(values: &[f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let pos = (q / 100.0).clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    Some(v[lo] + (v[hi] - v[lo]) * (pos - lo as f64))
}

/// Mean cost per item; None when any item's price is unknown or there are no items.
pub fn cost_per_item(costs: &[Option<f64>]) -> Option<f64> {
    if costs.is_empty() {
        return None;
    }
    let total: Option<f64> = costs.iter().copied().sum();
    total.map(|t| t / costs.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(e: &[&str], p: &[&str]) -> Vec<(String, String)> {
        e.iter()
            .zip(p)
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    fn close(a: f64, b: f64, tol: f64) {
        assert!((a - b).abs() < tol, "{a} != {b}");
    }

    #[test]
    fn accuracy_and_macro_f1_match_scikit_learn_example() {
        // scikit-learn's f1_score docs: y_true=[0,1,2,0,1,2], y_pred=[0,2,1,0,0,1]
        // → macro 0.2666…; accuracy is 2/6.
        let p = pairs(
            &["0", "1", "2", "0", "1", "2"],
            &["0", "2", "1", "0", "0", "1"],
        );
        close(accuracy(&p), 2.0 / 6.0, 1e-12);
        close(macro_f1(&p), 0.8 / 3.0, 1e-12);
        let c = Confusion::new(&p);
        assert_eq!(c.labels, ["0", "1", "2"]);
        assert_eq!(c.get("1", "0"), 1);
        assert_eq!(c.get("2", "1"), 2);
        close(c.f1("0"), 0.8, 1e-12);
    }

    #[test]
    fn labels_compare_trimmed_and_case_insensitively() {
        let p = pairs(&["Positive", "negative"], &[" positive\n", "NEGATIVE"]);
        close(accuracy(&p), 1.0, 1e-12);
        close(macro_f1(&p), 1.0, 1e-12);
        close(accuracy(&[]), 0.0, 1e-12);
    }

    #[test]
    fn exact_regex_and_json_validity() {
        assert!(exact_match(&Value::from("Paris"), " Paris\n"));
        assert!(!exact_match(&Value::from("Paris"), "paris"));
        let expected = serde_json::json!({"a": 1, "b": [2]});
        assert!(exact_match(
            &expected,
            "```json\n{\"b\": [2], \"a\": 1}\n```"
        ));
        assert!(!exact_match(&expected, "{\"a\": 2, \"b\": [2]}"));
        let re = Regex::new(r"^\d{4}-\d{2}-\d{2}$").unwrap_or_else(|e| panic!("{e}"));
        assert!(regex_match(&re, "2024-01-31"));
        assert!(!regex_match(&re, "31/01/2024"));
        let schema = serde_json::json!({
            "type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]
        });
        assert!(json_valid(&schema, "{\"n\": 3}"));
        assert!(!json_valid(&schema, "{\"n\": \"3\"}"));
        assert!(!json_valid(&schema, "not json"));
    }

    #[test]
    fn chrf_matches_sacrebleu_reference_values() {
        // Values from the Hugging Face chrF metric card, computed with sacrebleu's chrF.
        let one = chrf(&[(
            "The relationship between Obama and Netanyahu is not exactly friendly.",
            "The ties between Obama and Netanyahu are not particularly friendly.",
        )]);
        close(one, 61.576379378113785, 1e-9);
        let corpus = chrf(&[
            (
                "The relationship between cats and dogs is not exactly friendly.",
                "The relationship between dogs and cats is not exactly friendly.",
            ),
            (
                "a good bookshop is just a genteel black hole that knows how to read.",
                "A good bookshop is just a genteel Black Hole that knows how to read.",
            ),
        ]);
        close(corpus, 84.64214891738334, 1e-9);
        close(chrf(&[("same text", "same text")]), 100.0, 1e-9);
        close(chrf(&[("", "abc")]), 0.0, 1e-12);
    }

    #[test]
    fn tokenize_13a_splits_punctuation_but_not_numbers() {
        assert_eq!(
            tokenize_13a("Hello, world! It costs 3.50 in 2-3 days."),
            [
                "Hello", ",", "world", "!", "It", "costs", "3.50", "in", "2", "-", "3", "days", "."
            ]
        );
        // The apostrophe is not among 13a's split characters.
        assert_eq!(tokenize_13a("wasn't"), ["wasn't"]);
        assert_eq!(TOK13A.len(), 4);
    }

    #[test]
    fn bleu_matches_sacrebleu_readme_example() {
        // sacrebleu's README: two reference streams → BLEU = 48.53.
        let hyps = [
            "The dog bit the man.",
            "It wasn't surprising.",
            "The man had just bitten him.",
        ];
        let refs = vec![
            vec!["The dog bit the man.", "The dog had bit the man."],
            vec!["It was not unexpected.", "No one was surprised."],
            vec!["The man bit him first.", "The man had bitten the dog."],
        ];
        let b = bleu(&hyps, &refs);
        close(b, 48.53, 0.005);
        close(bleu(&["a b c d"], &[vec!["a b c d"]]), 100.0, 1e-9);
        close(bleu(&[""], &[vec!["a b"]]), 0.0, 1e-12);
    }

    #[test]
    fn bleu_brevity_penalty_by_hand() {
        // Hypothesis = first 4 of 8 reference tokens: every precision is 1 and
        // BP = exp(1 − 8/4) = e^−1.
        let b = bleu(&["a b c d"], &[vec!["a b c d e f g h"]]);
        close(b, 100.0 * (-1.0f64).exp(), 1e-9);
    }

    #[test]
    fn rouge_l_by_hand() {
        // LCS("the cat on the mat", "the cat sat on the mat") = 5: P = 1, R = 5/6, F1 = 10/11.
        close(
            rouge_l("The cat on the mat.", "the cat sat on the mat"),
            10.0 / 11.0,
            1e-12,
        );
        close(rouge_l("", "x"), 0.0, 1e-12);
        close(rouge_l("a b", "c d"), 0.0, 1e-12);
    }

    #[test]
    fn percentiles_interpolate_like_numpy() {
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        close(percentile(&v, 50.0).unwrap_or(f64::NAN), 5.5, 1e-12);
        close(percentile(&v, 95.0).unwrap_or(f64::NAN), 9.55, 1e-12);
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(cost_per_item(&[Some(1.0), Some(3.0)]), Some(2.0));
        assert_eq!(cost_per_item(&[Some(1.0), None]), None);
    }

    #[test]
    fn metric_names_round_trip() {
        for m in Metric::ALL {
            assert_eq!(Metric::parse(m.name()).ok(), Some(m));
        }
        assert!(Metric::parse("rouge-l").is_ok());
        assert!(Metric::parse("nope").is_err());
    }
}
