//! Every mistake the checker knows, each caught with the right code, at the right place, with a useful message.
#![allow(clippy::unwrap_used)]

mod common;

use common::{checked, codes, DESIGN_EXAMPLE};
use gateway_policy::catalog::Catalog;
use gateway_policy::check::check;
use gateway_policy::diagnostic::{line_col, render_human, Diagnostic};
use gateway_policy::syntax::ast::SourceFile;

const OK_TAIL: &str = "\ndefault -> requested\n";

/// The one diagnostic of `text` (after appending a default), with its line:column and underlined text.
fn only(text: &str) -> (Diagnostic, String, String) {
    let text = format!("{text}{OK_TAIL}");
    let c = checked(&text);
    assert_eq!(
        c.diagnostics.len(),
        1,
        "expected one diagnostic, got {:#?}",
        c.diagnostics
    );
    let d = c.diagnostics[0].clone();
    let (l, col) = line_col(&text, d.span.start as usize);
    let under = text[d.span.range()].to_owned();
    (d, format!("{l}:{col}"), under)
}

#[test]
fn the_design_example_is_accepted_as_written() {
    let c = checked(DESIGN_EXAMPLE);
    assert_eq!(c.errors(), 0, "{:#?}", c.diagnostics);
    // What it does have: two unused declarations, and the seed rule repeats `zh_short`, so it is unreachable.
    assert_eq!(codes(DESIGN_EXAMPLE), ["W106", "W106", "W101"]);
}

#[test]
fn syntax_errors_in_every_statement_and_file_are_all_reported() {
    let files = vec![
        SourceFile { name: "a.policy".into(), text: "rule a: when tokens < -> openai\nrule b: when lang = zh -> openai\ndefault -> requested\n".into() },
        SourceFile { name: "b.policy".into(), text: "target x = \nrule c: when stream -> openai\n".into() },
    ];
    let c = check(files, &Catalog::builtin());
    let syntax: Vec<(u32, String)> = c
        .diagnostics
        .iter()
        .filter(|d| d.code == "E001")
        .map(|d| (d.span.file, d.message.clone()))
        .collect();
    assert_eq!(syntax.len(), 3, "{syntax:#?}");
    assert_eq!(syntax[0].0, 0);
    assert!(syntax[0].1.contains("expected"), "{}", syntax[0].1);
    assert_eq!(syntax[2].0, 1);
    let eq = c
        .diagnostics
        .iter()
        .find(|d| d.help.as_deref() == Some("comparisons use `==`"));
    assert!(eq.is_some(), "a lone `=` gets a hint: {:#?}", c.diagnostics);
    // The statements that parsed were still checked: rule c is there.
    assert!(c.rules.iter().any(|r| r.id == "c"));
}

#[test]
fn keyword_prefixed_identifiers_are_identifiers() {
    let text = "list notes = {\"a\"}\nrule order_fast: when key.team in $notes -> openai\nrule android: when key.name == \"x\" -> openai\ndefault -> requested\n";
    assert!(codes(text).is_empty(), "{:#?}", checked(text).diagnostics);
}

#[test]
fn type_errors_point_at_the_literal() {
    let (d, at, under) = only("rule r: when tokens > \"many\" -> openai");
    assert_eq!(
        (d.code, at.as_str(), under.as_str()),
        ("E003", "1:23", "\"many\"")
    );
    assert_eq!(
        d.message,
        "`tokens` is a whole number, but this is a string"
    );
    let (d, _, _) = only("rule r: when model > 3 -> openai");
    assert_eq!(d.message, "`model` is a string; `>` needs a number");
    let (d, _, under) = only("rule r: when tokens -> openai");
    assert_eq!((d.code, under.as_str()), ("E003", "tokens"));
    let (d, _, _) = only("rule r: when stream == 1 -> openai");
    assert_eq!(d.code, "E003");
    let (d, _, _) = only("rule r: when tags == \"x\" -> openai");
    assert!(d.help.unwrap().contains("contains"));
}

