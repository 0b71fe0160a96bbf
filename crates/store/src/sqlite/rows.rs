//! Value rows: the multi-valued attributes declared with
//! [`Store::set_value_rows`](crate::Store::set_value_rows) (a group's
//! `members`) keep one row per value (`cs_val`, `mv_val`: object id,
//! attribute number, the value's canonical bytes as `bin::encode_value`
//! writes them), so that a one-member change of a group of 500,000 writes
//! one row ([`change`]), where a body would be written and read whole.
//!
//! What says an attribute has rows: a marker in the object's body (see
//! `bin`: the value tag `T_ROWS` in place of the value), not the current
//! declaration, so an object written with rows reads back whole after the
//! declaration changed, and an object without markers (every object of an
//! MA or type without row attributes) costs a read nothing extra. A full
//! read puts each marked attribute's rows in ([`fill_cs`], [`fill_mv`]); a
//! light read leaves the placeholder `Value::Multi([])` where there are
//! rows, one index probe each, and drops the attribute where there are none
//! ([`light_cs`], [`light_mv`]).
//!
//! Writes ([`plan`], [`apply`]): a declared attribute whose value is a
//! non-empty multi-value gets the marker and its rows are made exactly its
//! values (the rows already there are read and only the difference is
//! written: replaying a 500k group unchanged writes nothing); the
//! placeholder gets the marker and leaves the rows as they are (the caller
//! says it has rows: a light object written back); any other value stays
//! in the body. An update of an object of a scope (MA or type) that was
//! ever declared ([`RowDecl`] keeps every declaration seen) deletes the
//! rows of every attribute it does not mark: absent, single, or no longer
//! declared. A delete deletes them all.
//!
//! Lookups: `mv_find` of a declared metaverse attribute answers from
//! `mv_val_value` (attribute, value → object), exactly. A single value the
//! body keeps is indexed there too, under the attribute's number negated
//! (a row of its own kind: never read as a value). Declaring a metaverse
//! attribute moves the values of the existing objects of its type into
//! rows (`Store::set_value_rows`), so that every object is found.

//!
//! Parts: this file holds the declaration ([`RowDecl`], [`declare`]) and
//! the statements; `write` the writes (plans, batches, value changes);
//! `read` the reads (values, full and light objects, lookups).

mod read;
mod write;

pub(crate) use read::{
    count, count_upto, fill_cs, fill_mv, find, light_cs, light_mv, present, values,
};
pub(crate) use write::{RowPlan, apply, change, delete_all, plan};

use super::error;
use crate::api::{StoreResult, ValueRows};
use rusqlite::{Connection, OptionalExtension, params};
use rustc_hash::{FxHashMap, FxHashSet};
use std::path::Path;

/// Which objects' rows: connector space (`cs_val`) or metaverse (`mv_val`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    Cs = 0,
    Mv = 1,
}

impl Side {
    fn what(self) -> &'static str {
        match self {
            Side::Cs => "connector-space object",
            Side::Mv => "metaverse object",
        }
    }
}

/// One statement per side.
struct Sql {
    cs: &'static str,
    mv: &'static str,
}

impl Sql {
    fn of(&self, side: Side) -> &'static str {
        match side {
            Side::Cs => self.cs,
            Side::Mv => self.mv,
        }
    }
}

