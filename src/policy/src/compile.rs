//! Checked policy to artifact: canonical JSON, a content hash, and a decision index that narrows the rules
//! a request can match to a few candidates.

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};

use crate::artifact::*;
use crate::catalog::Catalog;
use crate::check::region::{self, Cube, Dom, Key};
use crate::check::Checked;
use crate::scheme::{FieldId, Ty};

/// At most this many attributes are indexed (each costs one bitset operation per request).
const MAX_FIELDS: usize = 8;

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
    let index = build_index(&projections);
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

/// Indexes the attributes that the most rules test.
fn build_index(cubes: &[Option<Vec<Cube>>]) -> Index {
    let mut tested: BTreeMap<FieldId, usize> = BTreeMap::new();
    for cs in cubes.iter().flatten() {
        let mut fields: BTreeSet<&FieldId> = BTreeSet::new();
        for c in cs {
            for k in c.keys() {
                if let Key::Field(f) = k {
                    if matches!(f.ty(), Ty::Int { .. } | Ty::Str | Ty::Sym(_)) {
                        fields.insert(f);
                    }
                }
            }
        }
        for f in fields {
            *tested.entry(f.clone()).or_default() += 1;
        }
    }
    let mut by_use: Vec<(FieldId, usize)> = tested.into_iter().filter(|(_, n)| *n >= 2).collect();
    by_use.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let fields = by_use
        .into_iter()
        .take(MAX_FIELDS)
        .filter_map(|(f, _)| {
            let key = Key::Field(f.clone());
            let projections: Vec<(u32, Option<Dom>)> = cubes
                .iter()
                .enumerate()
                .map(|(r, c)| (r as u32, projection(c, &key)))
                .collect();
            field_index(&f, &projections)
        })
        .collect();
    Index { fields }
}

fn field_index(field: &FieldId, projections: &[(u32, Option<Dom>)]) -> Option<FieldIndex> {
    let any: Vec<u32> = projections
        .iter()
        .filter(|(_, p)| p.is_none())
        .map(|(r, _)| *r)
        .collect();
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
            let mut slots = Vec::with_capacity(bounds.len() + 1);
            for slot in 0..=bounds.len() {
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
                slots.push(
                    projections
                        .iter()
                        .filter(|(_, p)| p.as_ref().is_some_and(|d| d.overlaps(&range)))
                        .map(|(r, _)| *r)
                        .collect(),
                );
            }
            Some(FieldIndex::Range {
                field: field.clone(),
                bounds,
                slots,
                any,
            })
        }
        Ty::Str | Ty::Sym(_) => {
            let mut listed: BTreeSet<&String> = BTreeSet::new();
            for (_, p) in projections {
                if let Some(Dom::Strs { items, .. }) = p {
                    listed.extend(items.iter());
                }
            }
            let values: BTreeMap<String, Vec<u32>> = listed
                .into_iter()
                .map(|v| {
                    let point = region::Value::Str(v.clone());
                    let allow = projections
                        .iter()
                        .filter(|(_, p)| p.as_ref().is_some_and(|d| d.contains(&point)))
                        .map(|(r, _)| *r);
                    (v.clone(), allow.collect())
                })
                .collect();
            let other = projections
                .iter()
                .filter(|(_, p)| matches!(p, Some(Dom::Strs { cofinite: true, .. })))
                .map(|(r, _)| *r)
                .collect();
            Some(FieldIndex::Text {
                field: field.clone(),
                values,
                other,
                any,
            })
        }
        _ => None,
    }
}
