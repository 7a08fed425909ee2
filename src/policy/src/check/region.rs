//! Sets of requests, for reasoning about conditions: a condition becomes a union of cubes (DNF), a cube a
//! per-attribute domain (integer and number intervals, finite or co-finite string sets, booleans). Regex and
//! `contains` tests are opaque boolean atoms, which keeps every conclusion sound: a rule reported unreachable
//! really is, though some unreachable rules go unreported.

use std::collections::{BTreeMap, BTreeSet};

use crate::artifact::{Cmp, Cond, Val};
use crate::scheme::{FieldId, Ty, Vocab, ENDPOINTS, WEEKDAYS};

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Key {
    Field(FieldId),
    /// `field matches "pattern"` as an independent boolean.
    Pattern(FieldId, String),
    /// `field contains "value"` as an independent boolean.
    Contains(FieldId, String),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Dom {
    /// Sorted, disjoint, inclusive.
    Ints(Vec<(i64, i64)>),
    /// Sorted, disjoint, inclusive.
    Floats(Vec<(f64, f64)>),
    Bools {
        t: bool,
        f: bool,
    },
    /// `cofinite`: every string except `items`; otherwise exactly `items`.
    Strs {
        cofinite: bool,
        items: BTreeSet<String>,
    },
}

pub type Cube = BTreeMap<Key, Dom>;

/// Cubes beyond this many are not reasoned about (the lint is skipped rather than the checker stalling).
pub const LIMIT: usize = 512;

pub fn full(key: &Key) -> Dom {
    match key {
        Key::Pattern(..) | Key::Contains(..) => Dom::Bools { t: true, f: true },
        Key::Field(f) => match f.ty() {
            Ty::Int { min, max } => Dom::Ints(vec![(min, max)]),
            Ty::Float { min, max } => Dom::Floats(vec![(min, max)]),
            Ty::Bool => Dom::Bools { t: true, f: true },
            Ty::Sym(Vocab::Endpoint) => finite(ENDPOINTS),
            Ty::Sym(Vocab::Weekday) => finite(WEEKDAYS),
            Ty::Sym(Vocab::Task) => finite(crate::scheme::TASKS),
            Ty::Str | Ty::Text | Ty::Sym(_) | Ty::StrSet => Dom::Strs {
                cofinite: true,
                items: BTreeSet::new(),
            },
        },
    }
}

fn finite(items: &[&str]) -> Dom {
    Dom::Strs {
        cofinite: false,
        items: items.iter().map(|s| (*s).to_owned()).collect(),
    }
}

impl Dom {
    pub fn is_empty(&self) -> bool {
        match self {
            Dom::Ints(v) => v.is_empty(),
            Dom::Floats(v) => v.is_empty(),
            Dom::Bools { t, f } => !t && !f,
            Dom::Strs { cofinite, items } => !cofinite && items.is_empty(),
        }
    }

    pub fn intersect(&self, other: &Dom) -> Dom {
        match (self, other) {
            (Dom::Ints(a), Dom::Ints(b)) => {
                Dom::Ints(intersect_intervals(a, b, |x, y| x.max(y), |x, y| x.min(y)))
            }
            (Dom::Floats(a), Dom::Floats(b)) => {
                Dom::Floats(intersect_intervals(a, b, f64::max, f64::min))
            }
            (Dom::Bools { t: t1, f: f1 }, Dom::Bools { t: t2, f: f2 }) => Dom::Bools {
                t: *t1 && *t2,
                f: *f1 && *f2,
            },
            (
                Dom::Strs {
                    cofinite: c1,
                    items: i1,
                },
                Dom::Strs {
                    cofinite: c2,
                    items: i2,
                },
            ) => match (c1, c2) {
                (false, false) => Dom::Strs {
                    cofinite: false,
                    items: i1.intersection(i2).cloned().collect(),
                },
                (false, true) => Dom::Strs {
                    cofinite: false,
                    items: i1.difference(i2).cloned().collect(),
                },
                (true, false) => Dom::Strs {
                    cofinite: false,
                    items: i2.difference(i1).cloned().collect(),
                },
                (true, true) => Dom::Strs {
                    cofinite: true,
                    items: i1.union(i2).cloned().collect(),
                },
            },
            // Domains of one key always share a kind; a mismatch can only mean "nothing".
            _ => Dom::Bools { t: false, f: false },
        }
    }

    /// Everything in `universe` that is not in `self`.
    pub fn complement(&self, universe: &Dom) -> Dom {
        let not = match self {
            Dom::Ints(v) => {
                let mut out = Vec::new();
                let mut next = i64::MIN;
                let mut open = true;
                for &(lo, hi) in v {
                    if lo > next {
                        out.push((next, lo - 1));
                    }
                    if hi == i64::MAX {
                        open = false;
                        break;
                    }
                    next = hi + 1;
                }
                if open {
                    out.push((next, i64::MAX));
                }
                Dom::Ints(out.into_iter().filter(|(a, b)| a <= b).collect())
            }
            Dom::Floats(v) => {
                let mut out = Vec::new();
                let mut next = f64::NEG_INFINITY;
                let mut open = true;
                for &(lo, hi) in v {
                    if lo > next {
                        out.push((next, lo.next_down()));
                    }
                    if hi == f64::INFINITY {
                        open = false;
                        break;
                    }
                    next = hi.next_up();
                }
                if open {
                    out.push((next, f64::INFINITY));
                }
                Dom::Floats(out.into_iter().filter(|(a, b)| a <= b).collect())
            }
            Dom::Bools { t, f } => Dom::Bools { t: !t, f: !f },
            Dom::Strs { cofinite, items } => Dom::Strs {
                cofinite: !cofinite,
                items: items.clone(),
            },
        };
        not.intersect(universe)
    }

    /// Whether the two share a member (without building the intersection).
    pub fn overlaps(&self, other: &Dom) -> bool {
        match (self, other) {
            (Dom::Ints(a), Dom::Ints(b)) => a
                .iter()
                .any(|(a1, a2)| b.iter().any(|(b1, b2)| a1.max(b1) <= a2.min(b2))),
            (Dom::Floats(a), Dom::Floats(b)) => a
                .iter()
                .any(|(a1, a2)| b.iter().any(|(b1, b2)| a1.max(*b1) <= a2.min(*b2))),
            (Dom::Bools { t: t1, f: f1 }, Dom::Bools { t: t2, f: f2 }) => {
                (*t1 && *t2) || (*f1 && *f2)
            }
            (
                Dom::Strs {
                    cofinite: c1,
                    items: i1,
                },
                Dom::Strs {
                    cofinite: c2,
                    items: i2,
                },
            ) => match (c1, c2) {
                (false, false) => i1.iter().any(|x| i2.contains(x)),
                (false, true) => i1.iter().any(|x| !i2.contains(x)),
                (true, false) => i2.iter().any(|x| !i1.contains(x)),
                (true, true) => true,
            },
            _ => false,
        }
    }

    /// Whether every member of `self` is in `other`.
    pub fn subset_of(&self, other: &Dom, universe: &Dom) -> bool {
        match (self, other) {
            (Dom::Bools { t: t1, f: f1 }, Dom::Bools { t: t2, f: f2 }) => {
                (!t1 || *t2) && (!f1 || *f2)
            }
            (
                Dom::Strs {
                    cofinite: c1,
                    items: i1,
                },
                Dom::Strs {
                    cofinite: c2,
                    items: i2,
                },
            ) => match (c1, c2) {
                (false, false) => i1.is_subset(i2),
                (false, true) => i1.is_disjoint(i2),
                (true, false) => false,
                (true, true) => i2.is_subset(i1),
            },
            _ => self.intersect(&other.complement(universe)).is_empty(),
        }
    }

    /// A representative member, for messages.
    pub fn pick(&self, key: &Key) -> Option<Value> {
        match self {
            Dom::Ints(v) => {
                let &(lo, hi) = v.first()?;
                Some(Value::Int(if lo <= 0 && hi >= 0 {
                    0
                } else if lo == i64::MIN {
                    hi
                } else {
                    lo
                }))
            }
            Dom::Floats(v) => {
                let &(lo, hi) = v.first()?;
                Some(Value::Float(if lo <= 0.0 && hi >= 0.0 {
                    0.0
                } else if lo.is_infinite() {
                    hi
                } else {
                    lo
                }))
            }
            Dom::Bools { t, f } => match (t, f) {
                (true, _) => Some(Value::Bool(true)),
                (false, true) => Some(Value::Bool(false)),
                _ => None,
            },
            Dom::Strs {
                cofinite: false,
                items,
            } => items.iter().next().cloned().map(Value::Str),
            Dom::Strs {
                cofinite: true,
                items,
            } => {
                let candidates: &[&str] = match key {
                    Key::Field(FieldId::Lang) => {
                        &["en", "zh", "ja", "ko", "fr", "de", "es", "ru", "und"]
                    }
                    _ => &["", "x", "y", "z"],
                };
                let owned;
                let found = match candidates.iter().find(|c| !items.contains(**c)) {
                    Some(c) => *c,
                    None => {
                        owned = (0..)
                            .map(|i| format!("x{i}"))
                            .find(|c| !items.contains(c))
                            .unwrap_or_default();
                        owned.as_str()
                    }
                };
                Some(Value::Str(found.to_owned()))
            }
        }
    }

    pub fn contains(&self, v: &Value) -> bool {
        match (self, v) {
            (Dom::Ints(iv), Value::Int(x)) => iv.iter().any(|(a, b)| a <= x && x <= b),
            (Dom::Floats(iv), Value::Float(x)) => iv.iter().any(|(a, b)| a <= x && x <= b),
            (Dom::Bools { t, f }, Value::Bool(b)) => {
                if *b {
                    *t
                } else {
                    *f
                }
            }
            (Dom::Strs { cofinite, items }, Value::Str(s)) => items.contains(s) != *cofinite,
            _ => false,
        }
    }
}

fn intersect_intervals<T: Copy + PartialOrd>(
    a: &[(T, T)],
    b: &[(T, T)],
    max: impl Fn(T, T) -> T,
    min: impl Fn(T, T) -> T,
) -> Vec<(T, T)> {
    let mut out = Vec::new();
    for &(a1, a2) in a {
        for &(b1, b2) in b {
            let lo = max(a1, b1);
            let hi = min(a2, b2);
            if lo <= hi {
                out.push((lo, hi));
            }
        }
    }
    out
}

/// A concrete value of one key, for witnesses.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
}

