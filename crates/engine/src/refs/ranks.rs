//! The order in which an MA's export sends its object types: a type whose
//! references name objects of another type of the same MA goes after that
//! type (a directory's groups after the people who are their members), so
//! that a group provisioned before its members (by an earlier sync) is
//! sent after their adds, with them: a `groupOfNames` must have a member.
//! Within one type (people naming their managers) the connectors' ids
//! give the order, as before; types whose references name each other (a
//! cycle) keep the ids' order too.

use super::OutRef;
use autosync_model::MaDef;
use rustc_hash::{FxHashMap, FxHashSet};

/// An outbound flow's object type (`None`: every type) and its reference.
pub(crate) type RefFlow<'a> = (Option<&'a str>, &'a mut OutRef);

/// Each object type's rank (sent in rank order; empty when all are 0), and
/// `sent_before` set on each flow whose referred types all come first.
pub(crate) fn export_ranks(ma: &MaDef, flows: &mut [RefFlow<'_>]) -> FxHashMap<String, usize> {
    let all: Vec<&str> = ma.object_types.iter().map(|t| t.name.as_str()).collect();
    // The CS types a metaverse type is provisioned as in this MA.
    let provisioned_as = |mv_type: &str| -> Vec<&str> {
        ma.provisioning
            .iter()
            .filter(|p| p.mv_type.as_deref().is_none_or(|t| t == mv_type))
            .filter_map(|p| match (&p.object_type, all.as_slice()) {
                (Some(t), _) => Some(t.as_str()),
                (None, [only]) => Some(*only),
                (None, _) => None,
            })
            .collect()
    };
    // Per flow: the referrer's types and the referred types (same MA).
    let edges_of = |object_type: Option<&str>, r: &OutRef| -> Vec<(String, String)> {
        if r.ma.is_some() {
            return Vec::new();
        }
        let Some(named) = r.names_type.as_deref() else {
            return Vec::new();
        };
        let from: Vec<&str> = match object_type {
            Some(t) => vec![t],
            None => all.clone(),
        };
        let to = provisioned_as(named);
        from.iter()
            .flat_map(|f| to.iter().map(move |t| ((*f).to_owned(), (*t).to_owned())))
            .collect()
    };
    let edges: FxHashSet<(String, String)> = flows
        .iter()
        .flat_map(|(t, r)| edges_of(*t, r))
        .filter(|(f, t)| f != t)
        .collect();
    if edges.is_empty() {
        return FxHashMap::default();
    }
    // An edge in a cycle orders nothing.
    let reaches = |from: &str, to: &str| -> bool {
        let mut seen: FxHashSet<&str> = FxHashSet::default();
        let mut todo = vec![from];
        while let Some(x) = todo.pop() {
            if x == to {
                return true;
            }
            if seen.insert(x) {
                todo.extend(
                    edges
                        .iter()
                        .filter(|(f, _)| f == x)
                        .map(|(_, t)| t.as_str()),
                );
            }
        }
        false
    };
    let ordered: Vec<(&str, &str)> = edges
        .iter()
        .map(|(f, t)| (f.as_str(), t.as_str()))
        .filter(|(f, t)| !reaches(t, f))
        .collect();
    let mut rank: FxHashMap<String, usize> = all.iter().map(|t| ((*t).to_owned(), 0)).collect();
    for _ in 0..all.len() {
        for (f, t) in &ordered {
            let after = rank.get(*t).copied().unwrap_or(0) + 1;
            let r = rank.entry((*f).to_owned()).or_insert(0);
            if *r < after {
                *r = after;
            }
        }
    }
    for (object_type, r) in flows.iter_mut() {
        let es = edges_of(*object_type, r);
        r.sent_before = !es.is_empty()
            && es.iter().all(|(f, t)| {
                f != t && rank.get(t).copied().unwrap_or(0) < rank.get(f).copied().unwrap_or(0)
            });
    }
    if rank.values().all(|r| *r == 0) {
        return FxHashMap::default();
    }
    rank
}
