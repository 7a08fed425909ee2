//! The canonical layout of a policy (`gateway-policy fmt`): one statement per line, single spaces, minimal
//! parentheses. Comments and single blank lines between statements are kept; a statement with a comment inside
//! it is left exactly as written.

use super::ast::*;

/// Formats one file: `statements` are the file's statements in source order, parsed from `text`.
pub fn format_file(text: &str, statements: &[&Statement]) -> String {
    let mut out = String::new();
    let mut pos = 0;
    for st in statements {
        let span = st.span().range();
        if span.start < pos || span.end > text.len() {
            continue;
        }
        emit_gap(&mut out, &text[pos..span.start]);
        let original = &text[span.clone()];
        if has_comment(original) {
            out.push_str(original);
        } else {
            out.push_str(&statement(st));
        }
        pos = span.end;
        let line_rest = text[pos..].split('\n').next().unwrap_or("");
        let trimmed = line_rest.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            if !trimmed.is_empty() {
                out.push_str("  ");
                out.push_str(trimmed);
            }
            pos += line_rest.len();
            if text[pos..].starts_with('\n') {
                pos += 1;
            }
        }
        out.push('\n');
    }
    emit_gap(&mut out, &text[pos.min(text.len())..]);
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

/// Comments between statements, each on its own line; runs of blank lines become one.
fn emit_gap(out: &mut String, gap: &str) {
    let mut pending_blank = false;
    // The last piece is the start of the next statement's line (or the end of the file), not a line of its own.
    let lines: Vec<&str> = gap.split('\n').collect();
    for line in &lines[..lines.len().saturating_sub(1)] {
        let t = line.trim();
        if t.is_empty() {
            pending_blank = !out.is_empty();
        } else if t.starts_with('#') {
            if pending_blank {
                out.push('\n');
            }
            out.push_str(t);
            out.push('\n');
            pending_blank = false;
        }
    }
    if pending_blank && !out.ends_with("\n\n") {
        out.push('\n');
    }
}

/// Whether `#` starts a comment somewhere in this statement's text (outside strings).
fn has_comment(text: &str) -> bool {
    let mut in_string = false;
    let mut escaped = false;
    for c in text.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_string => escaped = true,
            '"' => in_string = !in_string,
            '#' if !in_string => return true,
            _ => {}
        }
    }
    false
}

pub fn statement(st: &Statement) -> String {
    match st {
        Statement::Target { name, target, .. } => format!("target {} = {target}", name.name),
        Statement::Group { name, members, .. } => {
            format!(
                "group {} = [{}]",
                name.name,
                join(members.iter().map(ToString::to_string))
            )
        }
        Statement::List { name, values, .. } => {
            format!(
                "list {} = {{{}}}",
                name.name,
                join(values.iter().map(|v| v.value.to_string()))
            )
        }
        Statement::Rule(r) => {
            let head = match (&r.kind, &r.name) {
                (RuleKind::Deny, Some(n)) => format!("deny {}: when ", n.name),
                (RuleKind::Named, Some(n)) => format!("rule {}: when ", n.name),
                _ => "when ".to_owned(),
            };
            format!(
                "{head}{} -> {}{}",
                expr(&r.when),
                action(&r.action),
                options(&r.options)
            )
        }
        Statement::Default {
            action: a,
            options: o,
            ..
        } => format!("default -> {}{}", action(a), options(o)),
    }
}

fn join(items: impl Iterator<Item = String>) -> String {
    items.collect::<Vec<_>>().join(", ")
}

/// Binding strength: `or` 1, `and` 2, `not` 3, a predicate 4.
fn precedence(e: &Expr) -> u8 {
    match e {
        Expr::Or(..) => 1,
        Expr::And(..) => 2,
        Expr::Not(..) => 3,
        Expr::Pred(_) => 4,
    }
}

pub fn expr(e: &Expr) -> String {
    fn wrap(e: &Expr, min: u8) -> String {
        if precedence(e) < min {
            format!("({})", expr(e))
        } else {
            expr(e)
        }
    }
    match e {
        Expr::Pred(p) => predicate(p),
        Expr::Not(inner, _) => format!("not {}", wrap(inner, 3)),
        // Left-associative: a right operand of the same operator keeps its parentheses.
        Expr::And(a, b) => format!("{} and {}", wrap(a, 2), wrap(b, 3)),
        Expr::Or(a, b) => format!("{} or {}", wrap(a, 1), wrap(b, 2)),
    }
}

pub fn predicate(p: &Predicate) -> String {
    let f = &p.field;
    match &p.test {
        Test::Truthy => f.to_string(),
        Test::Compare(op, lit) => format!("{f} {} {}", op.as_str(), lit.value),
        Test::In { negated, set } => {
            let not = if *negated { "not " } else { "" };
            let set = match set {
                SetRef::Inline(values, _) => {
                    format!("{{{}}}", join(values.iter().map(|v| v.value.to_string())))
                }
                SetRef::List(name) => format!("${}", name.name),
            };
            format!("{f} {not}in {set}")
        }
        Test::Matches(lit) => format!("{f} matches {}", lit.value),
        Test::Contains(lit) => format!("{f} contains {}", lit.value),
    }
}

pub fn action(a: &Action) -> String {
    match a {
        Action::Deny {
            status, message, ..
        } => match status {
            Some((s, _)) => format!("deny {s} {}", quote(message)),
            None => format!("deny {}", quote(message)),
        },
        Action::Chain(items, _) => items
            .iter()
            .map(chain_item)
            .collect::<Vec<_>>()
            .join(" fallback "),
    }
}

fn chain_item(item: &ChainItem) -> String {
    match item {
        ChainItem::Target(t) => t.to_string(),
        ChainItem::Split(arms, _) => {
            format!(
                "split {{ {} }}",
                join(
                    arms.iter()
                        .map(|a| format!("{} {}", a.target, a.weight.value))
                )
            )
        }
        ChainItem::Ranked(r, targets, _) => format!(
            "{}({})",
            r.as_str(),
            join(targets.iter().map(ToString::to_string))
        ),
    }
}

fn options(opts: &[OptionItem]) -> String {
    if opts.is_empty() {
        return String::new();
    }
    let items = opts.iter().map(|o| {
        let v = match &o.value {
            OptValue::DurationMs(ms) => duration(*ms),
            OptValue::Number(l) => l.value.to_string(),
            OptValue::StatusSet(s) => format!("{{{}}}", join(s.iter().map(|i| i.name.clone()))),
        };
        format!("{} {v}", o.name.name)
    });
    format!(" with {}", join(items))
}

pub fn duration(ms: u64) -> String {
    crate::artifact::duration(ms)
}