/// The (key, domain) a leaf condition allows; `None` for non-leaves.
fn leaf(cond: &Cond) -> Option<(Key, Dom)> {
    match cond {
        Cond::Cmp {
            field, cmp, value, ..
        } => {
            let key = Key::Field(field.clone());
            let universe = full(&key);
            let d = match (value, &universe) {
                (Val::Int(v), Dom::Ints(_)) => {
                    let v = *v;
                    match cmp {
                        Cmp::Eq => Dom::Ints(vec![(v, v)]),
                        Cmp::Ne => Dom::Ints(vec![(v, v)]).complement(&universe),
                        Cmp::Lt if v == i64::MIN => Dom::Ints(vec![]),
                        Cmp::Lt => Dom::Ints(vec![(i64::MIN, v - 1)]),
                        Cmp::Le => Dom::Ints(vec![(i64::MIN, v)]),
                        Cmp::Gt if v == i64::MAX => Dom::Ints(vec![]),
                        Cmp::Gt => Dom::Ints(vec![(v + 1, i64::MAX)]),
                        Cmp::Ge => Dom::Ints(vec![(v, i64::MAX)]),
                    }
                }
                (Val::Float(_) | Val::Int(_), Dom::Floats(_)) => {
                    let v = match value {
                        Val::Float(x) => *x,
                        Val::Int(i) => *i as f64,
                        _ => 0.0,
                    };
                    match cmp {
                        Cmp::Eq => Dom::Floats(vec![(v, v)]),
                        Cmp::Ne => Dom::Floats(vec![(v, v)]).complement(&universe),
                        Cmp::Lt => Dom::Floats(vec![(f64::NEG_INFINITY, v.next_down())]),
                        Cmp::Le => Dom::Floats(vec![(f64::NEG_INFINITY, v)]),
                        Cmp::Gt => Dom::Floats(vec![(v.next_up(), f64::INFINITY)]),
                        Cmp::Ge => Dom::Floats(vec![(v, f64::INFINITY)]),
                    }
                }
                (Val::Bool(b), Dom::Bools { .. }) => {
                    let eq = Dom::Bools { t: *b, f: !*b };
                    match cmp {
                        Cmp::Ne => eq.complement(&universe),
                        _ => eq,
                    }
                }
                (Val::Str(s), Dom::Strs { .. }) => {
                    let eq = Dom::Strs {
                        cofinite: false,
                        items: BTreeSet::from([s.clone()]),
                    };
                    match cmp {
                        Cmp::Ne => eq.complement(&universe),
                        _ => eq,
                    }
                }
                // A literal of another type never matches (the checker reports it before we get here).
                _ => Dom::Bools { t: false, f: false },
            };
            Some((key, d.intersect(&universe)))
        }
        Cond::In {
            field,
            values,
            negated,
            ..
        } => {
            let key = Key::Field(field.clone());
            let universe = full(&key);
            let mut d = match &universe {
                Dom::Ints(_) => Dom::Ints(vec![]),
                Dom::Floats(_) => Dom::Floats(vec![]),
                Dom::Bools { .. } => Dom::Bools { t: false, f: false },
                Dom::Strs { .. } => Dom::Strs {
                    cofinite: false,
                    items: BTreeSet::new(),
                },
            };
            for v in values {
                let (_, one) = leaf(&Cond::Cmp {
                    field: field.clone(),
                    cmp: Cmp::Eq,
                    value: v.clone(),
                    src: String::new(),
                })?;
                d = union(&d, &one, &universe);
            }
            Some((key, if *negated { d.complement(&universe) } else { d }))
        }
        Cond::Matches { field, pattern, .. } => Some((
            Key::Pattern(field.clone(), pattern.clone()),
            Dom::Bools { t: true, f: false },
        )),
        Cond::Contains { field, value, .. } => Some((
            Key::Contains(field.clone(), value.clone()),
            Dom::Bools { t: true, f: false },
        )),
        _ => None,
    }
}

