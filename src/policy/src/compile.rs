//! Checked policy to artifact: canonical JSON, a content hash, and a decision index that narrows the rules
//! a request can match to a few candidates.

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};

use crate::artifact::*;
use crate::catalog::Catalog;
use crate::check::region::{self, Cube, Dom, Key};
use crate::check::Checked;
use crate::scheme::{FieldId, Ty};

/// Candidate lists at or below this size are not split further.
const LEAF_SIZE: usize = 4;
const MAX_DEPTH: usize = 6;

/// Compiles a policy that checked without errors. `None` when it has errors (or no default).
pub fn compile(checked: &Checked, catalog: &Catalog) -> Option<Artifact> {
    if checked.errors() > 0 {
        return None;
    }
    let default = checked.default.as_ref()?;
    let convert = |r: &crate::check::LoweredRule| CompiledRule {
        id: r.id.clone(),
        loc: r.loc.clone(),
        when: r.when.clone(),
        action: r.action.clone(),
        options: r.options.clone(),
    };
    let rules: Vec<CompiledRule> = checked.rules.iter().map(convert).collect();
    let projections: Vec<Option<Vec<Cube>>> =
        rules.iter().map(|r| region::dnf(&r.when, false)).collect();
    let all: Vec<u32> = (0..rules.len() as u32).collect();
    let index = build_index(&all, &projections, &BTreeSet::new(), 0);
    let mut artifact = Artifact {
        format: FORMAT,
        hash: String::new(),
        sources: checked
            .files
            .iter()
            .map(|f| SourceInfo {
                file: crate::check::base_name(&f.name),
                sha256: crate::hex(&Sha256::digest(f.text.as_bytes())),
            })
            .collect(),
        deny: checked.deny.iter().map(convert).collect(),
        rules,
        default: convert(default),
        index,
        catalog: catalog.clone(),
    };
    artifact.hash = crate::eval::content_hash(&artifact);
    Some(artifact)
}

/// The artifact as published: canonical JSON (struct fields in declaration order, maps sorted).
pub fn to_json(artifact: &Artifact) -> String {
    serde_json::to_string(artifact).unwrap_or_default()
}

/// Which values of `key` a rule can match: `None` when it does not constrain the key in every cube.
fn projection(cubes: &Option<Vec<Cube>>, key: &Key) -> Option<Dom> {
    let cubes = cubes.as_ref()?;
    let mut acc: Option<Dom> = None;
    for c in cubes {
        let d = c.get(key)?;
        acc = Some(match acc {
            None => d.clone(),
            Some(a) => union(&a, d, key),
        });
    }
    acc
}

fn union(a: &Dom, b: &Dom, key: &Key) -> Dom {
    let u = region::full(key);
    a.complement(&u).intersect(&b.complement(&u)).complement(&u)
}

/// Recursively splits the candidate rules on the attribute that separates them best.
fn build_index(
    rules: &[u32],
    cubes: &[Option<Vec<Cube>>],
    used: &BTreeSet<FieldId>,
    depth: usize,
) -> Index {
    let leaf = || Index::Leaf {
        rules: rules.to_vec(),
    };
    if rules.len() <= LEAF_SIZE || depth >= MAX_DEPTH {
        return leaf();
    }
    // Candidate attributes: those some of these rules constrain.
    let mut fields: BTreeSet<FieldId> = BTreeSet::new();
    for &r in rules {
        if let Some(cs) = &cubes[r as usize] {
            for c in cs {
                for k in c.keys() {
                    if let Key::Field(f) = k {
                        if matches!(f.ty(), Ty::Int { .. } | Ty::Str | Ty::Sym(_))
                            && !used.contains(f)
                        {
                            fields.insert(f.clone());
                        }
                    }
                }
            }
        }
    }
    let mut best: Option<(usize, Index)> = None;
    for f in fields {
        let key = Key::Field(f.clone());
        let projections: Vec<(u32, Option<Dom>)> = rules
            .iter()
            .map(|&r| (r, projection(&cubes[r as usize], &key)))
            .collect();
        let Some((buckets, make)) = partition(&f, &projections) else {
            continue;
        };
        let worst = buckets.iter().map(Vec::len).max().unwrap_or(0);
        if worst * 4 > rules.len() * 3 {
            continue; // separates too little to be worth a node
        }
        if best.as_ref().is_none_or(|(w, _)| worst < *w) {
            let mut next_used = used.clone();
            next_used.insert(f.clone());
            let children: Vec<Index> = buckets
                .iter()
                .map(|b| build_index(b, cubes, &next_used, depth + 1))
                .collect();
            best = Some((worst, make(children)));
        }
    }
    best.map_or_else(leaf, |(_, node)| node)
}