#[test]
fn unknown_names_suggest_the_closest() {
    let (d, at, under) = only("rule r: when tokenz < 5 -> openai");
    assert_eq!(
        (d.code, at.as_str(), under.as_str()),
        ("E002", "1:14", "tokenz")
    );
    assert_eq!(d.help.as_deref(), Some("did you mean `tokens`?"));

    let (d, _, under) = only("rule r: when tokens < 5 -> deepsek");
    assert_eq!((d.code, under.as_str()), ("E006", "deepsek"));
    assert_eq!(d.help.as_deref(), Some("did you mean `deepseek`?"));

    let (d, _, _) = only("rule r: when tokens < 5 -> deepseek:deepseek-flsh");
    assert_eq!(d.code, "E005");
    assert_eq!(d.help.as_deref(), Some("did you mean `deepseek-flash`?"));

    let (d, _, _) = only("rule r: when tokens < 5 -> deepsek:deepseek-flash");
    assert_eq!(d.code, "E004");

    let (d, _, _) = only("rule r: when provider == opena -> openai");
    assert_eq!(
        (d.code, d.help.as_deref()),
        ("E004", Some("did you mean `openai`?"))
    );

    let c = checked(
        "list teams = {\"a\"}\nrule r: when key.team in $team -> openai\ndefault -> requested",
    );
    let d = c.diagnostics.iter().find(|d| d.code == "E006").unwrap();
    assert_eq!(d.help.as_deref(), Some("did you mean `teams`?"));

    let (d, _, _) = only("rule r: when health.deepsek.up -> openai");
    assert_eq!(d.code, "E004");

    let (d, _, _) = only("rule r: when lang == chinese -> openai");
    assert_eq!(d.code, "E013");
}

#[test]
fn groups_and_lists_are_used_where_they_belong() {
    let (d, _, _) =
        only("group g = [openai, deepseek]\nrule r: when tokens < 5 -> split { g 50, openai 50 }");
    assert_eq!(d.code, "E006");
    assert!(
        d.message.contains("group `g` cannot be used here"),
        "{}",
        d.message
    );
    let (d, _, _) = only("list l = {\"a\"}\nrule r: when tokens < 5 -> l");
    assert_eq!(d.message, "`l` is a list, not a target");
}

#[test]
fn missing_and_duplicate_defaults() {
    let c = checked("rule r: when tokens < 5 -> openai\n");
    assert_eq!(codes("rule r: when tokens < 5 -> openai\n"), ["E007"]);
    assert!(c.diagnostics[0]
        .help
        .as_deref()
        .unwrap()
        .contains("default -> requested"));
    let text = "default -> openai\nrule r: when tokens < 5 -> deepseek\ndefault -> requested\n";
    let c = checked(text);
    assert_eq!(codes(text), ["E008"]);
    assert_eq!(line_col(text, c.diagnostics[0].span.start as usize).0, 3);
}

#[test]
fn duplicate_names() {
    let (d, at, _) = only("rule r: when tokens < 5 -> openai\nrule r: when tokens > 9 -> deepseek");
    assert_eq!((d.code, at.as_str()), ("E009", "2:6"));
    assert!(d.help.unwrap().contains("main.policy:1"));
    let (d, _, _) = only("target deepseek = openai");
    assert_eq!(d.message, "`deepseek` is already a provider name");
}