fn union(a: &Dom, b: &Dom, universe: &Dom) -> Dom {
    // a ∪ b = ¬(¬a ∩ ¬b)
    a.complement(universe)
        .intersect(&b.complement(universe))
        .complement(universe)
}

/// The condition (or its negation) as a union of non-empty cubes; `None` past [`LIMIT`].
pub fn dnf(cond: &Cond, negate: bool) -> Option<Vec<Cube>> {
    match (cond, negate) {
        (Cond::True, false) => Some(vec![Cube::new()]),
        (Cond::True, true) => Some(vec![]),
        (Cond::Not { cond }, n) => dnf(cond, !n),
        (Cond::And { all: cs }, false) | (Cond::Or { any: cs }, true) => {
            let mut acc = vec![Cube::new()];
            for c in cs {
                let d = dnf(c, negate)?;
                let mut next = Vec::new();
                for a in &acc {
                    for b in &d {
                        if let Some(m) = meet(a, b) {
                            next.push(m);
                        }
                    }
                }
                if next.len() > LIMIT {
                    return None;
                }
                acc = next;
            }
            Some(acc)
        }
        (Cond::Or { any: cs }, false) | (Cond::And { all: cs }, true) => {
            let mut out = Vec::new();
            for c in cs {
                out.extend(dnf(c, negate)?);
                if out.len() > LIMIT {
                    return None;
                }
            }
            Some(out)
        }
        (l, n) => {
            let (key, dom) = leaf(l)?;
            let dom = if n { dom.complement(&full(&key)) } else { dom };
            if dom.is_empty() {
                Some(vec![])
            } else {
                Some(vec![Cube::from([(key, dom)])])
            }
        }
    }
}

