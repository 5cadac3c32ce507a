//! Picks the next token from the logits: repetition penalty, temperature, top-k, top-p, and a
//! seeded random generator so that a given seed always gives the same text.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::error::LocalError;

/// How many recent tokens the repetition penalty looks at (llama.cpp's `repeat_last_n`).
pub(crate) const REPEAT_WINDOW: usize = 64;

/// Sampling settings, already validated.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SamplerConfig {
    /// 0 means greedy.
    pub(crate) temperature: f64,
    /// 1.0 keeps every token.
    pub(crate) top_p: f64,
    /// 0 keeps every token.
    pub(crate) top_k: usize,
    /// 1.0 means no penalty.
    pub(crate) repeat_penalty: f32,
    pub(crate) seed: u64,
}

/// A stateful sampler (it owns the random generator).
pub(crate) struct Sampler {
    config: SamplerConfig,
    rng: StdRng,
    /// Scratch space reused between steps.
    candidates: Vec<(u32, f32)>,
}

impl Sampler {
    pub(crate) fn new(config: SamplerConfig) -> Self {
        let rng = StdRng::seed_from_u64(config.seed);
        Self {
            config,
            rng,
            candidates: Vec::new(),
        }
    }

    /// Picks a token. `logits` is modified in place (penalty); `recent` are the last tokens of
    /// the context, used for the repetition penalty.
    pub(crate) fn sample(&mut self, logits: &mut [f32], recent: &[u32]) -> Result<u32, LocalError> {
        for l in logits.iter_mut() {
            if l.is_nan() {
                *l = f32::NEG_INFINITY;
            }
        }
        apply_repeat_penalty(logits, recent, self.config.repeat_penalty);
        if self.config.temperature <= f64::EPSILON {
            return argmax(logits);
        }
        let inv_temp = (1.0 / self.config.temperature) as f32;
        self.candidates.clear();
        self.candidates.extend(
            logits
                .iter()
                .enumerate()
                .filter(|(_, l)| l.is_finite())
                .map(|(i, l)| (i as u32, l * inv_temp)),
        );
        if self.candidates.is_empty() {
            return Err(invalid_logits());
        }
        let by_logit_desc =
            |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        let k = self.config.top_k;
        if k > 0 && k < self.candidates.len() {
            self.candidates.select_nth_unstable_by(k - 1, by_logit_desc);
            self.candidates.truncate(k);
        }
        self.candidates.sort_unstable_by(by_logit_desc);
        // Softmax over the survivors (the first one holds the maximum).
        let max = self.candidates[0].1;
        let mut total = 0.0f32;
        for c in self.candidates.iter_mut() {
            c.1 = (c.1 - max).exp();
            total += c.1;
        }
        // Top-p: keep the smallest prefix whose probability reaches `top_p`.
        let mut keep = self.candidates.len();
        if self.config.top_p < 1.0 {
            let threshold = self.config.top_p as f32 * total;
            let mut cumulative = 0.0f32;
            for (i, c) in self.candidates.iter().enumerate() {
                cumulative += c.1;
                if cumulative >= threshold {
                    keep = i + 1;
                    break;
                }
            }
        }
        let kept = &self.candidates[..keep];
        let kept_total: f32 = kept.iter().map(|c| c.1).sum();
        let mut target = self.rng.random::<f32>() * kept_total;
        for c in kept {
            target -= c.1;
            if target <= 0.0 {
                return Ok(c.0);
            }
        }
        // Rounding can leave a sliver of mass: fall back to the least likely kept token.
        Ok(kept[kept.len() - 1].0)
    }
}

/// llama.cpp's penalty: divide positive logits, multiply negative ones, once per distinct token.
fn apply_repeat_penalty(logits: &mut [f32], recent: &[u32], penalty: f32) {
    if (penalty - 1.0).abs() < f32::EPSILON {
        return;
    }
    let mut seen: Vec<u32> = recent.to_vec();
    seen.sort_unstable();
    seen.dedup();
    for id in seen {
        if let Some(l) = logits.get_mut(id as usize) {
            *l = if *l >= 0.0 {
                *l / penalty
            } else {
                *l * penalty
            };
        }
    }
}