type MakeNode = Box<dyn FnOnce(Vec<Index>) -> Index>;

/// Buckets of candidate rules by the attribute's value, and how to build the node from the buckets' subtrees.
fn partition(
    field: &FieldId,
    projections: &[(u32, Option<Dom>)],
) -> Option<(Vec<Vec<u32>>, MakeNode)> {
    let constrained = projections.iter().filter(|(_, p)| p.is_some()).count();
    if constrained == 0 {
        return None;
    }
    match field.ty() {
        Ty::Int { .. } => {
            let mut cuts: BTreeSet<i64> = BTreeSet::new();
            for (_, p) in projections {
                if let Some(Dom::Ints(iv)) = p {
                    for &(lo, hi) in iv {
                        if lo != i64::MIN {
                            cuts.insert(lo);
                        }
                        if hi != i64::MAX {
                            cuts.insert(hi + 1);
                        }
                    }
                }
            }
            let bounds: Vec<i64> = cuts.into_iter().collect();
            if bounds.is_empty() || bounds.len() > 256 {
                return None;
            }
            let mut buckets = vec![Vec::new(); bounds.len() + 1];
            for (slot, bucket) in buckets.iter_mut().enumerate() {
                let lo = if slot == 0 {
                    i64::MIN
                } else {
                    bounds[slot - 1]
                };
                let hi = if slot == bounds.len() {
                    i64::MAX
                } else {
                    bounds[slot] - 1
                };
                let range = Dom::Ints(vec![(lo, hi)]);
                for (r, p) in projections {
                    if p.as_ref().is_none_or(|d| !d.intersect(&range).is_empty()) {
                        bucket.push(*r);
                    }
                }
            }
            let field = field.clone();
            Some((
                buckets,
                Box::new(move |children| Index::Range {
                    field,
                    bounds,
                    children,
                }),
            ))
        }
        Ty::Str | Ty::Sym(_) => {
            let mut values: BTreeSet<String> = BTreeSet::new();
            for (_, p) in projections {
                if let Some(Dom::Strs { items, .. }) = p {
                    values.extend(items.iter().cloned());
                }
            }
            if values.is_empty() || values.len() > 1024 {
                return None;
            }
            let mut buckets = Vec::new();
            for v in &values {
                let point = region::Value::Str(v.clone());
                buckets.push(
                    projections
                        .iter()
                        .filter(|(_, p)| p.as_ref().is_none_or(|d| d.contains(&point)))
                        .map(|(r, _)| *r)
                        .collect(),
                );
            }
            // Any value not listed: rules that do not constrain the field, or exclude only listed values.
            buckets.push(
                projections
                    .iter()
                    .filter(|(_, p)| match p {
                        None => true,
                        Some(Dom::Strs { cofinite, .. }) => *cofinite,
                        Some(_) => false,
                    })
                    .map(|(r, _)| *r)
                    .collect(),
            );
            let field = field.clone();
            let keys: Vec<String> = values.into_iter().collect();
            Some((
                buckets,
                Box::new(move |mut children| {
                    let other = Box::new(children.pop().unwrap_or(Index::Leaf { rules: vec![] }));
                    let cases: BTreeMap<String, Index> = keys.into_iter().zip(children).collect();
                    Index::Text {
                        field,
                        cases,
                        other,
                    }
                }),
            ))
        }
        _ => None,
    }
}