/// The intersection of two cubes; `None` when empty.
pub fn meet(a: &Cube, b: &Cube) -> Option<Cube> {
    let mut out = a.clone();
    for (k, d) in b {
        let merged = match out.get(k) {
            Some(existing) => existing.intersect(d),
            None => d.clone(),
        };
        if merged.is_empty() {
            return None;
        }
        out.insert(k.clone(), merged);
    }
    Some(out)
}

/// `a` minus `b`, as disjoint cubes.
pub fn subtract(a: &Cube, b: &Cube) -> Vec<Cube> {
    if !intersects(a, b) {
        return vec![a.clone()];
    }
    let mut out = Vec::new();
    let mut rest = a.clone();
    for (k, bd) in b {
        let ad = rest.get(k).cloned().unwrap_or_else(|| full(k));
        let outside = bd.complement(&full(k)).intersect(&ad);
        if !outside.is_empty() {
            let mut piece = rest.clone();
            piece.insert(k.clone(), outside);
            out.push(piece);
        }
        rest.insert(k.clone(), ad.intersect(bd));
    }
    out
}

/// Work allowed for one coverage question (cube subtractions) before giving up.
pub const BUDGET: usize = 20_000;

/// Whether cube `a` lies inside cube `b`.
pub fn within(a: &Cube, b: &Cube) -> bool {
    b.iter().all(|(k, bd)| {
        let universe = full(k);
        match a.get(k) {
            Some(ad) => ad.subset_of(bd, &universe),
            None => universe.subset_of(bd, &universe),
        }
    })
}

