//! Properties over generated policies and inputs:
//! - the compiled, indexed evaluator agrees with the linear one and with a naive interpreter of the syntax tree;
//! - `parse(fmt(p)) == p`, and formatting is idempotent;
//! - compiling is deterministic;
//! - no input, however broken, makes the checker or the loader panic.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use gateway_policy::catalog::Catalog;
use gateway_policy::check::check;
use gateway_policy::compile::{compile, to_json};
use gateway_policy::eval::{Outcome, Policy};
use gateway_policy::scheme::{self, AttrValue, Attrs, KeyAttrs, TimeAttrs};
use gateway_policy::syntax::ast::{
    self, CmpOp, Expr, LitValue, SetRef, SourceFile, Statement, Test,
};
use gateway_policy::syntax::{fmt, parse};
use proptest::prelude::*;

// ---- generated policies (always well-typed, so they compile)

fn int_pred() -> impl Strategy<Value = String> {
    let field = prop_oneof![
        Just("tokens"),
        Just("max_tokens"),
        Just("sample"),
        Just("time.hour")
    ];
    let op = prop_oneof![
        Just("<"),
        Just("<="),
        Just(">"),
        Just(">="),
        Just("=="),
        Just("!=")
    ];
    (field, op, 0i64..120).prop_map(|(f, o, v)| format!("{f} {o} {}", v * 10))
}

fn sym_pred() -> impl Strategy<Value = String> {
    prop_oneof![
        prop_oneof![Just("zh"), Just("en"), Just("ja")].prop_map(|l| format!("lang == {l}")),
        prop_oneof![Just("zh"), Just("en")].prop_map(|l| format!("lang != {l}")),
        Just("lang in {zh, ja, ko}".to_owned()),
        Just("lang not in {en}".to_owned()),
        prop_oneof![Just("chat"), Just("embeddings")].prop_map(|e| format!("endpoint == {e}")),
        prop_oneof![Just("a"), Just("b"), Just("c")].prop_map(|t| format!("key.team == \"{t}\"")),
        Just("key.team in $teams".to_owned()),
        Just("key.team not in {\"a\", \"b\"}".to_owned()),
        prop_oneof![Just("m1"), Just("m2")].prop_map(|m| format!("model == \"{m}\"")),
        Just("model matches \"^m[12]\"".to_owned()),
        Just("tags contains \"x\"".to_owned()),
        Just("stream".to_owned()),
        Just("has_images == false".to_owned()),
        Just("health.deepseek.error_rate > 0.25".to_owned()),
        Just("meta[\"app\"] == \"web\"".to_owned()),
    ]
}

fn expr() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![int_pred(), sym_pred()];
    leaf.prop_recursive(3, 12, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} and {b}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} or {b})")),
            inner.clone().prop_map(|a| format!("not ({a})")),
            (inner.clone(), inner).prop_map(|(a, b)| format!("{a} or {b}")),
        ]
    })
}

fn target() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("openai"),
        Just("deepseek"),
        Just("gemini:gemini-2.5-flash"),
        Just("siliconflow:\"Qwen/Qwen3-8B\""),
        Just("requested"),
        Just("cheap"),
    ]
}

fn action() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (target(), proptest::option::of(target())).prop_map(|(a, b)| match b {
            Some(b) if b != a => format!("{a} fallback {b}"),
            _ => a.to_owned(),
        }),
        1 => Just("split { openai 70, deepseek 30 }".to_owned()),
        1 => Just("cheapest(cheap) fallback openai".to_owned()),
        1 => Just("fastest(openai, gemini:gemini-2.5-flash)".to_owned()),
    ]
}

/// A policy: declarations, then rules (some of them deny rules), then a default.
fn policy() -> impl Strategy<Value = String> {
    let rule = (any::<u8>(), expr(), action());
    proptest::collection::vec(rule, 1..24).prop_map(|rules| {
        let mut text = String::from("list teams = {\"b\", \"c\"}\ngroup cheap = [deepseek, siliconflow:\"Qwen/Qwen3-8B\"]\n");
        for (i, (kind, cond, act)) in rules.into_iter().enumerate() {
            if kind % 8 == 0 {
                text.push_str(&format!("deny d{i}: when {cond} -> deny 403 \"no\"\n"));
            } else {
                text.push_str(&format!("rule r{i}: when {cond} -> {act}\n"));
            }
        }
        text.push_str("default -> requested\n");
        text
    })
}