#[test]
fn unreachable_rules_name_the_rule_that_takes_them_with_an_example() {
    let text = "rule small: when tokens < 1000 -> openai\nrule tiny: when tokens < 100 and lang == zh -> deepseek";
    let (d, at, _) = only(text);
    assert_eq!((d.code, at.as_str()), ("W101", "2:1"));
    assert_eq!(
        d.message,
        "rule `tiny` can never decide: every request it matches is decided earlier (e.g. tokens = 0, lang = zh goes to `small`)"
    );
    assert_eq!(
        d.help.as_deref(),
        Some("move it above `small`, or narrow the earlier rules so some requests reach it")
    );

    // Covered only by the union of two earlier rules, and by deny guards declared later in the file.
    let text = "rule a: when lang == zh -> deepseek\nrule b: when lang != zh and tokens > 10 -> openai\nrule c: when tokens >= 500 -> gemini\n";
    assert_eq!(only(text).0.code, "W101");
    let text = "rule c: when key.tier == \"free\" -> gemini\ndeny d: when key.tier in {\"free\", \"trial\"} -> deny \"no\"";
    let (d, _, _) = only(text);
    assert_eq!(d.code, "W101");
    assert!(d.message.contains("goes to `d`"), "{}", d.message);

    // Not unreachable: part of it is left.
    assert!(codes("rule a: when tokens < 100 -> openai\nrule b: when tokens < 200 -> deepseek\ndefault -> requested").is_empty());
}

#[test]
fn contradictory_and_always_true_conditions() {
    let (d, _, _) = only("rule r: when tokens < 100 and tokens > 200 -> openai");
    assert_eq!(d.code, "W102");
    let (d, _, _) = only("rule r: when tokens < 0 -> openai");
    assert_eq!(d.code, "W102");
    let (d, _, _) = only(
        "rule r: when endpoint in {chat, messages, responses} or endpoint in {embeddings, images, transcriptions, speech} -> openai",
    );
    assert_eq!(d.code, "W103");
    // Chat and embeddings are no longer every endpoint: the Messages and Responses APIs are two more.
    let c = checked(&format!(
        "rule r: when endpoint == chat or endpoint == embeddings -> openai{OK_TAIL}"
    ));
    assert!(
        c.diagnostics.iter().all(|d| d.code != "W103"),
        "{:#?}",
        c.diagnostics
    );
    let (d, _, _) = only("rule r: when lang == zh or not lang == zh -> openai");
    assert_eq!(d.code, "W103");
}

#[test]
fn the_same_target_twice_in_a_chain() {
    let (d, at, under) =
        only("target t = deepseek:deepseek-flash\nrule r: when tokens < 5 -> deepseek fallback t");
    assert_eq!((d.code, at.as_str(), under.as_str()), ("W104", "2:46", "t"));
    assert_eq!(
        d.message,
        "`deepseek:deepseek-flash` is already in this chain"
    );
}

#[test]
fn split_weights_must_be_positive_and_sum_to_100() {
    let (d, _, _) = only("rule r: when tokens < 5 -> split { openai 90, deepseek 5 }");
    assert_eq!(
        (d.code, d.message.as_str()),
        ("E011", "split weights sum to 95, not 100")
    );
    let (d, _, under) = only("rule r: when tokens < 5 -> split { openai 100, deepseek 0 }");
    assert_eq!((d.code, under.as_str()), ("E011", "0"));
}

#[test]
fn capability_mismatches() {
    let (d, _, under) = only("rule r: when has_images -> siliconflow:\"Qwen/Qwen3-8B\"");
    assert_eq!(
        (d.code, under.as_str()),
        ("W105", "siliconflow:\"Qwen/Qwen3-8B\"")
    );
    assert!(d.message.contains("images"), "{}", d.message);
    let (d, _, _) = only("rule r: when tokens > 200000 -> openai:gpt-4o-mini");
    assert_eq!(d.message, "this rule sends prompts of at least 200001 tokens to `openai:gpt-4o-mini`, whose context window is 128000");
    let (d, _, _) = only(
        "rule r: when has_tools and lang == en -> workers_ai:\"@cf/meta/llama-3.1-8b-instruct\"",
    );
    assert!(d.message.contains("tool calling"));
    // Only when every request the rule matches needs it.
    assert!(codes("rule r: when has_images or tokens < 5 -> siliconflow:\"Qwen/Qwen3-8B\"\ndefault -> requested").is_empty());
}

