//! Evaluation, check and compile costs: `cargo bench -p gateway-policy`.
//!
//! - `decide/realistic-20`: the repository's example policy plus team rules (20 rules), for a request that
//!   falls through to a late rule;
//! - `decide/generated-{100,1000}` and `decide_linear/…`: generated policies, indexed versus a linear scan,
//!   for a request decided by the last rules (the linear scan's worst case);
//! - `check+compile/…`: the whole checker (with reachability) and compiler.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use gateway_policy::catalog::Catalog;
use gateway_policy::check::check;
use gateway_policy::compile::compile;
use gateway_policy::eval::Policy;
use gateway_policy::syntax::ast::SourceFile;
use gateway_policy::Attrs;

fn repo_policy() -> String {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../policies");
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "policy"))
        .collect();
    names.sort();
    let mut text: String = names
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    // Seven team rules bring the example to 20 rules (3 deny, 16 rules, 1 default).
    let defaults = text.find("default ->").unwrap();
    let teams: String = (0..7).map(|i| format!("rule team{i}: when key.team == \"team{i}\" and tokens < {} -> openai fallback deepseek\n", 2000 + i * 1000)).collect();
    text.insert_str(defaults, &teams);
    text
}

/// `n` rules over teams, models, languages and sizes, as a large organisation's policy might grow.
fn generated(n: usize) -> String {
    let langs = ["zh", "en", "ja", "ko", "fr"];
    let targets = [
        "openai",
        "deepseek",
        "gemini:gemini-2.5-flash",
        "siliconflow:\"Qwen/Qwen3-8B\"",
        "openrouter",
    ];
    let mut text =
        String::from("deny blocked: when key.tier == \"blocked\" -> deny 403 \"blocked\"\n");
    for i in 0..n {
        let cond = match i % 4 {
            0 => format!(
                "key.team == \"team{}\" and tokens < {}",
                i / 4,
                1000 + (i % 7) * 500
            ),
            1 => format!("model == \"model{}\" and lang == {}", i / 4, langs[i % 5]),
            2 => format!(
                "key.team == \"team{}\" and lang in {{{}, {}}}",
                i / 4,
                langs[i % 5],
                langs[(i + 1) % 5]
            ),
            _ => format!("meta[\"app\"] == \"app{}\" and stream", i / 4),
        };
        text.push_str(&format!(
            "rule r{i}: when {cond} -> {} fallback {}\n",
            targets[i % 5],
            targets[(i + 2) % 5]
        ));
    }
    text.push_str("default -> requested fallback openrouter\n");
    text
}

fn load(text: &str) -> Policy {
    let checked = check(
        vec![SourceFile {
            name: "bench.policy".into(),
            text: text.into(),
        }],
        &Catalog::builtin(),
    );
    assert_eq!(checked.errors(), 0, "{:#?}", checked.diagnostics);
    Policy::new(compile(&checked, &Catalog::builtin()).unwrap()).unwrap()
}

fn attrs(json: &str) -> Attrs {
    serde_json::from_str(json).unwrap()
}

fn bench(c: &mut Criterion) {
    let realistic = load(&repo_policy());
    let late = attrs(
        r#"{"tokens":4000,"lang":"en","model":"gpt-4o-mini","provider":"openai","endpoint":"chat","key":{"team":"team5"}}"#,
    );
    assert_eq!(realistic.decide(&late).rule, "team5");
    c.bench_function("decide/realistic-20", |b| {
        b.iter(|| realistic.decide(black_box(&late)))
    });
    c.bench_function("decide_linear/realistic-20", |b| {
        b.iter(|| realistic.decide_linear(black_box(&late)))
    });

    let mut group = c.benchmark_group("decide");
    for n in [100, 1000] {
        let p = load(&generated(n));
        // Decided by the last team rule: a linear scan tests (nearly) every rule first.
        let last = (n - 1) - (n - 1) % 4;
        let a = attrs(&format!(
            r#"{{"tokens":10,"lang":"en","endpoint":"chat","key":{{"team":"team{}"}}}}"#,
            last / 4
        ));
        assert_eq!(p.decide(&a).rule, format!("r{last}"));
        assert_eq!(p.decide(&a), p.decide_linear(&a));
        group.bench_with_input(BenchmarkId::new("generated", n), &a, |b, a| {
            b.iter(|| p.decide(black_box(a)))
        });
        group.bench_with_input(BenchmarkId::new("generated-linear", n), &a, |b, a| {
            b.iter(|| p.decide_linear(black_box(a)))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("check+compile");
    group.sample_size(10);
    for n in [20, 100, 1000] {
        let text = if n == 20 { repo_policy() } else { generated(n) };
        group.bench_with_input(BenchmarkId::from_parameter(n), &text, |b, text| {
            b.iter(|| {
                let checked = check(
                    vec![SourceFile {
                        name: "bench.policy".into(),
                        text: text.clone(),
                    }],
                    &Catalog::builtin(),
                );
                compile(&checked, &Catalog::builtin())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