fn attrs() -> impl Strategy<Value = Attrs> {
    (
        (0i64..1300, 0i64..1300, 0i64..100, 0i64..24, 0i64..100),
        prop_oneof![Just("zh"), Just("en"), Just("ja"), Just("ko")],
        prop_oneof![Just("chat"), Just("embeddings")],
        prop_oneof![Just("a"), Just("b"), Just("c"), Just("d"), Just("")],
        prop_oneof![Just("m1"), Just("m2"), Just("m3")],
        (any::<bool>(), any::<bool>(), any::<bool>(), 0.0f64..0.5),
        prop_oneof![Just("web"), Just("cli")],
    )
        .prop_map(
            |(
                (tokens, max_tokens, sample, hour, split),
                lang,
                endpoint,
                team,
                model,
                (stream, images, tagged, er),
                app,
            )| {
                let mut a = Attrs {
                    tokens,
                    max_tokens,
                    sample,
                    split_sample: split,
                    lang: lang.into(),
                    endpoint: endpoint.into(),
                    model: model.into(),
                    stream,
                    has_images: images,
                    key: KeyAttrs {
                        team: team.into(),
                        ..Default::default()
                    },
                    time: TimeAttrs {
                        hour,
                        weekday: "mon".into(),
                    },
                    ..Default::default()
                };
                if tagged {
                    a.tags = vec!["x".into()];
                }
                a.health.insert(
                    "deepseek".into(),
                    scheme::HealthAttrs {
                        error_rate: er,
                        ..Default::default()
                    },
                );
                a.meta.insert("app".into(), app.into());
                a
            },
        )
}

fn load(text: &str) -> (ast::Policy, Policy) {
    let checked = check(
        vec![SourceFile {
            name: "p.policy".into(),
            text: text.into(),
        }],
        &Catalog::builtin(),
    );
    assert_eq!(checked.errors(), 0, "{text}\n{:#?}", checked.diagnostics);
    let artifact = compile(&checked, &Catalog::builtin()).unwrap();
    (checked.policy.clone(), Policy::new(artifact).unwrap())
}

// ---- a naive interpreter of the syntax tree: first match wins, denies first

fn naive(policy: &ast::Policy, a: &Attrs) -> String {
    let lists: HashMap<&str, &Vec<ast::Literal>> = policy
        .statements
        .iter()
        .filter_map(|s| match s {
            Statement::List { name, values, .. } => Some((name.name.as_str(), values)),
            _ => None,
        })
        .collect();
    let rules: Vec<&ast::Rule> = policy
        .statements
        .iter()
        .filter_map(|s| {
            if let Statement::Rule(r) = s {
                Some(r)
            } else {
                None
            }
        })
        .collect();
    let denies = rules.iter().filter(|r| r.kind == ast::RuleKind::Deny);
    let routes = rules.iter().filter(|r| r.kind != ast::RuleKind::Deny);
    for r in denies.chain(routes) {
        if eval(&r.when, a, &lists) {
            return r.name.as_ref().unwrap().name.clone();
        }
    }
    "default".into()
}

fn eval(e: &Expr, a: &Attrs, lists: &HashMap<&str, &Vec<ast::Literal>>) -> bool {
    match e {
        Expr::Not(x, _) => !eval(x, a, lists),
        Expr::And(x, y) => eval(x, a, lists) && eval(y, a, lists),
        Expr::Or(x, y) => eval(x, a, lists) || eval(y, a, lists),
        Expr::Pred(p) => {
            let v = a.get(&scheme::resolve(&p.field.path, p.field.key.as_deref()).unwrap());
            match &p.test {
                Test::Truthy => v == AttrValue::Bool(true),
                Test::Compare(op, lit) => cmp(v, *op, &lit.value),
                Test::In { negated, set } => {
                    let values: Vec<&ast::Literal> = match set {
                        SetRef::Inline(vs, _) => vs.iter().collect(),
                        SetRef::List(n) => lists[n.name.as_str()].iter().collect(),
                    };
                    values.iter().any(|l| cmp(v, CmpOp::Eq, &l.value)) != *negated
                }
                Test::Matches(lit) => {
                    let (AttrValue::Str(s), LitValue::Str(re)) = (v, &lit.value) else {
                        return false;
                    };
                    regex_lite::Regex::new(re).unwrap().is_match(s)
                }
                Test::Contains(lit) => {
                    let (LitValue::Str(x) | LitValue::Word(x)) = &lit.value else {
                        return false;
                    };
                    match v {
                        AttrValue::Set(items) => items.contains(x),
                        AttrValue::Str(s) => s.contains(x.as_str()),
                        _ => false,
                    }
                }
            }
        }
    }
}

