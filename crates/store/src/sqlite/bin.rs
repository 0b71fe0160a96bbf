//! The compact binary body of connector-space and metaverse objects (schema
//! version 2). JSON bodies cost a third of a sync in encoding, decoding and
//! the allocations they make; this hand-written form is a few times faster
//! and about half the size.
//!
//! Layout: a format byte ([`FORMAT`]), then the fields in declaration order.
//! Integers are LEB128 varints (signed ones zigzag-encoded), strings and
//! byte strings a varint length then the bytes, options a `0`/`1` byte then
//! the value, maps a varint count then key/value pairs. A [`Value`] is a tag
//! byte (`0` string, `1` integer, `2` false, `3` true, `4` binary, `5` list)
//! then its payload. Decoding checks every length and every string's UTF-8:
//! a damaged body is a decode error naming the object, never a panic.

use autosync_model::{
    AttrChanges, Attributes, Connection, CsObject, ErrorStage, ExportKind, ImportKind, MvObject,
    MvValue, ObjectError, PendingExport, PendingImport, Value,
};
use std::collections::BTreeMap;

/// The first byte of every body of this format.
pub(crate) const FORMAT: u8 = 0xB1;

const T_STRING: u8 = 0;
const T_INTEGER: u8 = 1;
const T_FALSE: u8 = 2;
const T_TRUE: u8 = 3;
const T_BINARY: u8 = 4;
const T_MULTI: u8 = 5;
/// An attribute change that removes the attribute.
const T_REMOVE: u8 = 6;

/// Nesting limit of multi-valued values when decoding (a damaged body must
/// not overflow the stack).
const MAX_DEPTH: u32 = 32;

// ---- encoding -------------------------------------------------------------

fn put_u64(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn put_i64(buf: &mut Vec<u8>, v: i64) {
    put_u64(buf, ((v << 1) ^ (v >> 63)) as u64);
}

fn put_len(buf: &mut Vec<u8>, n: usize) {
    put_u64(buf, n as u64);
}

fn put_bytes(buf: &mut Vec<u8>, b: &[u8]) {
    put_len(buf, b.len());
    buf.extend_from_slice(b);
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    put_bytes(buf, s.as_bytes());
}

fn put_opt_str(buf: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => {
            buf.push(1);
            put_str(buf, s);
        }
        None => buf.push(0),
    }
}

fn put_value(buf: &mut Vec<u8>, v: &Value) {
    match v {
        Value::String(s) => {
            buf.push(T_STRING);
            put_str(buf, s);
        }
        Value::Integer(i) => {
            buf.push(T_INTEGER);
            put_i64(buf, *i);
        }
        Value::Boolean(false) => buf.push(T_FALSE),
        Value::Boolean(true) => buf.push(T_TRUE),
        Value::Binary(b) => {
            buf.push(T_BINARY);
            put_bytes(buf, b);
        }
        Value::Multi(vs) => {
            buf.push(T_MULTI);
            put_len(buf, vs.len());
            for v in vs {
                put_value(buf, v);
            }
        }
    }
}

fn put_attributes(buf: &mut Vec<u8>, attrs: &Attributes) {
    put_len(buf, attrs.len());
    for (k, v) in attrs {
        put_str(buf, k);
        put_value(buf, v);
    }
}

fn put_changes(buf: &mut Vec<u8>, changes: &AttrChanges) {
    put_len(buf, changes.len());
    for (k, v) in changes {
        put_str(buf, k);
        match v {
            Some(v) => put_value(buf, v),
            None => buf.push(T_REMOVE),
        }
    }
}

fn import_kind(k: ImportKind) -> u8 {
    match k {
        ImportKind::Add => 0,
        ImportKind::Update => 1,
        ImportKind::Delete => 2,
        ImportKind::DeleteAdd => 3,
    }
}

fn export_kind(k: ExportKind) -> u8 {
    match k {
        ExportKind::Add => 0,
        ExportKind::Update => 1,
        ExportKind::Rename => 2,
        ExportKind::Delete => 3,
        ExportKind::DeleteAdd => 4,
    }
}

