//! The `gateway-policy` binary as a user runs it: outputs and exit codes (0 clean, 1 findings, 2 usage/I/O).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gateway-policy"))
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap()
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn the_example_policy_is_clean_and_its_tests_pass() {
    let o = run(&["check", "--deny-warnings", "policies"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let o = run(&["test", "policies"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(
        stdout(&o).trim_end().ends_with(" passed, 0 failed"),
        "{}",
        stdout(&o)
    );
    assert!(
        !stdout(&o).contains("rules no case decided"),
        "every rule has a case: {}",
        stdout(&o)
    );
}

#[test]
fn findings_exit_1_and_usage_errors_exit_2() {
    let broken = "src/policy/tests/snapshots/broken.policy";
    assert_eq!(run(&["check", broken]).status.code(), Some(1));
    assert_eq!(run(&["compile", broken, "-o", "-"]).status.code(), Some(1));
    assert_eq!(run(&["check", "no/such/dir"]).status.code(), Some(2));
    assert_eq!(
        run(&["explain", "policies", "--attrs", "{not json"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        run(&["explain", "policies", "--attrs", r#"{"tokenz": 1}"#])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(run(&["frobnicate"]).status.code(), Some(2));
}

#[test]
fn explain_json_names_the_rule_the_chain_and_the_trace() {
    let o = run(&[
        "explain",
        "policies",
        "--format",
        "json",
        "--attrs",
        r#"{"tokens":120,"lang":"zh","key":{"team":"research"}}"#,
    ]);
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["rule"], "30-routing.policy:6");
    assert_eq!(
        v["chain"],
        serde_json::json!([
            "deepseek:deepseek-flash",
            "siliconflow:deepseek-ai/DeepSeek-V3.2"
        ])
    );
    assert_eq!(v["deny"], serde_json::Value::Null);
    let last = v["trace"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["matched"], true);
    assert_eq!(
        last["checks"][0],
        serde_json::json!({"condition": "tokens < 500", "value": "120", "result": true})
    );

    let o = run(&[
        "explain",
        "policies",
        "--format",
        "json",
        "--attrs",
        r#"{"model":"gpt-6-sol","key":{"tier":"free"}}"#,
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (v["rule"].as_str(), v["deny"]["status"].as_u64()),
        (Some("free_frontier"), Some(403))
    );
}

#[test]
fn compile_is_byte_identical_and_loadable() {
    let a = run(&["compile", "policies", "-o", "-"]);
    let b = run(&["compile", "policies", "-o", "-"]);
    assert_eq!(a.status.code(), Some(0));
    assert_eq!(a.stdout, b.stdout);
    let p = gateway_policy::Policy::from_json(&stdout(&a)).unwrap();
    assert_eq!(p.hash().len(), 64);
}

#[test]
fn fmt_check_reports_unformatted_files_without_changing_them() {
    let dir = std::env::temp_dir().join(format!("gp-fmt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("a.policy");
    std::fs::write(&file, "default->requested\n").unwrap();
    let o = run(&["fmt", "--check", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "default->requested\n"
    );
    assert_eq!(run(&["fmt", file.to_str().unwrap()]).status.code(), Some(0));
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "default -> requested\n"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn diff_lists_changed_decisions() {
    let dir = std::env::temp_dir().join(format!("gp-diff-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("old.policy"),
        "rule zh: when lang == zh -> deepseek\ndefault -> requested\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("new.policy"),
        "rule zh: when lang == zh -> siliconflow\ndefault -> requested\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("attrs.jsonl"),
        "{\"lang\":\"zh\"}\n{\"lang\":\"en\"}\n",
    )
    .unwrap();
    let p = |n: &str| dir.join(n).to_string_lossy().into_owned();
    let o = run(&[
        "diff",
        &p("old.policy"),
        &p("new.policy"),
        "--attrs-file",
        &p("attrs.jsonl"),
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (v["total"].as_u64(), v["changed"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(
        v["changes"][0]["new"]["decision"],
        "siliconflow:deepseek-ai/DeepSeek-V3.2"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn publish_moves_the_pointer_after_storing_the_artifact_and_rollback_moves_it_back() {
    let dir = std::env::temp_dir().join(format!("gateway-policy-publish-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = dir.join("store");
    let changed = dir.join("changed");
    std::fs::create_dir_all(&changed).unwrap();
    for entry in std::fs::read_dir(repo().join("policies")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "policy") {
            let text = std::fs::read_to_string(&path).unwrap();
            let text = text.replace("with retries 1", "with retries 2");
            std::fs::write(changed.join(path.file_name().unwrap()), text).unwrap();
        }
    }
    let store_arg = store.to_str().unwrap();
    let first = run(&["publish", "policies", "--dir", store_arg]);
    assert_eq!(first.status.code(), Some(0));
    let first = stdout(&first).trim().to_owned();
    let second = run(&["publish", changed.to_str().unwrap(), "--dir", store_arg]);
    let second = stdout(&second).trim().to_owned();
    assert_ne!(first, second);
    let read = |name: &str| std::fs::read_to_string(store.join(name)).unwrap();
    assert_eq!(read("active"), second);
    assert!(read(&format!("{first}.json")).contains(&first));

    let back = run(&["rollback", "--dir", store_arg]);
    assert_eq!(
        (back.status.code(), stdout(&back).trim()),
        (Some(0), first.as_str())
    );
    assert_eq!(
        (read("active"), read("history")),
        (first.clone(), "[]".to_owned())
    );
    // Nothing earlier: refused, and the pointer stays.
    assert_eq!(
        run(&["rollback", "--dir", store_arg]).status.code(),
        Some(2)
    );
    assert_eq!(read("active"), first);
    // Without a place to publish to, nothing is written.
    assert_eq!(run(&["publish", "policies"]).status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}