#[test]
fn invalid_and_oversized_regexes() {
    let (d, _, under) = only("rule r: when model matches \"gpt-(\" -> openai");
    assert_eq!((d.code, under.as_str()), ("E010", "\"gpt-(\""));
    let big = format!(
        "rule r: when model matches \"{}\" -> openai",
        "a".repeat(1200)
    );
    let (d, _, _) = only(&big);
    assert_eq!(d.code, "E010");
    assert!(d.label.contains("limit is 1000"), "{}", d.label);
}

#[test]
fn options_are_checked() {
    let (d, _, _) = only("rule r: when tokens < 5 -> openai with timout 5s");
    assert_eq!(
        (d.code, d.help.as_deref()),
        ("E012", Some("did you mean `timeout`?"))
    );
    let (d, _, under) = only("rule r: when tokens < 5 -> openai with retry_on {429, 6xx}");
    assert_eq!((d.code, under.as_str()), ("E012", "6xx"));
    assert_eq!(
        only("rule r: when tokens < 5 -> openai with retries 50")
            .0
            .code,
        "E012"
    );
}

#[test]
fn unused_declarations() {
    let (d, at, _) = only("list nobody = {\"x\"}");
    assert_eq!(
        (d.code, at.as_str(), d.message.as_str()),
        ("W106", "1:6", "list `nobody` is never used")
    );
}

#[test]
fn a_rendered_diagnostic_shows_the_source_line_and_a_caret() {
    let text = "rule r: when tokenz < 5 -> openai\ndefault -> requested\n";
    let c = checked(text);
    let out = render_human(&c.files, &c.diagnostics[0], false);
    let expected = "E002

  × unknown attribute `tokenz`
   ╭─[main.policy:1:14]
 1 │ rule r: when tokenz < 5 -> openai
   ·              ───┬──
   ·                 ╰── not an attribute
 2 │ default -> requested
   ╰────
  help: did you mean `tokens`?
";
    assert_eq!(out, expected, "\n{out}");
}

#[test]
fn prompt_text_is_tested_with_contains_or_matches_only() {
    for text in [
        "rule p: when prompt == \"hi\" -> openai\n",
        "rule p: when system in {\"a\", \"b\"} -> openai\n",
    ] {
        let (d, _, under) = only(text);
        assert_eq!(d.code, "E003", "{text}");
        assert!(
            d.message.contains("tested with `contains` or `matches`"),
            "{}",
            d.message
        );
        assert!(
            under.starts_with("prompt") || under.starts_with("system"),
            "{under}"
        );
    }
    let ok = "rule sql: when prompt matches \"(?i)\\\\bselect\\\\b\" and not (system contains \"no sql\") -> openai\n\
              rule hard: when reasoning -> deepseek\n";
    let c = checked(&format!("{ok}{OK_TAIL}"));
    assert_eq!(c.errors(), 0, "{:#?}", c.diagnostics);
}

#[test]
fn a_misspelt_task_gets_a_did_you_mean() {
    let (d, _, under) = only("rule c: when task == cod -> openai\n");
    assert_eq!((d.code, under.as_str()), ("E013", "cod"));
    assert!(d.message.contains("`cod` is not a task"), "{}", d.message);
    assert!(format!("{:?}", d).contains("did you mean `code`"), "{d:?}");
    let c = checked("rule c: when task == code and has_code -> openai\nrule m: when task in {math, chat} -> openai\ndefault -> requested\n");
    assert_eq!(c.errors(), 0, "{:#?}", c.diagnostics);
}

#[test]
fn a_routed_model_without_a_price_is_a_warning() {
    let mut catalog = Catalog::builtin();
    catalog
        .prices
        .prices
        .retain(|e| (e.provider.as_str(), e.model.as_str()) != ("openai", "gpt-4o-mini"));
    let text = "rule r: when tokens < 5 -> openai:gpt-4o-mini fallback openai:gpt-6-luna\ndefault -> requested\n";
    let files = vec![SourceFile {
        name: "main.policy".into(),
        text: text.into(),
    }];
    let c = check(files, &catalog);
    let found: Vec<(&str, &str)> = c
        .diagnostics
        .iter()
        .map(|d| (d.code, &text[d.span.range()]))
        .collect();
    assert_eq!(found, [("W107", "openai:gpt-4o-mini")]);
    assert_eq!(c.errors(), 0);
}