const VALUES: Sql = Sql {
    cs: "SELECT value FROM cs_val WHERE cs_id = ?1 AND attr = ?2 ORDER BY value",
    mv: "SELECT value FROM mv_val WHERE mv_id = ?1 AND attr = ?2 ORDER BY value",
};
const INSERT: Sql = Sql {
    cs: "INSERT OR IGNORE INTO cs_val (cs_id, attr, value) VALUES (?1, ?2, ?3)",
    mv: "INSERT OR IGNORE INTO mv_val (mv_id, attr, value) VALUES (?1, ?2, ?3)",
};
const DELETE: Sql = Sql {
    cs: "DELETE FROM cs_val WHERE cs_id = ?1 AND attr = ?2 AND value = ?3",
    mv: "DELETE FROM mv_val WHERE mv_id = ?1 AND attr = ?2 AND value = ?3",
};
const DELETE_BETWEEN: Sql = Sql {
    cs: "DELETE FROM cs_val WHERE cs_id = ?1 AND attr > ?2 AND attr < ?3",
    mv: "DELETE FROM mv_val WHERE mv_id = ?1 AND attr > ?2 AND attr < ?3",
};
const DELETE_ALL: Sql = Sql {
    cs: "DELETE FROM cs_val WHERE cs_id = ?1",
    mv: "DELETE FROM mv_val WHERE mv_id = ?1",
};
const PRESENT: Sql = Sql {
    cs: "SELECT EXISTS (SELECT 1 FROM cs_val WHERE cs_id = ?1 AND attr = ?2 AND value = ?3)",
    mv: "SELECT EXISTS (SELECT 1 FROM mv_val WHERE mv_id = ?1 AND attr = ?2 AND value = ?3)",
};
const COUNT: Sql = Sql {
    cs: "SELECT count(*) FROM cs_val WHERE cs_id = ?1 AND attr = ?2",
    mv: "SELECT count(*) FROM mv_val WHERE mv_id = ?1 AND attr = ?2",
};
const COUNT_UPTO: Sql = Sql {
    cs: "SELECT count(*) FROM (SELECT 1 FROM cs_val WHERE cs_id = ?1 AND attr = ?2 LIMIT ?3)",
    mv: "SELECT count(*) FROM (SELECT 1 FROM mv_val WHERE mv_id = ?1 AND attr = ?2 LIMIT ?3)",
};
const ANY: Sql = Sql {
    cs: "SELECT EXISTS (SELECT 1 FROM cs_val WHERE cs_id = ?1 \
         AND attr = (SELECT id FROM val_attr WHERE name = ?2))",
    mv: "SELECT EXISTS (SELECT 1 FROM mv_val WHERE mv_id = ?1 \
         AND attr = (SELECT id FROM val_attr WHERE name = ?2))",
};
const EXISTS: Sql = Sql {
    cs: "SELECT EXISTS (SELECT 1 FROM cs WHERE id = ?1)",
    mv: "SELECT EXISTS (SELECT 1 FROM mv WHERE id = ?1)",
};
/// The objects of type `?3` whose attribute `?1` holds value `?2`, as a
/// row or as the single value of its body.
const FIND: &str = "SELECT v.mv_id FROM mv_val AS v JOIN mv AS m ON m.id = v.mv_id \
     WHERE v.attr IN (?1, -?1) AND v.value = ?2 AND m.type = ?3";

/// Every statement on the rows, for the test that each is an index search.
#[cfg(test)]
pub(crate) fn queries() -> Vec<String> {
    let mut out: Vec<String> = [
        VALUES,
        INSERT,
        DELETE,
        DELETE_BETWEEN,
        DELETE_ALL,
        PRESENT,
        COUNT,
    ]
    .iter()
    .flat_map(|q| [q.cs.to_owned(), q.mv.to_owned()])
    .collect();
    out.push(FIND.to_owned());
    out.push("SELECT id FROM val_attr WHERE name = ?1".to_owned());
    out.extend(write::BATCH_SQL.iter().cloned());
    out
}

/// The declared row attributes (as this process last declared or loaded
/// them) and the scopes ever declared.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct RowDecl {
    /// Per MA: the declared hologram attributes and their numbers, by name.
    cs: FxHashMap<String, Vec<(String, i64)>>,
    /// Per metaverse object type, likewise.
    mv: FxHashMap<String, Vec<(String, i64)>>,
    /// MAs and types ever declared: their objects may hold rows.
    cs_ever: FxHashSet<String>,
    mv_ever: FxHashSet<String>,
}