fn put_pending_export(buf: &mut Vec<u8>, p: Option<&PendingExport>) {
    let Some(p) = p else {
        buf.push(0);
        return;
    };
    buf.push(1);
    buf.push(export_kind(p.kind));
    put_changes(buf, &p.changes);
    put_opt_str(buf, p.new_dn.as_deref());
}

/// Encode a connector-space object (its id is the row's id, not stored).
pub(crate) fn encode_cs(buf: &mut Vec<u8>, o: &CsObject) {
    buf.clear();
    buf.push(FORMAT);
    put_str(buf, &o.ma);
    put_str(buf, &o.anchor);
    put_str(buf, &o.dn);
    put_str(buf, &o.object_type);
    put_attributes(buf, &o.hologram);
    buf.push(u8::from(o.present));
    match o.connection {
        Connection::Disconnector => buf.push(0),
        Connection::Connector { mv_id } => {
            buf.push(1);
            put_i64(buf, mv_id);
        }
        Connection::ExplicitDisconnector => buf.push(2),
    }
    match &o.pending_import {
        Some(p) => {
            buf.push(1);
            buf.push(import_kind(p.kind));
            put_attributes(buf, &p.attributes);
            put_opt_str(buf, p.dn.as_deref());
            put_opt_str(buf, p.object_type.as_deref());
        }
        None => buf.push(0),
    }
    put_pending_export(buf, o.pending_export.as_ref());
    put_pending_export(buf, o.unconfirmed_export.as_ref());
    match &o.error {
        Some(e) => {
            buf.push(1);
            buf.push(match e.stage {
                ErrorStage::Import => 0,
                ErrorStage::Sync => 1,
                ErrorStage::Export => 2,
            });
            put_str(buf, &e.error_type);
            put_str(buf, &e.detail);
            match e.run_id {
                Some(id) => {
                    buf.push(1);
                    put_i64(buf, id);
                }
                None => buf.push(0),
            }
        }
        None => buf.push(0),
    }
}

/// Encode a metaverse object (its id is the row's id, not stored).
pub(crate) fn encode_mv(buf: &mut Vec<u8>, o: &MvObject) {
    buf.clear();
    buf.push(FORMAT);
    put_str(buf, &o.object_type);
    put_len(buf, o.attributes.len());
    for (k, v) in &o.attributes {
        put_str(buf, k);
        put_value(buf, &v.value);
        put_str(buf, &v.contributor);
    }
}

// ---- decoding -------------------------------------------------------------

/// Reads a body; every method fails with a short reason on damaged input.
struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

type R<T> = Result<T, String>;

impl<'a> Reader<'a> {
    fn byte(&mut self) -> R<u8> {
        let v = *self
            .b
            .get(self.at)
            .ok_or_else(|| format!("truncated at byte {}", self.at))?;
        self.at += 1;
        Ok(v)
    }

    fn u64(&mut self) -> R<u64> {
        let mut v: u64 = 0;
        let mut shift = 0;
        loop {
            let b = self.byte()?;
            if shift >= 64 {
                return Err(format!("integer too long at byte {}", self.at));
            }
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
            shift += 7;
        }
    }

    fn i64(&mut self) -> R<i64> {
        let z = self.u64()?;
        Ok(((z >> 1) as i64) ^ -((z & 1) as i64))
    }

    fn len(&mut self) -> R<usize> {
        let n = self.u64()?;
        let n = usize::try_from(n).map_err(|_| format!("length {n} too large"))?;
        if n > self.b.len() - self.at {
            return Err(format!(
                "length {n} at byte {} runs past the end ({} bytes)",
                self.at,
                self.b.len()
            ));
        }
        Ok(n)
    }

