//! Encoding of bodies (see the parent module for the layout).

#[cfg(test)]
use super::FORMAT_V1;
use super::{
    FORMAT, T_BINARY, T_FALSE, T_INTEGER, T_MULTI, T_REFERENCE, T_REMOVE, T_ROWS, T_STRING, T_TRUE,
};
use crate::sqlite::names::Names;
use autosync_model::{
    AttrChanges, Attributes, Connection, CsObject, ErrorStage, ExportKind, ImportKind, MvObject,
    PendingExport, Value, ValueChanges,
};

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
/// plain text (format [`FORMAT_V1`](super::FORMAT_V1), kept for tests).
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
        Value::Reference(id) => {
            buf.push(T_REFERENCE);
            put_i64(buf, *id);
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

/// A value's canonical bytes (its tag and payload, as bodies hold it):
/// the key of a value row, so values compare exactly.
pub(crate) fn encode_value(buf: &mut Vec<u8>, v: &Value) {
    buf.clear();
    put_value(buf, v);
}

/// [`encode_value`] appended to `buf`.
pub(crate) fn append_value(buf: &mut Vec<u8>, v: &Value) {
    put_value(buf, v);
}

/// Whether attribute `k` of value `v` is written as rows: a multi-value of
/// an attribute in `rows` (sorted names; empty for most objects).
#[inline]
pub(crate) fn as_rows(rows: &[(String, i64)], k: &str, v: &Value) -> bool {
    !rows.is_empty()
        && matches!(v, Value::Multi(_))
        && rows.binary_search_by(|(n, _)| n.as_str().cmp(k)).is_ok()
}

fn put_attributes(
    buf: &mut Vec<u8>,
    names: impl PutName,
    attrs: &Attributes,
    rows: &[(String, i64)],
) {
    put_len(buf, attrs.len());
    for (k, v) in attrs {
        names.put(buf, k);
        if as_rows(rows, k, v) {
            buf.push(T_ROWS);
        } else {
            put_value(buf, v);
        }
    }
}

fn put_value_changes(buf: &mut Vec<u8>, names: impl PutName, changes: &ValueChanges) {
    put_len(buf, changes.len());
    for (k, d) in changes {
        names.put(buf, k);
        for list in [&d.add, &d.remove] {
            put_len(buf, list.len());
            for v in list {
                put_value(buf, v);
            }
        }
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
#[cfg(test)]
pub(crate) fn encode_cs(buf: &mut Vec<u8>, names: &Names, o: &CsObject) {
    encode_cs_as(buf, FORMAT, names, o, &[]);
}

/// A connector-space object's body with the multi-values of the hologram
/// attributes in `rows` (sorted) written as the marker of rows.
pub(crate) fn encode_cs_rows(
    buf: &mut Vec<u8>,
    names: &Names,
    o: &CsObject,
    rows: &[(String, i64)],
) {
    encode_cs_as(buf, FORMAT, names, o, rows);
}

fn encode_cs_as(
    buf: &mut Vec<u8>,
    format: u8,
    names: impl PutName,
    o: &CsObject,
    rows: &[(String, i64)],
) {
    buf.clear();
    buf.push(format);
    names.put(buf, &o.ma);
    put_str(buf, &o.anchor);
    put_str(buf, &o.dn);
    names.put(buf, &o.object_type);
    put_attributes(buf, names, &o.hologram, rows);
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
            put_attributes(buf, names, &p.attributes, &[]);
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
    // The pending values, only when there are some (see the module doc).
    let none = ValueChanges::new();
    let pi = o.pending_import.as_ref().map_or(&none, |p| &p.values);
    let pe = o.pending_export.as_ref().map_or(&none, |p| &p.values);
    let ue = o.unconfirmed_export.as_ref().map_or(&none, |p| &p.values);
    if !(pi.is_empty() && pe.is_empty() && ue.is_empty()) {
        buf.push(1);
        for changes in [pi, pe, ue] {
            put_value_changes(buf, names, changes);
        }
    }
}

/// Encode a metaverse object (its id is the row's id, not stored).
#[cfg(test)]
pub(crate) fn encode_mv(buf: &mut Vec<u8>, names: &Names, o: &MvObject) {
    encode_mv_as(buf, FORMAT, names, o, &[]);
}

/// A metaverse object's body with the multi-values of the attributes in
/// `rows` (sorted) written as the marker of rows.
pub(crate) fn encode_mv_rows(
    buf: &mut Vec<u8>,
    names: &Names,
    o: &MvObject,
    rows: &[(String, i64)],
) {
    encode_mv_as(buf, FORMAT, names, o, rows);
}

fn encode_mv_as(
    buf: &mut Vec<u8>,
    format: u8,
    names: impl PutName,
    o: &MvObject,
    rows: &[(String, i64)],
) {
    buf.clear();
    buf.push(format);
    names.put(buf, &o.object_type);
    put_len(buf, o.attributes.len());
    // Values of one contributor in a row (the usual case) repeat the bytes
    // of its name, looked up once.
    let mut last: Option<(&str, std::ops::Range<usize>)> = None;
    for (k, v) in &o.attributes {
        names.put(buf, k);
        if as_rows(rows, k, &v.value) {
            buf.push(T_ROWS);
        } else {
            put_value(buf, &v.value);
        }
        match &last {
            Some((c, bytes)) if *c == v.contributor => buf.extend_from_within(bytes.clone()),
            _ => {
                let start = buf.len();
                names.put(buf, &v.contributor);
                last = Some((&v.contributor, start..buf.len()));
            }
        }
    }
}

/// The encoders of format 0xB1 (schema version 3), kept to prove that
/// its bodies still decode: the same layout with every name as text.
#[cfg(test)]
pub(crate) fn encode_cs_v1(buf: &mut Vec<u8>, o: &CsObject) {
    encode_cs_as(buf, FORMAT_V1, Text, o, &[]);
}

#[cfg(test)]
pub(crate) fn encode_mv_v1(buf: &mut Vec<u8>, o: &MvObject) {
    encode_mv_as(buf, FORMAT_V1, Text, o, &[]);
}
