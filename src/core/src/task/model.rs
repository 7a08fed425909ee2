//! The learned half of `task`: naive Bayes over the English words and the Chinese characters and character pairs
//! of the instruction and of the context (system prompt, tools), trained on the `dev` split of the labelled set
//! (tests/data/tasks.jsonl) and kept in `model.tsv` beside this file. A test retrains it from the set and fails
//! when the file is stale (`UPDATE_TASK_MODEL=1` rewrites it).

use std::sync::OnceLock;

use crate::fixed_map::FixedMap;

/// A feature must be seen this many times in training to be kept: rarer ones say little and cost bundle bytes.
#[cfg(test)]
const MIN_COUNT: u32 = 2;
/// Additive smoothing.
const ALPHA: f32 = 0.5;

/// The features of a request: `h` for the instruction, `s` for the context; `w:` an ASCII word, `c:` a Chinese
/// character, `b:` a pair of them. Each once.
pub(super) fn features(head: &str, context: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (text, part) in [(head, 'h'), (context, 's')] {
        let lower = text.to_lowercase();
        let mut word = String::new();
        let mut prev_cjk: Option<char> = None;
        for c in lower.chars().chain(std::iter::once(' ')) {
            if c.is_ascii_alphabetic()
                || (!word.is_empty() && (c.is_ascii_digit() || c == '+' || c == '#'))
            {
                word.push(c);
            } else if !word.is_empty() {
                if !STOPWORDS.contains(&word.as_str()) {
                    out.push(format!("{part}w:{word}"));
                }
                word.clear();
            }
            if is_cjk(c) {
                out.push(format!("{part}c:{c}"));
                if let Some(p) = prev_cjk {
                    out.push(format!("{part}b:{p}{c}"));
                }
                prev_cjk = Some(c);
            } else {
                prev_cjk = None;
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// English words too common to say anything about the task (a system prompt's "You are a … for …").
const STOPWORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "i", "is", "it", "its", "me", "my",
    "of", "on", "or", "our", "the", "to", "we", "you", "your",
];

fn is_cjk(c: char) -> bool {
    ('\u{4e00}'..='\u{9fff}').contains(&c)
}

pub(super) struct Model {
    prior: [f32; 7],
    weights: FixedMap<&'static str, [f32; 7]>,
}

impl Model {
    /// Each task's log probability given the features, up to a constant.
    pub(super) fn log_probs(&self, features: &[String]) -> [f32; 7] {
        let mut out = self.prior;
        for f in features {
            if let Some(w) = self.weights.get(f.as_str()) {
                for (o, w) in out.iter_mut().zip(w) {
                    *o += w;
                }
            }
        }
        out
    }
}

const MODEL: &str = include_str!("model.tsv");

/// The model, read from `model.tsv` once.
pub(super) fn model() -> &'static Model {
    static PARSED: OnceLock<Model> = OnceLock::new();
    PARSED.get_or_init(|| parse(MODEL))
}

/// `model.tsv` holds counts: a `prior` line (requests per task), then per feature the number of training
/// requests of each task that have it. The log probabilities are computed here, once.
fn parse(tsv: &'static str) -> Model {
    let mut prior = [0f32; 7];
    let mut counts = Vec::new();
    for line in tsv.lines() {
        let Some((name, values)) = line.split_once('\t') else {
            continue;
        };
        let mut row = [0f32; 7];
        for (slot, v) in row.iter_mut().zip(values.split(' ')) {
            *slot = v.parse::<u32>().map_or(0.0, |n| n as f32);
        }
        if name == "prior" {
            prior = row;
        } else {
            counts.push((name, row));
        }
    }
    let vocab = counts.len() as f32;
    let mut totals = [0f32; 7];
    for (_, c) in &counts {
        for (t, n) in totals.iter_mut().zip(c) {
            *t += n;
        }
    }
    let requests: f32 = prior.iter().sum();
    let prior = prior.map(|p| (p.max(1.0) / requests.max(1.0)).ln());
    let weights = counts
        .into_iter()
        .map(|(name, c)| {
            let mut w = [0f32; 7];
            for t in 0..7 {
                w[t] = ((c[t] + ALPHA) / (totals[t] + ALPHA * vocab)).ln();
            }
            (name, w)
        })
        .collect();
    Model { prior, weights }
}

/// Counts the features of labelled `(features, task index)` pairs, as `model.tsv` holds them.
#[cfg(test)]
pub(super) fn train(rows: &[(Vec<String>, usize)]) -> String {
    use std::collections::BTreeMap;
    let mut prior = [0u32; 7];
    let mut counts: BTreeMap<&str, [u32; 7]> = BTreeMap::new();
    for (features, task) in rows {
        prior[*task] += 1;
        for f in features {
            counts.entry(f.as_str()).or_default()[*task] += 1;
        }
    }
    counts.retain(|_, c| c.iter().sum::<u32>() >= MIN_COUNT);
    let row = |values: &[u32; 7]| {
        values
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut out = format!("prior\t{}\n", row(&prior));
    for (f, c) in &counts {
        out += &format!("{f}\t{}\n", row(c));
    }
    out
}