    fn bytes(&mut self) -> R<&'a [u8]> {
        let n = self.len()?;
        let s = &self.b[self.at..self.at + n];
        self.at += n;
        Ok(s)
    }

    fn str(&mut self) -> R<String> {
        let at = self.at;
        let b = self.bytes()?;
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|e| format!("text at byte {at} is not UTF-8: {e}"))
    }

    fn flag(&mut self, what: &str) -> R<bool> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(format!("bad {what} flag {b} at byte {}", self.at - 1)),
        }
    }

    fn opt_str(&mut self) -> R<Option<String>> {
        if self.flag("option")? {
            self.str().map(Some)
        } else {
            Ok(None)
        }
    }

    fn value_tagged(&mut self, tag: u8, depth: u32) -> R<Value> {
        Ok(match tag {
            T_STRING => Value::String(self.str()?),
            T_INTEGER => Value::Integer(self.i64()?),
            T_FALSE => Value::Boolean(false),
            T_TRUE => Value::Boolean(true),
            T_BINARY => Value::Binary(self.bytes()?.to_vec()),
            T_MULTI => {
                if depth >= MAX_DEPTH {
                    return Err("values nested too deeply".into());
                }
                let n = self.len()?;
                let mut vs = Vec::with_capacity(n);
                for _ in 0..n {
                    let t = self.byte()?;
                    vs.push(self.value_tagged(t, depth + 1)?);
                }
                Value::Multi(vs)
            }
            t => return Err(format!("bad value tag {t} at byte {}", self.at - 1)),
        })
    }

    fn skip_value(&mut self, depth: u32) -> R<()> {
        match self.byte()? {
            T_STRING | T_BINARY => {
                self.bytes()?;
            }
            T_INTEGER => {
                self.u64()?;
            }
            T_FALSE | T_TRUE => {}
            T_MULTI => {
                if depth >= MAX_DEPTH {
                    return Err("values nested too deeply".into());
                }
                let n = self.len()?;
                for _ in 0..n {
                    self.skip_value(depth + 1)?;
                }
            }
            t => return Err(format!("bad value tag {t} at byte {}", self.at - 1)),
        }
        Ok(())
    }

    fn str_ref(&mut self) -> R<&'a str> {
        let at = self.at;
        let b = self.bytes()?;
        std::str::from_utf8(b).map_err(|e| format!("text at byte {at} is not UTF-8: {e}"))
    }

    fn value(&mut self) -> R<Value> {
        let t = self.byte()?;
        self.value_tagged(t, 0)
    }

    fn attributes(&mut self) -> R<Attributes> {
        let n = self.len()?;
        let mut out = BTreeMap::new();
        for _ in 0..n {
            let k = self.str()?;
            let v = self.value()?;
            out.insert(k, v);
        }
        Ok(out)
    }

    fn changes(&mut self) -> R<AttrChanges> {
        let n = self.len()?;
        let mut out = BTreeMap::new();
        for _ in 0..n {
            let k = self.str()?;
            let t = self.byte()?;
            let v = if t == T_REMOVE {
                None
            } else {
                Some(self.value_tagged(t, 0)?)
            };
            out.insert(k, v);
        }
        Ok(out)
    }

    fn pending_export(&mut self) -> R<Option<PendingExport>> {
        if !self.flag("pending export")? {
            return Ok(None);
        }
        let kind = match self.byte()? {
            0 => ExportKind::Add,
            1 => ExportKind::Update,
            2 => ExportKind::Rename,
            3 => ExportKind::Delete,
            4 => ExportKind::DeleteAdd,
            k => return Err(format!("bad export kind {k}")),
        };
        Ok(Some(PendingExport {
            kind,
            changes: self.changes()?,
            new_dn: self.opt_str()?,
        }))
    }

    fn format(&mut self) -> R<()> {
        match self.byte()? {
            FORMAT => Ok(()),
            b'{' => Err("a JSON body of an older store (schema version 1)".into()),
            b => Err(format!("unknown body format {b:#x}")),
        }
    }

    fn end(&self) -> R<()> {
        if self.at == self.b.len() {
            Ok(())
        } else {
            Err(format!(
                "{} unexpected bytes after the object",
                self.b.len() - self.at
            ))
        }
    }
}

