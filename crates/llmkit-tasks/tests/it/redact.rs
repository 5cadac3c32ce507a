//! Redaction quality and streaming: precision/recall per kind on a labelled synthetic corpus
//! (with hard negatives), and the streaming restorer against whole-text restore on random
//! splits.

#[path = "redact_corpus.rs"]
mod corpus;

use std::collections::{BTreeMap, HashSet};

use llmkit_tasks::redact::StreamRestorer;
use llmkit_tasks::{Kind, PlaceholderMap, Redactor};

use corpus::{SplitMix64, generate};

#[derive(Default)]
struct Score {
    tp: usize,
    fp: usize,
    fn_: usize,
}

impl Score {
    fn precision(&self) -> f64 {
        self.tp as f64 / (self.tp + self.fp).max(1) as f64
    }
    fn recall(&self) -> f64 {
        self.tp as f64 / (self.tp + self.fn_).max(1) as f64
    }
}

#[test]
fn precision_and_recall_per_kind() {
    let c = generate(7, 3_000_000, 0.35, 0.35);
    let found = Redactor::all().detect(&c.text);
    let truth: HashSet<(Kind, usize, usize)> = c
        .labels
        .iter()
        .filter_map(|l| l.kind.map(|k| (k, l.start, l.end)))
        .collect();
    let got: HashSet<(Kind, usize, usize)> =
        found.iter().map(|d| (d.kind, d.start, d.end)).collect();
    let mut scores: BTreeMap<Kind, Score> = BTreeMap::new();
    for t in &truth {
        let s = scores.entry(t.0).or_default();
        if got.contains(t) {
            s.tp += 1
        } else {
            s.fn_ += 1
        }
    }
    let mut misses = Vec::new();
    for g in &got {
        if !truth.contains(g) {
            scores.entry(g.0).or_default().fp += 1;
            if misses.len() < 20 {
                misses.push(format!("FP {:?} {:?}", g.0, &c.text[g.1..g.2]));
            }
        }
    }
    for t in &truth {
        if !got.contains(t) && misses.len() < 40 {
            misses.push(format!("FN {:?} {:?}", t.0, &c.text[t.1..t.2]));
        }
    }
    let negatives = c.labels.iter().filter(|l| l.kind.is_none()).count();
    println!(
        "corpus: {} bytes, {} positives, {} hard negatives",
        c.text.len(),
        truth.len(),
        negatives
    );
    println!(
        "{:<16} {:>6} {:>5} {:>5} {:>9} {:>7}",
        "kind", "tp", "fp", "fn", "precision", "recall"
    );
    for (k, s) in &scores {
        println!(
            "{:<16} {:>6} {:>5} {:>5} {:>9.4} {:>7.4}",
            k.name(),
            s.tp,
            s.fp,
            s.fn_,
            s.precision(),
            s.recall()
        );
    }
    for m in &misses {
        println!("{m}");
    }
    for k in [Kind::Card, Kind::Iban, Kind::CnId, Kind::Ssn] {
        let s = &scores[&k];
        assert!(s.tp > 500, "{k}: too few samples");
        assert!(
            s.precision() >= 0.99 && s.recall() >= 0.99,
            "{k}: p={} r={}",
            s.precision(),
            s.recall()
        );
    }
    for (k, s) in &scores {
        assert!(
            s.precision() >= 0.95 && s.recall() >= 0.95,
            "{k}: p={} r={}",
            s.precision(),
            s.recall()
        );
    }
}

#[test]
fn redact_then_restore_is_identity_on_the_corpus() {
    let c = generate(11, 200_000, 0.3, 0.3);
    let r = Redactor::all();
    for doc in c.text.split_inclusive('\n').collect::<Vec<_>>().chunks(20) {
        let doc = doc.concat();
        let mut map = PlaceholderMap::new();
        let red = r.redact(&doc, &mut map);
        assert_eq!(map.restore(&red), doc);
    }
}

/// Splits `text` at `n` random char boundaries.
fn random_split<'a>(rng: &mut SplitMix64, text: &'a str, n: usize) -> Vec<&'a str> {
    let mut cuts: Vec<usize> = (0..n)
        .map(|_| rng.below(text.len() as u64 + 1) as usize)
        .filter(|i| text.is_char_boundary(*i))
        .collect();
    cuts.push(0);
    cuts.push(text.len());
    cuts.sort_unstable();
    cuts.dedup();
    cuts.windows(2).map(|w| &text[w[0]..w[1]]).collect()
}

#[test]
fn streamed_restore_equals_whole_restore_for_random_splits() {
    let c = generate(3, 60_000, 0.5, 0.2);
    let r = Redactor::all();
    let mut rng = SplitMix64::new(99);
    for doc in c.text.split_inclusive('\n').collect::<Vec<_>>().chunks(5) {
        let doc = doc.concat();
        let mut map = PlaceholderMap::new();
        // Add model-like noise: tags, lone `<`, unknown placeholders.
        let red = format!("{} <b>x</b> <EMAIL_999> <PHO", r.redact(&doc, &mut map));
        let whole = map.restore(&red);
        for _ in 0..20 {
            let n = 1 + rng.below(40) as usize;
            let pieces = random_split(&mut rng, &red, n);
            let mut s = StreamRestorer::new(map.clone());
            let mut out: String = pieces.iter().map(|p| s.push(p)).collect();
            out.push_str(&s.finish());
            assert_eq!(out, whole);
        }
    }
}

#[test]
fn streamed_restore_one_char_at_a_time() {
    let r = Redactor::all();
    let mut map = PlaceholderMap::new();
    let red = r.redact("数据 a@b.io <CN <IP_1 x 10.0.0.1 ünï 13812345678", &mut map);
    let mut s = StreamRestorer::new(map.clone());
    let mut out: String = red
        .chars()
        .map(|ch| s.push(ch.encode_utf8(&mut [0; 4])))
        .collect();
    out.push_str(&s.finish());
    assert_eq!(out, map.restore(&red));
    assert_eq!(out, "数据 a@b.io <CN <IP_1 x 10.0.0.1 ünï 13812345678");
}
