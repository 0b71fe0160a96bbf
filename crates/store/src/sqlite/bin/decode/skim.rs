//! What an index or a reference needs of a connector-space body without
//! decoding it: the pending export's kind, and how references spell the
//! object. What comes before is skipped, lengths checked, texts not.

use super::super::T_REMOVE;
use super::{BodyError, R, Reader};
use crate::sqlite::names::Names;
use autosync_model::ExportKind;

/// The kind of a connector-space body's pending export, if it has one,
/// without decoding the object: what comes before it is skipped (lengths
/// checked, texts not), so counting the pending deletes of a whole
/// connector space costs a fraction of reading it.
pub(crate) fn cs_pending_export_kind(
    _id: i64,
    b: &[u8],
    names: &Names,
) -> Result<Option<ExportKind>, BodyError> {
    let mut r = Reader::new(b, names);
    let res = pending_export_kind(&mut r).map(|(_, kind)| kind);
    r.outcome(res)
}

/// The DN and the pending export's kind, the reader left after the kind.
fn pending_export_kind<'a>(r: &mut Reader<'a>) -> R<(&'a str, Option<ExportKind>)> {
    r.format()?;
    r.skip_name()?; // ma
    r.bytes()?; // anchor
    let dn = r.str_ref()?;
    r.skip_name()?; // object type
    r.skip_attributes()?; // hologram
    if !matches!(r.byte()?, 0..=3) {
        return Err("bad object flags".into());
    }
    match r.byte()? {
        0 | 2 => {}
        1 => {
            r.u64()?;
        }
        c => return Err(format!("bad connection state {c}")),
    }
    if r.flag("pending import")? {
        r.byte()?; // kind
        r.skip_attributes()?;
        for _ in 0..2 {
            // dn, object type
            if r.flag("option")? {
                r.bytes()?;
            }
        }
    }
    if !r.flag("pending export")? {
        return Ok((dn, None));
    }
    let kind = match r.byte()? {
        0 => ExportKind::Add,
        1 => ExportKind::Update,
        2 => ExportKind::Rename,
        3 => ExportKind::Delete,
        4 => ExportKind::DeleteAdd,
        k => return Err(format!("bad export kind {k}")),
    };
    Ok((dn, Some(kind)))
}

/// A connector's DN, and its pending export's kind and new DN.
pub(crate) type Spelled = (String, Option<(ExportKind, Option<String>)>);

/// How references spell a connector-space object, without decoding its
/// attributes: its DN, and its pending export's kind and new DN, if it has
/// one (what comes before them is skipped, lengths checked).
pub(crate) fn cs_spelling(_id: i64, b: &[u8], names: &Names) -> Result<Spelled, BodyError> {
    let mut r = Reader::new(b, names);
    let res = spelling_fields(&mut r);
    r.outcome(res)
}

fn spelling_fields(r: &mut Reader<'_>) -> R<Spelled> {
    let (dn, kind) = pending_export_kind(r)?;
    let dn = dn.to_owned();
    let Some(kind) = kind else {
        return Ok((dn, None));
    };
    // The changes, then the new DN.
    let n = r.len()?;
    for _ in 0..n {
        r.skip_name()?;
        if r.byte()? != T_REMOVE {
            r.at -= 1;
            r.skip_value(0)?;
        }
    }
    Ok((dn, Some((kind, r.opt_str()?))))
}