#[test]
fn the_price_table_is_checked_with_the_catalog() {
    let catalog = Catalog::builtin();
    assert!(!catalog.prices.prices.is_empty());
    let bad = r#"
[exchange]
USD = 1
[[price]]
provider = "deepseek"
model = "deepseek-flash"
currency = "CNY"
source = "test"
rates = { input = 1, output = 4 }
windows = [{ name = "peak", timezone = "+8", days = ["mon-fri"], hours = ["09:00-12:00"], rates = { input = 2, output = 8 } }]
[[price]]
provider = "openai"
model = "gpt-9"
currency = "USD"
source = "test"
rates = { input = 1.0000001 }
"#;
    let err = catalog.clone().with_prices(bad).unwrap_err().to_string();
    assert!(err.contains("1.0000001"), "{err}");
    let bad = bad.replace("1.0000001", "1");
    let err = catalog.with_prices(&bad).unwrap_err().to_string();
    for expected in [
        "currency `CNY` has no exchange rate",
        "timezone `+8` is not an offset",
        "price openai:gpt-9: not a model in the catalog",
    ] {
        assert!(err.contains(expected), "{expected}: {err}");
    }
}

#[test]
fn cacheable_rules_must_route_only_deterministic_requests() {
    // Deterministic: no warning; the options compile to the artifact.
    let ok = "rule c: when temperature == 0 and not has_tools -> openai with cache 10m\ndefault -> requested\n";
    assert!(codes(ok).is_empty(), "{:#?}", checked(ok).diagnostics);
    let sampled = "rule c: when not has_tools -> openai with shared_cache 2h\n";
    let (d, _, _) = only(sampled);
    assert_eq!(d.code, "W108");
    assert!(
        d.message.contains("temperature > 0") && !d.message.contains("tools"),
        "{}",
        d.message
    );
    let tools = "rule c: when temperature <= 0 -> openai with team_cache 1m\n";
    assert!(only(tools).0.message.contains("requests with tools"));
    // One cache per rule; a duration greater than zero.
    let twice = "rule c: when temperature == 0 and has_tools == false -> openai with cache 1m, team_cache 2m\ndefault -> requested\n";
    assert_eq!(codes(twice), ["E012"]);
    let zero = "rule c: when temperature == 0 and not has_tools -> openai with cache 0s\ndefault -> requested\n";
    assert_eq!(codes(zero), ["E012"]);
}

#[test]
fn archive_keeps_a_rule_s_payloads_for_a_duration() {
    let ok = "rule a: when meta[\"x-app\"] == \"support\" -> openai with archive 30d\ndefault -> requested\n";
    assert!(codes(ok).is_empty(), "{:#?}", checked(ok).diagnostics);
    let artifact = gateway_policy::compile::compile(&checked(ok), &Catalog::builtin()).unwrap();
    let rule = &artifact.rules[0];
    assert_eq!(rule.options.archive_ms, Some(30 * 86_400_000));
    assert!(
        rule.text("rule").ends_with("with archive 30d"),
        "{}",
        rule.text("rule")
    );
    for bad in ["archive 0d", "archive 5", "archive {429}"] {
        let text = format!("rule a: when tokens > 1 -> openai with {bad}\ndefault -> requested\n");
        assert_eq!(codes(&text), ["E012"], "{bad}");
    }
    // A misspelt option is suggested.
    let typo = "rule a: when tokens > 1 -> openai with archiv 1d\ndefault -> requested\n";
    let d = &checked(typo).diagnostics[0];
    assert!(format!("{d:?}").contains("archive"), "{d:?}");
}