/// Decode a connector-space object; its id is set to `id`.
pub(crate) fn decode_cs(id: i64, b: &[u8]) -> R<CsObject> {
    let mut r = Reader { b, at: 0 };
    r.format()?;
    let ma = r.str()?;
    let anchor = r.str()?;
    let dn = r.str()?;
    let object_type = r.str()?;
    let hologram = r.attributes()?;
    let present = r.flag("present")?;
    let connection = match r.byte()? {
        0 => Connection::Disconnector,
        1 => Connection::Connector { mv_id: r.i64()? },
        2 => Connection::ExplicitDisconnector,
        c => return Err(format!("bad connection state {c}")),
    };
    let pending_import = if r.flag("pending import")? {
        let kind = match r.byte()? {
            0 => ImportKind::Add,
            1 => ImportKind::Update,
            2 => ImportKind::Delete,
            3 => ImportKind::DeleteAdd,
            k => return Err(format!("bad import kind {k}")),
        };
        Some(PendingImport {
            kind,
            attributes: r.attributes()?,
            dn: r.opt_str()?,
            object_type: r.opt_str()?,
        })
    } else {
        None
    };
    let pending_export = r.pending_export()?;
    let unconfirmed_export = r.pending_export()?;
    let error = if r.flag("error")? {
        let stage = match r.byte()? {
            0 => ErrorStage::Import,
            1 => ErrorStage::Sync,
            2 => ErrorStage::Export,
            s => return Err(format!("bad error stage {s}")),
        };
        Some(ObjectError {
            stage,
            error_type: r.str()?,
            detail: r.str()?,
            run_id: if r.flag("run id")? {
                Some(r.i64()?)
            } else {
                None
            },
        })
    } else {
        None
    };
    r.end()?;
    Ok(CsObject {
        id,
        ma,
        anchor,
        dn,
        object_type,
        hologram,
        present,
        connection,
        pending_import,
        pending_export,
        unconfirmed_export,
        error,
    })
}

/// The values of some attributes of a metaverse body, without decoding
/// the rest (the index keys of a stored object): `found(attr, value)` for
/// each attribute `pick` selects.
pub(crate) fn mv_attrs(
    b: &[u8],
    pick: &dyn Fn(&str) -> bool,
    found: &mut dyn FnMut(&str, &Value),
) -> R<()> {
    let mut r = Reader { b, at: 0 };
    r.format()?;
    r.bytes()?;
    let n = r.len()?;
    for _ in 0..n {
        let k = r.str_ref()?;
        if pick(k) {
            let v = r.value()?;
            found(k, &v);
        } else {
            r.skip_value(0)?;
        }
        r.bytes()?;
    }
    r.end()
}