/// Whether two cubes share a request (without building their intersection).
pub fn intersects(a: &Cube, b: &Cube) -> bool {
    b.iter()
        .all(|(k, bd)| a.get(k).is_none_or(|ad| ad.overlaps(bd)))
}

/// What of `cubes` is not covered by `cover`; `None` when that takes more than [`BUDGET`] steps.
pub fn uncovered(cubes: &[Cube], cover: &[&Cube]) -> Option<Vec<Cube>> {
    let mut remaining = cubes.to_vec();
    let mut work = 0;
    for c in cover {
        let mut next = Vec::with_capacity(remaining.len());
        for r in remaining {
            work += 1;
            if !intersects(&r, c) {
                next.push(r);
            } else if !within(&r, c) {
                next.extend(subtract(&r, c));
            }
        }
        if next.len() > LIMIT || work > BUDGET {
            return None;
        }
        remaining = next;
        if remaining.is_empty() {
            break;
        }
    }
    Some(remaining)
}

/// Whether some request in `cubes` is outside every cube of `cover`, found by probing a few requests:
/// extreme numbers, both booleans, and text values that no cube mentions. A cheap, allocation-light test that
/// settles most rules (which are reachable) before the exact but costly subtraction.
pub fn escapes(cubes: &[Cube], cover: &[&Cube]) -> bool {
    let mut keys: BTreeSet<&Key> = BTreeSet::new();
    for c in cubes.iter().chain(cover.iter().copied()) {
        keys.extend(c.keys());
    }
    for cube in cubes {
        for high in [false, true] {
            let mut p = BTreeMap::new();
            for &k in &keys {
                let dom = cube.get(k).cloned().unwrap_or_else(|| full(k));
                if let Some(v) = probe(k, &dom, high, cover) {
                    p.insert(k.clone(), v);
                }
            }
            if cube_contains(cube, &p) && !cover.iter().any(|c| cube_contains(c, &p)) {
                return true;
            }
        }
    }
    false
}

fn probe(key: &Key, dom: &Dom, high: bool, cover: &[&Cube]) -> Option<Value> {
    match dom {
        Dom::Ints(v) => v
            .first()
            .zip(v.last())
            .map(|(first, last)| Value::Int(if high { last.1 } else { first.0 })),
        Dom::Floats(v) => v
            .first()
            .zip(v.last())
            .map(|(first, last)| Value::Float(if high { last.1 } else { first.0 })),
        Dom::Bools { t, f } => Some(Value::Bool(if *t && *f { high } else { *t })),
        Dom::Strs {
            cofinite: false,
            items,
        } => {
            // A listed value that the cover mentions least is the likeliest to escape it.
            items
                .iter()
                .min_by_key(|i| cover.iter().filter(|c| mentions(c, key, i)).count())
                .cloned()
                .map(Value::Str)
        }
        Dom::Strs {
            cofinite: true,
            items,
        } => {
            let fresh = (0..)
                .map(|i| format!("probe{i}"))
                .find(|v| !items.contains(v) && !cover.iter().any(|c| mentions(c, key, v)));
            fresh.map(Value::Str)
        }
    }
}

fn mentions(cube: &Cube, key: &Key, value: &str) -> bool {
    matches!(cube.get(key), Some(Dom::Strs { items, .. }) if items.contains(value))
}

/// A concrete request in the cube: its constrained keys' representative values, and `defaults` for
/// any other key that `also` mentions.
pub fn point(cube: &Cube, also: &[&Cube]) -> BTreeMap<Key, Value> {
    let mut p = BTreeMap::new();
    for (k, d) in cube {
        if let Some(v) = d.pick(k) {
            p.insert(k.clone(), v);
        }
    }
    for c in also {
        for k in c.keys() {
            if !p.contains_key(k) {
                if let Some(v) = full(k).pick(k).map(|v| match (k, v) {
                    (Key::Pattern(..) | Key::Contains(..), _) => Value::Bool(false),
                    (_, v) => v,
                }) {
                    p.insert(k.clone(), v);
                }
            }
        }
    }
    p
}

pub fn cube_contains(cube: &Cube, p: &BTreeMap<Key, Value>) -> bool {
    cube.iter()
        .all(|(k, d)| p.get(k).is_some_and(|v| d.contains(v)))
}