impl RowDecl {
    /// As `val_decl` says.
    pub(crate) fn load(conn: &Connection, path: &Path) -> StoreResult<RowDecl> {
        let err = |e| error::sql(path, "read the value rows declared in store", e);
        let mut stmt = conn
            .prepare(
                "SELECT d.side, d.scope, d.attr, d.declared, a.id FROM val_decl AS d \
                 JOIN val_attr AS a ON a.name = d.attr ORDER BY d.side, d.scope, d.attr",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, bool>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(err)?;
        let mut d = RowDecl::default();
        for (side, scope, attr, declared, id) in rows {
            let (now, ever) = if side == Side::Cs as i64 {
                (&mut d.cs, &mut d.cs_ever)
            } else {
                (&mut d.mv, &mut d.mv_ever)
            };
            if declared {
                now.entry(scope.clone()).or_default().push((attr, id));
            }
            ever.insert(scope);
        }
        Ok(d)
    }

    /// The declared attributes of MA `ma`, sorted by name.
    pub(crate) fn cs_attrs(&self, ma: &str) -> &[(String, i64)] {
        self.cs.get(ma).map_or(&[], Vec::as_slice)
    }

    /// The declared attributes of metaverse type `ty`, sorted by name.
    pub(crate) fn mv_attrs(&self, ty: &str) -> &[(String, i64)] {
        self.mv.get(ty).map_or(&[], Vec::as_slice)
    }

    /// The number of metaverse attribute `attr` of type `ty`, if declared.
    pub(crate) fn mv_attr(&self, ty: &str, attr: &str) -> Option<i64> {
        let attrs = self.mv_attrs(ty);
        attrs
            .binary_search_by(|(n, _)| n.as_str().cmp(attr))
            .ok()
            .and_then(|i| attrs.get(i))
            .map(|(_, id)| *id)
    }

    /// Whether objects of MA `ma` may hold rows (it was ever declared).
    pub(crate) fn cs_may_hold(&self, ma: &str) -> bool {
        !self.cs_ever.is_empty() && self.cs_ever.contains(ma)
    }

    /// Whether objects of type `ty` may hold rows.
    pub(crate) fn mv_may_hold(&self, ty: &str) -> bool {
        !self.mv_ever.is_empty() && self.mv_ever.contains(ty)
    }

    /// Whether any connector-space object may hold rows.
    pub(crate) fn any_cs(&self) -> bool {
        !self.cs_ever.is_empty()
    }

    /// Whether any metaverse object may hold rows.
    pub(crate) fn any_mv(&self) -> bool {
        !self.mv_ever.is_empty()
    }

    /// The metaverse attributes declared here and not in `before`, per
    /// type.
    pub(crate) fn mv_added(&self, before: &RowDecl) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = self
            .mv
            .iter()
            .filter_map(|(ty, attrs)| {
                let added: Vec<String> = attrs
                    .iter()
                    .filter(|(a, _)| before.mv_attr(ty, a).is_none())
                    .map(|(a, _)| a.clone())
                    .collect();
                (!added.is_empty()).then(|| (ty.clone(), added))
            })
            .collect();
        out.sort();
        out
    }

    /// Whether the current declaration is `rows`.
    pub(crate) fn declares(&self, rows: &ValueRows) -> bool {
        fn same(
            have: &FxHashMap<String, Vec<(String, i64)>>,
            want: &std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
        ) -> bool {
            let want: Vec<_> = want.iter().filter(|(_, a)| !a.is_empty()).collect();
            want.len() == have.len()
                && want.iter().all(|(scope, attrs)| {
                    have.get(*scope)
                        .is_some_and(|h| h.iter().map(|(n, _)| n).eq(attrs.iter()))
                })
        }
        same(&self.cs, &rows.cs) && same(&self.mv, &rows.mv)
    }
}

/// Make the declaration `rows` (inside the caller's transaction): number
/// new attribute names, mark what is declared now, keep the rest as ever
/// declared. Returns the new declaration.
pub(crate) fn declare(conn: &Connection, path: &Path, rows: &ValueRows) -> StoreResult<RowDecl> {
    let err = |e| error::sql(path, "declare the value rows of store", e);
    conn.execute("UPDATE val_decl SET declared = 0", [])
        .map_err(err)?;
    for (side, map) in [(Side::Cs, &rows.cs), (Side::Mv, &rows.mv)] {
        for (scope, attrs) in map {
            for attr in attrs {
                conn.prepare_cached("INSERT OR IGNORE INTO val_attr (name) VALUES (?1)")
                    .and_then(|mut s| s.execute([attr]))
                    .map_err(err)?;
                conn.prepare_cached(
                    "INSERT INTO val_decl (side, scope, attr, declared) VALUES (?1, ?2, ?3, 1) \
                     ON CONFLICT (side, scope, attr) DO UPDATE SET declared = 1",
                )
                .and_then(|mut s| s.execute(params![side as i64, scope, attr]))
                .map_err(err)?;
            }
        }
    }
    RowDecl::load(conn, path)
}

/// The number of attribute name `attr`, if it was ever declared.
pub(super) fn attr_id(conn: &Connection, path: &Path, attr: &str) -> StoreResult<Option<i64>> {
    conn.prepare_cached("SELECT id FROM val_attr WHERE name = ?1")
        .and_then(|mut s| s.query_row([attr], |r| r.get(0)).optional())
        .map_err(|e| error::sql(path, "read the value rows' attribute names", e))
}