fn cmp(v: AttrValue<'_>, op: CmpOp, lit: &LitValue) -> bool {
    let ord = match (v, lit) {
        (AttrValue::Int(a), LitValue::Int(b)) => a.partial_cmp(b),
        (AttrValue::Float(a), LitValue::Float(b)) => a.partial_cmp(b),
        (AttrValue::Float(a), LitValue::Int(b)) => a.partial_cmp(&(*b as f64)),
        (AttrValue::Bool(a), LitValue::Bool(b)) => a.partial_cmp(b),
        (AttrValue::Str(a), LitValue::Str(b) | LitValue::Word(b)) => a.partial_cmp(b.as_str()),
        _ => None,
    };
    let Some(ord) = ord else { return false };
    match op {
        CmpOp::Eq => ord.is_eq(),
        CmpOp::Ne => ord.is_ne(),
        CmpOp::Lt => ord.is_lt(),
        CmpOp::Le => ord.is_le(),
        CmpOp::Gt => ord.is_gt(),
        CmpOp::Ge => ord.is_ge(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn indexed_linear_and_naive_evaluation_agree(text in policy(), inputs in proptest::collection::vec(attrs(), 20)) {
        let (tree, compiled) = load(&text);
        for a in &inputs {
            let fast = compiled.decide(a);
            let slow = compiled.decide_linear(a);
            prop_assert_eq!(&fast, &slow, "index and linear scan disagree for {:?}", a);
            prop_assert_eq!(&fast.rule, &naive(&tree, a), "compiled and naive disagree for {:?}\n{}", a, text);
            if let Outcome::Route { attempts, .. } = &fast.outcome {
                prop_assert!(!attempts.is_empty());
            }
        }
    }

    #[test]
    fn formatting_round_trips_and_is_idempotent(text in policy()) {
        let (statements, diags) = parse::parse_file(0, &text);
        prop_assert!(diags.is_empty());
        let once = fmt::format_file(&text, &statements.iter().collect::<Vec<_>>());
        let (again, diags) = parse::parse_file(0, &once);
        prop_assert!(diags.is_empty(), "formatted text does not parse:\n{}", once);
        prop_assert_eq!(&statements, &again);
        let twice = fmt::format_file(&once, &again.iter().collect::<Vec<_>>());
        prop_assert_eq!(once, twice);
    }

    #[test]
    fn compiling_is_deterministic(text in policy()) {
        let a = to_json(&load(&text).1.artifact);
        let b = to_json(&load(&text).1.artifact);
        prop_assert_eq!(a, b);
    }

    #[test]
    fn arbitrary_text_never_panics_the_checker(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let _ = check(vec![SourceFile { name: "x.policy".into(), text }], &Catalog::builtin());
    }

    #[test]
    fn mangled_policies_never_panic_the_checker(text in policy(), cut in 0usize..2000, junk in "[ -~]{0,12}") {
        let cut = text.char_indices().map(|(i, _)| i).find(|&i| i >= cut % text.len().max(1)).unwrap_or(0);
        let mangled = format!("{}{junk}{}", &text[..cut], &text[cut..]);
        let _ = check(vec![SourceFile { name: "x.policy".into(), text: mangled }], &Catalog::builtin());
    }

    #[test]
    fn arbitrary_json_never_panics_the_loader(text in "\\PC{0,200}") {
        let _ = Policy::from_json(&text);
    }
}

#[test]
fn a_tampered_artifact_is_refused() {
    let (_, p) = load("rule r: when tokens < 5 -> openai\ndefault -> requested\n");
    let json = to_json(&p.artifact).replace("\"openai:", "\"deepseek:");
    let err = Policy::from_json(&json).unwrap_err();
    assert!(err.0.contains("hash mismatch"), "{err}");
}

#[test]
fn formatting_keeps_comments_and_normalizes_layout() {
    let text = "# header\n\ntarget  t =   deepseek   # trailing\n\n\n# about r\nrule r :  when tokens<5 and (lang==zh or lang == ja) -> t fallback openai with timeout 8000ms\ndefault->requested\n";
    let (statements, diags) = parse::parse_file(0, text);
    assert!(diags.is_empty(), "{diags:#?}");
    let out = fmt::format_file(text, &statements.iter().collect::<Vec<_>>());
    assert_eq!(
        out,
        "# header\n\ntarget t = deepseek  # trailing\n\n# about r\nrule r: when tokens < 5 and (lang == zh or lang == ja) -> t fallback openai with timeout 8s\ndefault -> requested\n"
    );
}
