//! `cs --json`: a connector-space object serialized as the store has it,
//! its `connection` as its MA's filters make it now (a filtered
//! disconnector is not stored: see `autosync_engine::ConnectorFilters`).
//!
//! The object's own serialization is kept (its keys in their order, what
//! it leaves out): only the value of its `connection` field is replaced,
//! by a serializer that passes every other field through.

use autosync_engine::FilterState;
use autosync_model::CsObject;
use serde::ser::{Impossible, Serialize, SerializeStruct, Serializer};

/// An object with what its filters say of it (`None`: nothing evaluated).
pub struct Stated<'a> {
    pub object: &'a CsObject,
    pub state: Option<&'a FilterState>,
}

/// The `connection` of a disconnector its filters hold out, or whose
/// filters cannot be evaluated.
#[derive(serde::Serialize)]
struct FilteredConnection<'a> {
    state: &'static str,
    /// The first filter that matches, from 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    filter: Option<usize>,
    /// Why a filter cannot be evaluated on the object.
    #[serde(skip_serializing_if = "Option::is_none")]
    filter_error: Option<&'a str>,
}

impl Serialize for Stated<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let connection = match self.state {
            Some(FilterState::Filtered { filter }) => FilteredConnection {
                state: "filtered-disconnector",
                filter: Some(*filter),
                filter_error: None,
            },
            Some(FilterState::Failed { error, .. }) => FilteredConnection {
                state: "disconnector",
                filter: None,
                filter_error: Some(error),
            },
            Some(FilterState::NotFiltered) | None => return self.object.serialize(serializer),
        };
        self.object.serialize(Replacing {
            inner: serializer,
            connection: &connection,
        })
    }
}

/// Serializes a struct as `inner` does, `connection` given for its field
/// of that name.
struct Replacing<'c, S> {
    inner: S,
    connection: &'c FilteredConnection<'c>,
}

/// The struct's fields, `connection` replaced.
struct Fields<'c, T> {
    inner: T,
    connection: &'c FilteredConnection<'c>,
}

impl<T: SerializeStruct> SerializeStruct for Fields<'_, T> {
    type Ok = T::Ok;
    type Error = T::Error;

    fn serialize_field<V: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &V,
    ) -> Result<(), T::Error> {
        if key == "connection" {
            self.inner.serialize_field(key, self.connection)
        } else {
            self.inner.serialize_field(key, value)
        }
    }

    fn skip_field(&mut self, key: &'static str) -> Result<(), T::Error> {
        self.inner.skip_field(key)
    }

    fn end(self) -> Result<T::Ok, T::Error> {
        self.inner.end()
    }
}

/// Anything but a struct: a connector-space object is one.
fn not_a_struct<E: serde::ser::Error>() -> E {
    E::custom("a connector-space object serializes as a struct")
}

impl<'c, S: Serializer> Serializer for Replacing<'c, S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = Impossible<S::Ok, S::Error>;
    type SerializeTuple = Impossible<S::Ok, S::Error>;
    type SerializeTupleStruct = Impossible<S::Ok, S::Error>;
    type SerializeTupleVariant = Impossible<S::Ok, S::Error>;
    type SerializeMap = Impossible<S::Ok, S::Error>;
    type SerializeStruct = Fields<'c, S::SerializeStruct>;
    type SerializeStructVariant = Impossible<S::Ok, S::Error>;

    fn serialize_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStruct, S::Error> {
        Ok(Fields {
            inner: self.inner.serialize_struct(name, len)?,
            connection: self.connection,
        })
    }

    fn serialize_bool(self, _: bool) -> Result<S::Ok, S::Error> {
        Err(not_a_struct())
    }
    fn serialize_i8(self, _: i8) -> Result<S::Ok, S::Error> {
        Err(not_a_struct())
    }
    fn serialize_i16(self, _: i16) -> Result<S::Ok, S::Error> {
        Err(not_a_struct())
    }
    fn serialize_i32(self, _: i32) -> Result<S::Ok, S::Error> {
        Err(not_a_struct())
    }
    fn serialize_i64(self, _: i64) -> Result<S::Ok, S::Error> {
        Err(not_a_struct())
    }
    fn serialize_u8(self, _: u8) -> Result<S::Ok, S::Error> {
        Err(not_a_struct())
    }
    fn serialize_u16(self, _: u16) -> Result<S::Ok, S::Error> {
        Err(not_a_struct())
    }
    fn serialize_u32(self, _: u32) -> Result<S::Ok, S::Error> {
        Err(not_a_struct())
    }
    fn serialize_u64(self, _: u64) -> Result<S::Ok, S::Error> {
        Err(not_a_struct())
    }
    fn serialize_f32(self, _: f32) -> Result<S::Ok, S::Error> {
        Err(not_a_struct())
    }
    fn serialize_f64(self, _: f64) -> Result<S::Ok, S::Error> {
        Err(not_a_struct())
    }
    fn serialize_char(self, _: char) -> Result<S::Ok, S::Error> {
        Err(not_a_struct())
    }
    fn serialize_str(self, _: &str) -> Result<S::Ok, S::Error> {
        Err(not_a_struct())
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<S::Ok, S::Error> {
        Err(not_a_struct())
    }
    fn serialize_none(self) -> Result<S::Ok, S::Error> {
        Err(not_a_struct())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<S::Ok, S::Error> {
        Err(not_a_struct())
    }
    fn serialize_unit(self) -> Result<S::Ok, S::Error> {
        Err(not_a_struct())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<S::Ok, S::Error> {
        Err(not_a_struct())
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
    ) -> Result<S::Ok, S::Error> {
        Err(not_a_struct())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<S::Ok, S::Error> {
        Err(not_a_struct())
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<S::Ok, S::Error> {
        Err(not_a_struct())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, S::Error> {
        Err(not_a_struct())
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, S::Error> {
        Err(not_a_struct())
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, S::Error> {
        Err(not_a_struct())
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, S::Error> {
        Err(not_a_struct())
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, S::Error> {
        Err(not_a_struct())
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, S::Error> {
        Err(not_a_struct())
    }
}
