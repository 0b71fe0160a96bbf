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
//! the value, maps a varint count then key/value pairs. A [`Value`](autosync_model::Value) is a tag
//! byte (`0` string, `1` integer, `2` false, `3` true, `4` binary, `5` list)
//! then its payload. Decoding checks every length and every string's UTF-8:
//! a damaged body is a decode error naming the object, never a panic.
//!
//! Value rows (see `rows`): a hologram or metaverse attribute whose values
//! are rows of their own is written as the marker [`T_ROWS`] in place of
//! its value (a metaverse attribute keeps its contributor); a full read
//! puts the rows there, a light read the placeholder `Value::Multi([])`.
//! Pending values: the value-level changes of a pending import, pending
//! export and unconfirmed export (`values`) follow the error as a trailer,
//! a `1` byte then the three maps (name, then the added and the removed
//! values as lists), written only when one is not empty: a body without
//! them is byte for byte what it was, and an older body (nothing after the
//! error) reads them empty.
//!
//! `encode` writes bodies, `decode` reads them (and the few attributes an
//! index needs without decoding the rest); names go through the store's
//! dictionary (`names`) either way.

mod decode;
mod encode;
#[cfg(test)]
mod tests;

#[cfg(test)]
pub(crate) use decode::decode_mv;
pub(crate) use decode::{
    BodyError, Marks, cs_pending_export_kind, cs_spelling, decode_cs, decode_cs_marked,
    decode_mv_marked, decode_value, mv_attrs,
};
pub(crate) use encode::{append_value, encode_cs_rows, encode_mv_rows, encode_value};
#[cfg(test)]
pub(crate) use encode::{encode_cs, encode_mv};
#[cfg(test)]
pub(crate) use encode::{encode_cs_v1, encode_mv_v1};

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
/// A reference to a metaverse object (its id). Bodies without one are
/// written as before, so older builds still read every body that holds
/// no reference.
const T_REFERENCE: u8 = 7;
/// In place of a hologram or metaverse attribute's value: its values are
/// rows (see `rows`). Only schema version 7 writes it.
const T_ROWS: u8 = 8;

/// Nesting limit of multi-valued values when decoding (a damaged body must
/// not overflow the stack).
const MAX_DEPTH: u32 = 32;
