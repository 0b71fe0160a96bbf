//! The compact binary body of connector-space and metaverse objects (schema
//! version 2). JSON bodies cost a third of a sync in encoding, decoding and
//! the allocations they make; this hand-written form is a few times faster
//! and about half the size.
//!
//! Layout: a format byte ([`FORMAT`]), then the fields in declaration order.
//! Names (attribute names, object types, MA names and contributors) are a
//! varint `v`: `v` odd is number `v >> 1` of the store's dictionary (see
//! `names`), `v` even is text of `v >> 1` bytes that follow. Format
//! [`FORMAT_V1`] (schema version 3, before the dictionary) wrote names as
//! plain strings; it is still read.
//! Integers are LEB128 varints (signed ones zigzag-encoded), strings and
//! byte strings a varint length then the bytes, options a `0`/`1` byte then
//! the value, maps a varint count then key/value pairs. A [`Value`] is a tag
//! byte (`0` string, `1` integer, `2` false, `3` true, `4` binary, `5` list)
//! then its payload. Decoding checks every length and every string's UTF-8:
//! a damaged body is a decode error naming the object, never a panic.

use super::names::Names;
use autosync_model::{
    AttrChanges, Attributes, Connection, CsObject, ErrorStage, ExportKind, ImportKind, MvObject,
    MvValue, ObjectError, PendingExport, PendingImport, Value,
};
use std::collections::BTreeMap;

/// The first byte of every body this build writes.
pub(crate) const FORMAT: u8 = 0xB2;
/// The format of schema version 3: every name written as text.
pub(crate) const FORMAT_V1: u8 = 0xB1;

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

/// How an encoder writes a name: a dictionary (format [`FORMAT`]) or as
/// plain text (format [`FORMAT_V1`], kept for tests).
trait PutName: Copy {
    fn put(self, buf: &mut Vec<u8>, s: &str);
}

/// A name: its number when the dictionary has one, else its text.
impl PutName for &Names {
    #[inline]
    fn put(self, buf: &mut Vec<u8>, s: &str) {
        match self.id(s) {
            Some(id) => put_u64(buf, (u64::from(id) << 1) | 1),
            None => {
                put_u64(buf, (s.len() as u64) << 1);
                buf.extend_from_slice(s.as_bytes());
            }
        }
    }
}

/// Every name as a plain string (format [`FORMAT_V1`]).
#[cfg(test)]
#[derive(Clone, Copy)]
struct Text;