/// Decode a metaverse object; its id is set to `id`.
pub(crate) fn decode_mv(id: i64, b: &[u8]) -> R<MvObject> {
    let mut r = Reader { b, at: 0 };
    r.format()?;
    let object_type = r.str()?;
    let n = r.len()?;
    let mut attributes = BTreeMap::new();
    for _ in 0..n {
        let k = r.str()?;
        let value = r.value()?;
        let contributor = r.str()?;
        attributes.insert(k, MvValue { value, contributor });
    }
    r.end()?;
    Ok(MvObject {
        id,
        object_type,
        attributes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            ".*".prop_map(Value::String),
            any::<i64>().prop_map(Value::Integer),
            any::<bool>().prop_map(Value::Boolean),
            proptest::collection::vec(any::<u8>(), 0..8).prop_map(Value::Binary),
        ];
        leaf.prop_recursive(3, 12, 4, |inner| {
            proptest::collection::vec(inner, 0..4).prop_map(Value::Multi)
        })
    }

    fn attrs() -> impl Strategy<Value = Attributes> {
        proptest::collection::btree_map(".{0,8}", value(), 0..5)
    }

    fn changes() -> impl Strategy<Value = AttrChanges> {
        proptest::collection::btree_map(".{0,8}", proptest::option::of(value()), 0..5)
    }

    fn export() -> impl Strategy<Value = Option<PendingExport>> {
        proptest::option::of((0u8..5, changes(), proptest::option::of(".*")).prop_map(
            |(k, changes, new_dn)| PendingExport {
                kind: [
                    ExportKind::Add,
                    ExportKind::Update,
                    ExportKind::Rename,
                    ExportKind::Delete,
                    ExportKind::DeleteAdd,
                ][usize::from(k)],
                changes,
                new_dn,
            },
        ))
    }

    fn cs() -> impl Strategy<Value = CsObject> {
        let import = proptest::option::of(
            (
                0u8..4,
                attrs(),
                proptest::option::of(".*"),
                proptest::option::of(".*"),
            )
                .prop_map(|(k, attributes, dn, object_type)| PendingImport {
                    kind: [
                        ImportKind::Add,
                        ImportKind::Update,
                        ImportKind::Delete,
                        ImportKind::DeleteAdd,
                    ][usize::from(k)],
                    attributes,
                    dn,
                    object_type,
                }),
        );
        let connection = prop_oneof![
            Just(Connection::Disconnector),
            any::<i64>().prop_map(|mv_id| Connection::Connector { mv_id }),
            Just(Connection::ExplicitDisconnector),
        ];
        let error = proptest::option::of(
            (0u8..3, ".*", ".*", proptest::option::of(any::<i64>())).prop_map(
                |(s, error_type, detail, run_id)| ObjectError {
                    stage: [ErrorStage::Import, ErrorStage::Sync, ErrorStage::Export]
                        [usize::from(s)],
                    error_type,
                    detail,
                    run_id,
                },
            ),
        );
        (
            (".*", ".*", ".*", ".*", attrs(), any::<bool>()),
            (connection, import, export(), export(), error),
        )
            .prop_map(
                |(
                    (ma, anchor, dn, object_type, hologram, present),
                    (connection, pending_import, pending_export, unconfirmed_export, error),
                )| CsObject {
                    id: 7,
                    ma,
                    anchor,
                    dn,
                    object_type,
                    hologram,
                    present,
                    connection,
                    pending_import,
                    pending_export,
                    unconfirmed_export,
                    error,
                },
            )
    }

    proptest! {
        #[test]
        fn every_cs_object_round_trips(o in cs()) {
            let mut buf = Vec::new();
            encode_cs(&mut buf, &o);
            prop_assert_eq!(decode_cs(7, &buf).unwrap(), o);
        }

        #[test]
        fn every_mv_object_round_trips(
            object_type in ".*",
            attrs in proptest::collection::btree_map(".{0,8}", (value(), ".{0,4}"), 0..6),
        ) {
            let o = MvObject {
                id: 3,
                object_type,
                attributes: attrs
                    .into_iter()
                    .map(|(k, (value, contributor))| (k, MvValue { value, contributor }))
                    .collect(),
            };
            let mut buf = Vec::new();
            encode_mv(&mut buf, &o);
            prop_assert_eq!(decode_mv(3, &buf).unwrap(), o.clone());
            // Picking some attributes finds exactly those, skipping the rest.
            let picked = |k: &str| k.len().is_multiple_of(2);
            let mut found = Vec::new();
            mv_attrs(&buf, &picked, &mut |k, v| found.push((k.to_owned(), v.clone()))).unwrap();
            let expected: Vec<(String, Value)> = o
                .attributes
                .iter()
                .filter(|(k, _)| picked(k))
                .map(|(k, v)| (k.clone(), v.value.clone()))
                .collect();
            prop_assert_eq!(found, expected);
        }

        #[test]
        fn a_truncated_or_damaged_body_is_an_error_never_a_panic(
            o in cs(), cut in any::<prop::sample::Index>(), flip in any::<(prop::sample::Index, u8)>()
        ) {
            let mut buf = Vec::new();
            encode_cs(&mut buf, &o);
            let n = cut.index(buf.len());
            prop_assert!(decode_cs(1, &buf[..n]).is_err());
            let i = flip.0.index(buf.len());
            buf[i] ^= flip.1 | 1;
            let _ = decode_cs(1, &buf);
            let _ = decode_mv(1, &buf);
            let _ = mv_attrs(&buf, &|_| true, &mut |_, _| {});
        }
    }

    #[test]
    fn a_json_body_of_an_older_store_is_named_as_such() {
        let err = decode_cs(1, br#"{"ma":"hr"}"#).unwrap_err();
        assert!(err.contains("schema version 1"), "{err}");
    }
}