fn argmax(logits: &[f32]) -> Result<u32, LocalError> {
    let mut best: Option<(usize, f32)> = None;
    for (i, &l) in logits.iter().enumerate() {
        if l.is_finite() && best.is_none_or(|(_, b)| l > b) {
            best = Some((i, l));
        }
    }
    best.map(|(i, _)| i as u32).ok_or_else(invalid_logits)
}

fn invalid_logits() -> LocalError {
    LocalError::Inference("the model produced no finite logits".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(temperature: f64) -> SamplerConfig {
        SamplerConfig {
            temperature,
            top_p: 1.0,
            top_k: 0,
            repeat_penalty: 1.0,
            seed: 42,
        }
    }

    fn logits() -> Vec<f32> {
        (0..100).map(|i| (i as f32 * 0.37).sin() * 3.0).collect()
    }

    #[test]
    fn greedy_picks_the_maximum() {
        let mut s = Sampler::new(config(0.0));
        let mut l = vec![0.1, 2.0, f32::NAN, 1.9];
        assert_eq!(s.sample(&mut l, &[]).unwrap(), 1);
    }

    #[test]
    fn same_seed_same_tokens() {
        let run = |seed| {
            let mut s = Sampler::new(SamplerConfig {
                seed,
                ..config(1.0)
            });
            (0..50)
                .map(|_| s.sample(&mut logits(), &[]).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn top_k_one_is_greedy() {
        let mut s = Sampler::new(SamplerConfig {
            top_k: 1,
            ..config(1.5)
        });
        let expected = argmax(&logits()).unwrap();
        for _ in 0..20 {
            assert_eq!(s.sample(&mut logits(), &[]).unwrap(), expected);
        }
    }

    #[test]
    fn tiny_top_p_is_greedy() {
        let mut s = Sampler::new(SamplerConfig {
            top_p: 1e-6,
            ..config(1.0)
        });
        let expected = argmax(&logits()).unwrap();
        for _ in 0..20 {
            assert_eq!(s.sample(&mut logits(), &[]).unwrap(), expected);
        }
    }

    #[test]
    fn top_k_restricts_choices() {
        let mut s = Sampler::new(SamplerConfig {
            top_k: 3,
            ..config(5.0)
        });
        let mut sorted: Vec<(usize, f32)> = logits().into_iter().enumerate().collect();
        sorted.sort_by(|a, b| b.1.total_cmp(&a.1));
        let allowed: Vec<u32> = sorted[..3].iter().map(|(i, _)| *i as u32).collect();
        for _ in 0..100 {
            assert!(allowed.contains(&s.sample(&mut logits(), &[]).unwrap()));
        }
    }

    #[test]
    fn repeat_penalty_moves_greedy_choice() {
        let mut s = Sampler::new(SamplerConfig {
            repeat_penalty: 2.0,
            ..config(0.0)
        });
        let mut l = vec![1.0, 3.0, 2.0];
        assert_eq!(s.sample(&mut l, &[1]).unwrap(), 2);
        let mut l = vec![-1.0, -0.6, -3.0];
        // -0.6 becomes -1.2, so token 0 wins.
        assert_eq!(s.sample(&mut l, &[1, 1]).unwrap(), 0);
    }

    #[test]
    fn all_invalid_logits_is_an_error() {
        let mut s = Sampler::new(config(0.7));
        assert!(s.sample(&mut [f32::NAN, f32::NEG_INFINITY], &[]).is_err());
        let mut g = Sampler::new(config(0.0));
        assert!(g.sample(&mut [f32::NAN], &[]).is_err());
    }
}