#[cfg(test)]
impl PutName for Text {
    fn put(self, buf: &mut Vec<u8>, s: &str) {
        put_str(buf, s);
    }
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

fn put_attributes(buf: &mut Vec<u8>, names: impl PutName, attrs: &Attributes) {
    put_len(buf, attrs.len());
    for (k, v) in attrs {
        names.put(buf, k);
        put_value(buf, v);
    }
}

fn put_changes(buf: &mut Vec<u8>, names: impl PutName, changes: &AttrChanges) {
    put_len(buf, changes.len());
    for (k, v) in changes {
        names.put(buf, k);
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

fn put_pending_export(buf: &mut Vec<u8>, names: impl PutName, p: Option<&PendingExport>) {
    let Some(p) = p else {
        buf.push(0);
        return;
    };
    buf.push(1);
    buf.push(export_kind(p.kind));
    put_changes(buf, names, &p.changes);
    put_opt_str(buf, p.new_dn.as_deref());
}

/// Encode a connector-space object (its id is the row's id, not stored).
pub(crate) fn encode_cs(buf: &mut Vec<u8>, names: &Names, o: &CsObject) {
    encode_cs_as(buf, FORMAT, names, o);
}

fn encode_cs_as(buf: &mut Vec<u8>, format: u8, names: impl PutName, o: &CsObject) {
    buf.clear();
    buf.push(format);
    names.put(buf, &o.ma);
    put_str(buf, &o.anchor);
    put_str(buf, &o.dn);
    names.put(buf, &o.object_type);
    put_attributes(buf, names, &o.hologram);
    // Bit 0: present; bit 1: created by provisioning (bodies written
    // before that bit existed hold 0 or 1, read as not provisioned).
    buf.push(u8::from(o.present) | (u8::from(o.provisioned) << 1));
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
            put_attributes(buf, names, &p.attributes);
            put_opt_str(buf, p.dn.as_deref());
            put_opt_str(buf, p.object_type.as_deref());
        }
        None => buf.push(0),
    }
    put_pending_export(buf, names, o.pending_export.as_ref());
    put_pending_export(buf, names, o.unconfirmed_export.as_ref());
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
pub(crate) fn encode_mv(buf: &mut Vec<u8>, names: &Names, o: &MvObject) {
    encode_mv_as(buf, FORMAT, names, o);
}

fn encode_mv_as(buf: &mut Vec<u8>, format: u8, names: impl PutName, o: &MvObject) {
    buf.clear();
    buf.push(format);
    names.put(buf, &o.object_type);
    put_len(buf, o.attributes.len());
    for (k, v) in &o.attributes {
        names.put(buf, k);
        put_value(buf, &v.value);
        names.put(buf, &v.contributor);
    }
}

/// The encoders of format 0xB1 (schema version 3), kept to prove that
/// its bodies still decode: the same layout with every name as text.
#[cfg(test)]
pub(crate) fn encode_cs_v1(buf: &mut Vec<u8>, o: &CsObject) {
    encode_cs_as(buf, FORMAT_V1, Text, o);
}

#[cfg(test)]
pub(crate) fn encode_mv_v1(buf: &mut Vec<u8>, o: &MvObject) {
    encode_mv_as(buf, FORMAT_V1, Text, o);
}

// ---- decoding -------------------------------------------------------------

/// Why a body did not decode.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// The body uses a name number the dictionary copy lacks: read the
    /// dictionary again and retry (see `names`).
    UnknownName(u64),
    /// The body is damaged (or of an unknown format): why.
    Damaged(String),
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyError::UnknownName(n) => {
                write!(f, "name number {n} is not in the store's name dictionary")
            }
            BodyError::Damaged(why) => f.write_str(why),
        }
    }
}

/// The map of `pairs`, written in key order by the encoder: building it in
/// one go compares each key with its neighbour only, where inserting one by
/// one searches the map for each (a damaged body out of order still gives
/// a map; the encoder never writes a key twice).
fn sorted_map<V>(pairs: Vec<(String, V)>) -> BTreeMap<String, V> {
    pairs.into_iter().collect()
}

/// Reads a body; every method fails with a short reason on damaged input.
struct Reader<'a> {
    b: &'a [u8],
    at: usize,
    names: &'a Names,
    /// Names may be numbers (format [`FORMAT`]; else [`FORMAT_V1`]).
    numbered: bool,
    /// A name number the dictionary lacked (the error is then this, not
    /// damage).
    unknown: Option<u64>,
}

type R<T> = Result<T, String>;

impl<'a> Reader<'a> {
    fn new(b: &'a [u8], names: &'a Names) -> Self {
        Reader {
            b,
            at: 0,
            names,
            numbered: false,
            unknown: None,
        }
    }

    /// The outcome of a decode, told apart: a missing name number or damage.
    fn outcome<T>(&self, res: R<T>) -> Result<T, BodyError> {
        res.map_err(|why| match self.unknown {
            Some(n) => BodyError::UnknownName(n),
            None => BodyError::Damaged(why),
        })
    }

