//! Decoding of bodies: every length and every string's UTF-8 is checked,
//! a damaged body is an error naming why, never a panic.

use super::{
    FORMAT, FORMAT_V1, MAX_DEPTH, T_BINARY, T_FALSE, T_INTEGER, T_MULTI, T_REFERENCE, T_REMOVE,
    T_ROWS, T_STRING, T_TRUE,
};
use crate::sqlite::names::Names;
use autosync_model::{
    AttrChanges, Attributes, Connection, CsObject, ErrorStage, ExportKind, ImportKind, MvObject,
    MvValue, ObjectError, PendingExport, PendingImport, Value, ValueChanges, ValueDelta,
};
use std::collections::BTreeMap;

mod skim;

pub(crate) use skim::{cs_pending_export_kind, cs_spelling};

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

/// The attributes of a body whose values are rows (the marker
/// [`T_ROWS`]): decoded as the placeholder `Value::Multi([])`, for a full
/// read to put the rows in. Empty (no allocation) for most bodies.
pub(crate) type Marks = Vec<String>;

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
    /// The attributes read whose values are rows.
    marks: Marks,
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
            marks: Marks::new(),
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
            T_REFERENCE => Value::Reference(self.i64()?),
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
            T_INTEGER | T_REFERENCE => {
                self.u64()?;
            }
            T_FALSE | T_TRUE | T_ROWS => {}
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

    /// Step over a name (see the module's layout) without reading it.
    fn skip_name(&mut self) -> R<()> {
        if !self.numbered {
            return self.bytes().map(drop);
        }
        let at = self.at;
        let v = self.u64()?;
        if v & 1 == 0 {
            let n =
                usize::try_from(v >> 1).map_err(|_| format!("length at byte {at} too large"))?;
            if n > self.b.len() - self.at {
                return Err(format!(
                    "length {n} at byte {at} runs past the end ({} bytes)",
                    self.b.len()
                ));
            }
            self.at += n;
        }
        Ok(())
    }

    /// Step over attributes (a map of names to values).
    fn skip_attributes(&mut self) -> R<()> {
        let n = self.len()?;
        for _ in 0..n {
            self.skip_name()?;
            self.skip_value(0)?;
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
        self.attributes_of(false)
    }

    /// Attributes where a value may be the marker of rows (a hologram's).
    fn attributes_of(&mut self, rows: bool) -> R<Attributes> {
        // `len` is at most the bytes left, so the room made is bounded.
        let n = self.len()?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let k = self.name()?;
            let v = self.value_or_rows(rows, &k)?;
            out.push((k, v));
        }
        Ok(sorted_map(out))
    }

    /// A value, or (`rows`) the marker of rows: the placeholder, with
    /// attribute `k` noted.
    fn value_or_rows(&mut self, rows: bool, k: &str) -> R<Value> {
        let t = self.byte()?;
        if t == T_ROWS {
            if !rows {
                return Err(format!("rows marker out of place at byte {}", self.at - 1));
            }
            self.marks.push(k.to_owned());
            return Ok(Value::Multi(Vec::new()));
        }
        self.value_tagged(t, 0)
    }

    fn values(&mut self) -> R<Vec<Value>> {
        let n = self.len()?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.value()?);
        }
        Ok(out)
    }

    fn value_changes(&mut self) -> R<ValueChanges> {
        let n = self.len()?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let k = self.name()?;
            let add = self.values()?;
            let remove = self.values()?;
            out.push((k, ValueDelta { add, remove }));
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
            values: Default::default(),
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

/// Decode a connector-space object; its id is set to `id`. An attribute
/// whose values are rows is the placeholder (a light object).
pub(crate) fn decode_cs(id: i64, b: &[u8], names: &Names) -> Result<CsObject, BodyError> {
    decode_cs_marked(id, b, names).map(|(o, _)| o)
}

/// [`decode_cs`], with the attributes whose values are rows.
pub(crate) fn decode_cs_marked(
    id: i64,
    b: &[u8],
    names: &Names,
) -> Result<(CsObject, Marks), BodyError> {
    let mut r = Reader::new(b, names);
    let res = cs_fields(&mut r, id);
    let marks = std::mem::take(&mut r.marks);
    r.outcome(res).map(|o| (o, marks))
}

/// A value from its canonical bytes ([`super::encode_value`]: a value
/// row's key).
pub(crate) fn decode_value(b: &[u8]) -> Result<Value, String> {
    let names = Names::default();
    let mut r = Reader::new(b, &names);
    let v = r.value()?;
    r.end()?;
    Ok(v)
}

fn cs_fields(r: &mut Reader<'_>, id: i64) -> R<CsObject> {
    r.format()?;
    let ma = r.name()?;
    let anchor = r.str()?;
    let dn = r.str()?;
    let object_type = r.name()?;
    let hologram = r.attributes_of(true)?;
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
            values: Default::default(),
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
    let mut pending_import = pending_import;
    let mut pending_export = pending_export;
    let mut unconfirmed_export = unconfirmed_export;
    // The pending values' trailer (none in older bodies).
    if r.at < r.b.len() {
        if r.byte()? != 1 {
            return Err(format!("bad pending values flag at byte {}", r.at - 1));
        }
        let pi = r.value_changes()?;
        let pe = r.value_changes()?;
        let ue = r.value_changes()?;
        for (values, slot) in [
            (pi, pending_import.as_mut().map(|p| &mut p.values)),
            (pe, pending_export.as_mut().map(|p| &mut p.values)),
            (ue, unconfirmed_export.as_mut().map(|p| &mut p.values)),
        ] {
            match slot {
                Some(slot) => *slot = values,
                None if values.is_empty() => {}
                None => return Err("pending values of no pending change".into()),
            }
        }
    }
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
/// the rest (the index keys of a stored object): `found(attr, value,
/// rows)` for each attribute `pick` selects (`rows`: its values are rows,
/// `value` the placeholder).
pub(crate) fn mv_attrs(
    b: &[u8],
    names: &Names,
    pick: &dyn Fn(&str) -> bool,
    found: &mut dyn FnMut(&str, &Value, bool),
) -> Result<(), BodyError> {
    let mut r = Reader::new(b, names);
    let res = mv_attr_fields(&mut r, pick, found);
    r.outcome(res)
}

fn mv_attr_fields(
    r: &mut Reader<'_>,
    pick: &dyn Fn(&str) -> bool,
    found: &mut dyn FnMut(&str, &Value, bool),
) -> R<()> {
    r.format()?;
    r.name_ref()?;
    let n = r.len()?;
    for _ in 0..n {
        let k = r.name_ref()?;
        if pick(k) {
            let before = r.marks.len();
            let v = r.value_or_rows(true, k)?;
            found(k, &v, r.marks.len() > before);
        } else {
            r.skip_value(0)?;
        }
        r.name_ref()?;
    }
    r.end()
}

/// Decode a metaverse object; its id is set to `id`. An attribute whose
/// values are rows is the placeholder (a light object).
#[cfg(test)]
pub(crate) fn decode_mv(id: i64, b: &[u8], names: &Names) -> Result<MvObject, BodyError> {
    decode_mv_marked(id, b, names).map(|(o, _)| o)
}

/// A metaverse object (a light one, as `decode_mv` gives it) and the
/// attributes whose values are rows.
pub(crate) fn decode_mv_marked(
    id: i64,
    b: &[u8],
    names: &Names,
) -> Result<(MvObject, Marks), BodyError> {
    let mut r = Reader::new(b, names);
    let res = mv_fields(&mut r, id);
    let marks = std::mem::take(&mut r.marks);
    r.outcome(res).map(|o| (o, marks))
}

fn mv_fields(r: &mut Reader<'_>, id: i64) -> R<MvObject> {
    r.format()?;
    let object_type = r.name()?;
    let n = r.len()?;
    let mut attributes = Vec::with_capacity(n);
    for _ in 0..n {
        let k = r.name()?;
        let value = r.value_or_rows(true, &k)?;
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
