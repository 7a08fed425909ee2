//! How good the token estimate and the language detection are, measured on assembled samples:
//! tokens against OpenAI's o200k tokenizer, languages against labels.
#![allow(clippy::unwrap_used)]

use gateway_core::{detect_language, estimate_tokens};

fn corpus() -> Vec<&'static str> {
    include_str!("data/token_corpus.txt")
        .split("\n---\n")
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .collect()
}

#[test]
fn token_estimates_are_within_15_percent_of_o200k() {
    let tok = bpe_openai::o200k_base();
    let mut worst = (0.0f64, "");
    let mut total_true = 0usize;
    let mut total_est = 0u64;
    let mut errors = Vec::new();
    for m in corpus() {
        let truth = tok.count(m);
        let est = estimate_tokens(m);
        total_true += truth;
        total_est += est;
        let err = (est as f64 - truth as f64) / truth as f64;
        errors.push(err.abs());
        if err.abs() > worst.0.abs() {
            worst = (err, m);
        }
        println!(
            "{truth:>4} {est:>4} {:+6.1}%  {}",
            err * 100.0,
            m.chars().take(50).collect::<String>().replace('\n', " ")
        );
    }
    let mean = errors.iter().sum::<f64>() / errors.len() as f64;
    println!(
        "messages {}, mean |error| {:.1}%, worst {:+.1}%, total {} vs {}",
        errors.len(),
        mean * 100.0,
        worst.0 * 100.0,
        total_est,
        total_true
    );
    // A character-class estimate cannot know which Chinese phrases o200k merges, so the bar is: nine messages in
    // ten within ±15 %, none beyond ±25 %, a small mean error, and totals (what budgets see) within ±3 %.
    let within = errors.iter().filter(|e| **e <= 0.15).count() as f64 / errors.len() as f64;
    assert!(
        within >= 0.9,
        "only {:.0}% of messages within ±15%",
        within * 100.0
    );
    assert!(
        worst.0.abs() <= 0.25,
        "worst message off by {:+.1}%: {}",
        worst.0 * 100.0,
        worst.1
    );
    assert!(mean <= 0.08, "mean error {:.1}%", mean * 100.0);
    let total_err = (total_est as f64 - total_true as f64) / total_true as f64;
    assert!(
        total_err.abs() <= 0.03,
        "total off by {:+.1}%",
        total_err * 100.0
    );
}

#[test]
fn languages_are_detected_on_labelled_samples() {
    let samples: Vec<(&str, &str)> = include_str!("data/lang_samples.tsv")
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .collect();
    let wrong: Vec<String> = samples
        .iter()
        .filter(|(want, text)| detect_language(text) != *want)
        .map(|(want, text)| format!("{want} -> {}: {text}", detect_language(text)))
        .collect();
    let accuracy = 1.0 - wrong.len() as f64 / samples.len() as f64;
    println!(
        "{} samples, accuracy {:.1}%, wrong: {wrong:#?}",
        samples.len(),
        accuracy * 100.0
    );
    assert!(
        accuracy >= 0.95,
        "accuracy {:.1}%: {wrong:#?}",
        accuracy * 100.0
    );
}