    /// A name (see the module's layout), borrowed from the body or the
    /// dictionary.
    fn name_ref(&mut self) -> R<&'a str> {
        if !self.numbered {
            return self.str_ref();
        }
        let at = self.at;
        let v = self.u64()?;
        if v & 1 == 1 {
            let n = v >> 1;
            let names: &'a Names = self.names;
            return names.name(n).ok_or_else(|| {
                self.unknown = Some(n);
                format!("unknown name number {n} at byte {at}")
            });
        }
        let n = usize::try_from(v >> 1).map_err(|_| format!("length at byte {at} too large"))?;
        if n > self.b.len() - self.at {
            return Err(format!(
                "length {n} at byte {at} runs past the end ({} bytes)",
                self.b.len()
            ));
        }
        let b = &self.b[self.at..self.at + n];
        self.at += n;
        std::str::from_utf8(b).map_err(|e| format!("text at byte {at} is not UTF-8: {e}"))
    }

    fn name(&mut self) -> R<String> {
        self.name_ref().map(str::to_owned)
    }

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
        // `len` is at most the bytes left, so the room made is bounded.
        let n = self.len()?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let k = self.name()?;
            let v = self.value()?;
            out.push((k, v));
        }
        Ok(sorted_map(out))
    }

    fn changes(&mut self) -> R<AttrChanges> {
        let n = self.len()?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let k = self.name()?;
            let t = self.byte()?;
            let v = if t == T_REMOVE {
                None
            } else {
                Some(self.value_tagged(t, 0)?)
            };
            out.push((k, v));
        }
        Ok(sorted_map(out))
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
            FORMAT => {
                self.numbered = true;
                Ok(())
            }
            FORMAT_V1 => Ok(()),
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
pub(crate) fn decode_cs(id: i64, b: &[u8], names: &Names) -> Result<CsObject, BodyError> {
    let mut r = Reader::new(b, names);
    let res = cs_fields(&mut r, id);
    r.outcome(res)
}

fn cs_fields(r: &mut Reader<'_>, id: i64) -> R<CsObject> {
    r.format()?;
    let ma = r.name()?;
    let anchor = r.str()?;
    let dn = r.str()?;
    let object_type = r.name()?;
    let hologram = r.attributes()?;
    let (present, provisioned) = match r.byte()? {
        b @ 0..=3 => (b & 1 != 0, b & 2 != 0),
        b => return Err(format!("bad object flags {b}")),
    };
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
        provisioned,
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
    names: &Names,
    pick: &dyn Fn(&str) -> bool,
    found: &mut dyn FnMut(&str, &Value),
) -> Result<(), BodyError> {
    let mut r = Reader::new(b, names);
    let res = mv_attr_fields(&mut r, pick, found);
    r.outcome(res)
}

fn mv_attr_fields(
    r: &mut Reader<'_>,
    pick: &dyn Fn(&str) -> bool,
    found: &mut dyn FnMut(&str, &Value),
) -> R<()> {
    r.format()?;
    r.name_ref()?;
    let n = r.len()?;
    for _ in 0..n {
        let k = r.name_ref()?;
        if pick(k) {
            let v = r.value()?;
            found(k, &v);
        } else {
            r.skip_value(0)?;
        }
        r.name_ref()?;
    }
    r.end()
}

/// Decode a metaverse object; its id is set to `id`.
pub(crate) fn decode_mv(id: i64, b: &[u8], names: &Names) -> Result<MvObject, BodyError> {
    let mut r = Reader::new(b, names);
    let res = mv_fields(&mut r, id);
    r.outcome(res)
}