/// `tokens = 0, lang = zh, model matches "^gpt"` — only the keys the cube constrains.
pub fn describe(cube: &Cube, p: &BTreeMap<Key, Value>) -> String {
    let parts: Vec<String> = cube
        .keys()
        .filter_map(|k| {
            let v = p.get(k)?;
            Some(match (k, v) {
                (Key::Pattern(f, pat), Value::Bool(b)) => {
                    format!(
                        "{}{f} matches {}",
                        if *b { "" } else { "not " },
                        crate::syntax::ast::quote(pat)
                    )
                }
                (Key::Contains(f, s), Value::Bool(b)) => {
                    format!(
                        "{}{f} contains {}",
                        if *b { "" } else { "not " },
                        crate::syntax::ast::quote(s)
                    )
                }
                (Key::Field(f), Value::Str(s)) if matches!(f.ty(), Ty::Sym(_)) && !s.is_empty() => {
                    format!("{f} = {s}")
                }
                (Key::Field(f), Value::Str(s)) => format!("{f} = {}", crate::syntax::ast::quote(s)),
                (Key::Field(f), Value::Int(i)) => format!("{f} = {i}"),
                (Key::Field(f), Value::Float(x)) => format!("{f} = {x}"),
                (Key::Field(f), Value::Bool(b)) => format!("{f} = {b}"),
                (k, v) => format!("{k:?} = {v:?}"),
            })
        })
        .collect();
    if parts.is_empty() {
        "any request".to_owned()
    } else {
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(field: FieldId, cmp: Cmp, value: Val) -> Cond {
        Cond::Cmp {
            field,
            cmp,
            value,
            src: String::new(),
        }
    }

    #[test]
    fn interval_reasoning_finds_covered_and_uncovered_parts() {
        let small = dnf(&cmp(FieldId::Tokens, Cmp::Lt, Val::Int(500)), false).unwrap();
        let smaller = dnf(&cmp(FieldId::Tokens, Cmp::Lt, Val::Int(100)), false).unwrap();
        assert!(uncovered(&smaller, &small.iter().collect::<Vec<_>>())
            .unwrap()
            .is_empty());
        let rest = uncovered(&small, &smaller.iter().collect::<Vec<_>>()).unwrap();
        assert_eq!(rest.len(), 1);
        assert_eq!(
            rest[0][&Key::Field(FieldId::Tokens)],
            Dom::Ints(vec![(100, 499)])
        );
    }

    #[test]
    fn negative_token_counts_are_outside_the_domain() {
        assert!(dnf(&cmp(FieldId::Tokens, Cmp::Lt, Val::Int(0)), false)
            .unwrap()
            .is_empty());
        assert!(dnf(&cmp(FieldId::Tokens, Cmp::Ge, Val::Int(0)), true)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn string_sets_complement_both_ways() {
        let zh = cmp(FieldId::Lang, Cmp::Eq, Val::Str("zh".into()));
        let not_zh = Cond::Not {
            cond: Box::new(zh.clone()),
        };
        let both = Cond::Or {
            any: vec![zh, not_zh],
        };
        assert!(
            dnf(&both, true).unwrap().is_empty(),
            "zh or not zh is always true"
        );
        let endpoint = Cond::In {
            field: FieldId::Endpoint,
            values: crate::scheme::ENDPOINTS
                .iter()
                .map(|e| Val::Str((*e).into()))
                .collect(),
            negated: false,
            src: String::new(),
        };
        assert!(
            dnf(&endpoint, true).unwrap().is_empty(),
            "the endpoint vocabulary is finite"
        );
    }

    #[test]
    fn float_bounds_respect_strictness() {
        let lt = dnf(
            &cmp(
                FieldId::Health("x".into(), crate::scheme::HealthMetric::ErrorRate),
                Cmp::Lt,
                Val::Float(0.5),
            ),
            false,
        )
        .unwrap();
        let le = dnf(
            &cmp(
                FieldId::Health("x".into(), crate::scheme::HealthMetric::ErrorRate),
                Cmp::Le,
                Val::Float(0.5),
            ),
            false,
        )
        .unwrap();
        assert!(uncovered(&lt, &le.iter().collect::<Vec<_>>())
            .unwrap()
            .is_empty());
        assert!(!uncovered(&le, &lt.iter().collect::<Vec<_>>())
            .unwrap()
            .is_empty());
    }
}