fn mv_fields(r: &mut Reader<'_>, id: i64) -> R<MvObject> {
    r.format()?;
    let object_type = r.name()?;
    let n = r.len()?;
    let mut attributes = Vec::with_capacity(n);
    for _ in 0..n {
        let k = r.name()?;
        let value = r.value()?;
        let contributor = r.name()?;
        attributes.push((k, MvValue { value, contributor }));
    }
    r.end()?;
    Ok(MvObject {
        id,
        object_type,
        attributes: sorted_map(attributes),
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
            (".*", ".*", ".*", ".*", attrs(), any::<(bool, bool)>()),
            (connection, import, export(), export(), error),
        )
            .prop_map(
                |(
                    (ma, anchor, dn, object_type, hologram, (present, provisioned)),
                    (connection, pending_import, pending_export, unconfirmed_export, error),
                )| CsObject {
                    id: 7,
                    ma,
                    anchor,
                    dn,
                    object_type,
                    hologram,
                    present,
                    provisioned,
                    connection,
                    pending_import,
                    pending_export,
                    unconfirmed_export,
                    error,
                },
            )
    }

    /// A dictionary holding some of the names the strategies make (short
    /// ones), so that bodies mix numbers and text.
    fn dict() -> Names {
        Names::of(&["", "a", "b", "c", "hr", "0", "ab", "person"])
    }

    proptest! {
        #[test]
        fn every_cs_object_round_trips(o in cs()) {
            for names in [Names::default(), dict()] {
                let mut buf = Vec::new();
                encode_cs(&mut buf, &names, &o);
                prop_assert_eq!(decode_cs(7, &buf, &names).unwrap(), o.clone());
            }
        }

        #[test]
        fn a_body_of_schema_version_3_still_decodes(o in cs()) {
            // Format 0xB1 wrote every name as text: what `encode_cs` writes
            // with an empty dictionary, but for the varint of each name's
            // length, which was the plain length.
            let mut buf = Vec::new();
            encode_cs_v1(&mut buf, &o);
            prop_assert_eq!(decode_cs(7, &buf, &dict()).unwrap(), o);
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
            let names = dict();
            let mut buf = Vec::new();
            encode_mv(&mut buf, &names, &o);
            prop_assert_eq!(decode_mv(3, &buf, &names).unwrap(), o.clone());
            // Picking some attributes finds exactly those, skipping the rest.
            let picked = |k: &str| k.len().is_multiple_of(2);
            let mut found = Vec::new();
            mv_attrs(&buf, &names, &picked, &mut |k, v| found.push((k.to_owned(), v.clone()))).unwrap();
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
            let names = dict();
            let mut buf = Vec::new();
            encode_cs(&mut buf, &names, &o);
            let n = cut.index(buf.len());
            prop_assert!(decode_cs(1, &buf[..n], &names).is_err());
            let i = flip.0.index(buf.len());
            buf[i] ^= flip.1 | 1;
            let _ = decode_cs(1, &buf, &names);
            let _ = decode_mv(1, &buf, &names);
            let _ = mv_attrs(&buf, &names, &|_| true, &mut |_, _| {});
        }
    }

    #[test]
    fn a_json_body_of_an_older_store_is_named_as_such() {
        let err = decode_cs(1, br#"{"ma":"hr"}"#, &Names::default()).unwrap_err();
        assert!(err.to_string().contains("schema version 1"), "{err}");
    }

    #[test]
    fn names_are_numbers_when_the_dictionary_has_them_and_text_otherwise() {
        let mut o = MvObject {
            id: 1,
            object_type: "person".into(),
            attributes: BTreeMap::new(),
        };
        for (k, v) in [("mail", "ada@example.com"), ("employeeId", "E1")] {
            o.attributes.insert(
                k.into(),
                MvValue {
                    value: Value::String(v.into()),
                    contributor: "hr".into(),
                },
            );
        }
        let text = {
            let mut b = Vec::new();
            encode_mv(&mut b, &Names::default(), &o);
            b
        };
        let names = Names::of(&["person", "hr", "mail", "employeeId"]);
        let mut numbered = Vec::new();
        encode_mv(&mut numbered, &names, &o);
        // Five names of 6, 4, 10, 2 and 2 bytes, each after a one-byte
        // length, became five one-byte numbers.
        assert_eq!(text.len() - numbered.len(), 6 + 4 + 10 + 2 + 2);
        assert_eq!(decode_mv(1, &numbered, &names).unwrap(), o);
        // A copy of the dictionary that lacks a number says so (the caller
        // reads the dictionary again), instead of calling the body damaged
        // (attributes are in name order: employeeId, number 4, comes first).
        let older = Names::of(&["person", "hr"]);
        assert!(matches!(
            decode_mv(1, &numbered, &older),
            Err(BodyError::UnknownName(4))
        ));
        assert!(matches!(
            mv_attrs(&numbered, &older, &|_| true, &mut |_, _| {}),
            Err(BodyError::UnknownName(4))
        ));
    }
}
