//! The canonical bytes of any serializable value, written straight from
//! its `Serialize` impl: no `serde_json::Value` in between.
//!
//! A plan hashes ~8,000 specs; building each one as a `Value` (a string per
//! string, a map per struct) and then sorting it was most of keying a
//! large project. The bytes must be exactly [`canonical_json`]'s of
//! `serde_json::to_value(v)`, or keys would change: every scalar is written
//! by serde_json itself, and what this writer does not handle the way
//! `to_value` would (128-bit and `f32` numbers, non-string map keys other
//! than integers, a key written twice) is not guessed at: it reports
//! [`Unsupported`] and the caller takes the `Value` path.
//!
//! [`canonical_json`]: super::canonical_json

use serde::ser::{self, Serialize};
use std::fmt;

/// Something this writer leaves to the `Value` path.
#[derive(Debug)]
pub struct Unsupported;

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not written directly")
    }
}

impl std::error::Error for Unsupported {}

impl ser::Error for Unsupported {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Unsupported
    }
}

type Result<T = ()> = std::result::Result<T, Unsupported>;

/// Every integer width, written by the serializer's own `int`.
macro_rules! integers {
    () => {
        integers!(serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64);
        integers!(serialize_u8: u8, serialize_u16: u16, serialize_u32: u32, serialize_u64: u64);
    };
    ($($name:ident: $t:ty),*) => {$(
        fn $name(self, v: $t) -> Result {
            self.int(v)
        }
    )*};
}

/// Writes `v`'s canonical bytes into `out`.
pub fn write<T: Serialize + ?Sized>(v: &T, out: &mut Vec<u8>) -> Result {
    v.serialize(Writer { out })
}

fn string(s: &str, out: &mut Vec<u8>) {
    super::string(s, out)
}

struct Writer<'a> {
    out: &'a mut Vec<u8>,
}

/// An object being written: its entries go to a scratch buffer (raw key,
/// then value bytes) and are sorted by key when it ends.
struct Object<'a> {
    out: &'a mut Vec<u8>,
    scratch: Vec<u8>,
    /// (key start, key end, value end) in `scratch`.
    entries: Vec<(usize, usize, usize)>,
    /// `{"variant":` was written before the object and needs its `}`.
    variant: bool,
    /// It is serde_json's raw value: its one field is JSON text, written
    /// as it is.
    raw: bool,
}

/// The struct name serde_json gives its `RawValue`. The only raw values in
/// specs are [`super::CanonicalJson`]'s, whose text is canonical.
const RAW_VALUE: &str = "$serde_json::private::RawValue";

impl Object<'_> {
    fn raw_text<T: Serialize + ?Sized>(&mut self, v: &T) -> Result {
        match v.serialize(serde_json::value::Serializer) {
            Ok(serde_json::Value::String(text)) => {
                self.out.extend_from_slice(text.as_bytes());
                Ok(())
            }
            _ => Err(Unsupported),
        }
    }

    fn key(&mut self, key: &str) -> usize {
        let start = self.scratch.len();
        self.scratch.extend_from_slice(key.as_bytes());
        start
    }

    fn value<T: Serialize + ?Sized>(&mut self, key_start: usize, v: &T) -> Result {
        let key_end = self.scratch.len();
        v.serialize(Writer {
            out: &mut self.scratch,
        })?;
        self.entries.push((key_start, key_end, self.scratch.len()));
        Ok(())
    }

    fn finish(self) -> Result {
        let Object {
            out,
            scratch,
            mut entries,
            variant,
            raw,
        } = self;
        if raw {
            return Ok(());
        }
        let key = |e: &(usize, usize, usize)| &scratch[e.0..e.1];
        entries.sort_unstable_by(|a, b| key(a).cmp(key(b)));
        if entries.windows(2).any(|w| key(&w[0]) == key(&w[1])) {
            return Err(Unsupported);
        }
        out.push(b'{');
        for (i, e) in entries.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            // Keys were kept raw (sorting compares them unescaped, as the
            // Value path does); they were UTF-8 going in.
            let k = std::str::from_utf8(key(e)).map_err(|_| Unsupported)?;
            string(k, out);
            out.push(b':');
            out.extend_from_slice(&scratch[e.1..e.2]);
        }
        out.push(b'}');
        if variant {
            out.push(b'}');
        }
        Ok(())
    }
}

/// An array being written.
struct Array<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
    /// `{"variant":` was written before the array and needs its `}`.
    variant: bool,
}

impl Array<'_> {
    fn element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        v.serialize(Writer { out: self.out })
    }

    fn finish(self) -> Result {
        self.out.push(b']');
        if self.variant {
            self.out.push(b'}');
        }
        Ok(())
    }
}

impl<'a> Writer<'a> {
    fn raw(self, s: &str) -> Result {
        self.out.extend_from_slice(s.as_bytes());
        Ok(())
    }

    fn int(self, v: impl itoa::Integer) -> Result {
        self.raw(itoa::Buffer::new().format(v))
    }

    /// `{"variant":`, the wrapper serde_json puts around a variant with data.
    fn open_variant(&mut self, variant: &str) {
        self.out.push(b'{');
        string(variant, self.out);
        self.out.push(b':');
    }

    fn array(self, variant: Option<&str>) -> Array<'a> {
        let mut w = self;
        if let Some(v) = variant {
            w.open_variant(v);
        }
        w.out.push(b'[');
        Array {
            out: w.out,
            first: true,
            variant: variant.is_some(),
        }
    }

    fn object(self, variant: Option<&str>, len: usize) -> Object<'a> {
        let mut w = self;
        if let Some(v) = variant {
            w.open_variant(v);
        }
        Object {
            out: w.out,
            scratch: Vec::with_capacity(64 * len),
            entries: Vec::with_capacity(len),
            variant: variant.is_some(),
            raw: false,
        }
    }
}

impl<'a> ser::Serializer for Writer<'a> {
    type Ok = ();
    type Error = Unsupported;
    type SerializeSeq = Array<'a>;
    type SerializeTuple = Array<'a>;
    type SerializeTupleStruct = Array<'a>;
    type SerializeTupleVariant = Array<'a>;
    type SerializeMap = MapWriter<'a>;
    type SerializeStruct = Object<'a>;
    type SerializeStructVariant = Object<'a>;

    fn serialize_bool(self, v: bool) -> Result {
        self.raw(if v { "true" } else { "false" })
    }
    integers!();
    fn serialize_f32(self, _: f32) -> Result {
        Err(Unsupported)
    }
    fn serialize_f64(self, v: f64) -> Result {
        // As `to_value` does: a number when finite, else null; written by
        // serde_json.
        match serde_json::Number::from_f64(v) {
            Some(n) => serde_json::to_writer(&mut *self.out, &n).map_err(|_| Unsupported),
            None => self.raw("null"),
        }
    }
    fn serialize_char(self, v: char) -> Result {
        string(v.encode_utf8(&mut [0; 4]), self.out);
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result {
        string(v, self.out);
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result {
        let mut a = self.array(None);
        for b in v {
            ser::SerializeSeq::serialize_element(&mut a, b)?;
        }
        a.finish()
    }
    fn serialize_none(self) -> Result {
        self.raw("null")
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result {
        self.raw("null")
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result {
        self.raw("null")
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Result {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, v: &T) -> Result {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        v: &T,
    ) -> Result {
        let mut w = self;
        w.open_variant(variant);
        v.serialize(Writer { out: &mut *w.out })?;
        w.out.push(b'}');
        Ok(())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Array<'a>> {
        Ok(self.array(None))
    }
    fn serialize_tuple(self, _: usize) -> Result<Array<'a>> {
        Ok(self.array(None))
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Array<'a>> {
        Ok(self.array(None))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Array<'a>> {
        Ok(self.array(Some(variant)))
    }
    fn serialize_map(self, len: Option<usize>) -> Result<MapWriter<'a>> {
        Ok(MapWriter {
            object: self.object(None, len.unwrap_or(8)),
            key: None,
        })
    }
    fn serialize_struct(self, name: &'static str, len: usize) -> Result<Object<'a>> {
        let mut o = self.object(None, len);
        o.raw = name == RAW_VALUE;
        Ok(o)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Object<'a>> {
        Ok(self.object(Some(variant), len))
    }
}

macro_rules! array_impl {
    ($($t:ident),*) => {$(
        impl ser::$t for Array<'_> {
            type Ok = ();
            type Error = Unsupported;
            array_impl!(@method $t);
            fn end(self) -> Result {
                self.finish()
            }
        }
    )*};
    (@method SerializeSeq) => {
        fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result {
            self.element(v)
        }
    };
    (@method SerializeTuple) => {
        fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result {
            self.element(v)
        }
    };
    (@method $other:ident) => {
        fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result {
            self.element(v)
        }
    };
}

array_impl!(
    SerializeSeq,
    SerializeTuple,
    SerializeTupleStruct,
    SerializeTupleVariant
);

macro_rules! object_impl {
    ($($t:ident),*) => {$(
        impl ser::$t for Object<'_> {
            type Ok = ();
            type Error = Unsupported;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                v: &T,
            ) -> Result {
                if self.raw {
                    return self.raw_text(v);
                }
                let k = self.key(key);
                self.value(k, v)
            }
            fn end(self) -> Result {
                self.finish()
            }
        }
    )*};
}

object_impl!(SerializeStruct, SerializeStructVariant);

/// A map being written: like a struct, but its keys are serialized values.
pub struct MapWriter<'a> {
    object: Object<'a>,
    /// Where the key just written starts in the scratch buffer.
    key: Option<usize>,
}

impl ser::SerializeMap for MapWriter<'_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result {
        let start = self.object.scratch.len();
        key.serialize(KeyWriter {
            out: &mut self.object.scratch,
        })?;
        self.key = Some(start);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result {
        let k = self.key.take().ok_or(Unsupported)?;
        self.object.value(k, v)
    }
    fn end(self) -> Result {
        self.object.finish()
    }
}

/// Writes a map key raw, as the text `to_value` would make of it: strings,
/// chars, integers, unit variants; anything else is left to the Value path.
struct KeyWriter<'a> {
    out: &'a mut Vec<u8>,
}

impl KeyWriter<'_> {
    fn text(self, s: &str) -> Result {
        self.out.extend_from_slice(s.as_bytes());
        Ok(())
    }
    fn int(self, v: impl itoa::Integer) -> Result {
        self.text(itoa::Buffer::new().format(v))
    }
}

impl ser::Serializer for KeyWriter<'_> {
    type Ok = ();
    type Error = Unsupported;
    type SerializeSeq = ser::Impossible<(), Unsupported>;
    type SerializeTuple = ser::Impossible<(), Unsupported>;
    type SerializeTupleStruct = ser::Impossible<(), Unsupported>;
    type SerializeTupleVariant = ser::Impossible<(), Unsupported>;
    type SerializeMap = ser::Impossible<(), Unsupported>;
    type SerializeStruct = ser::Impossible<(), Unsupported>;
    type SerializeStructVariant = ser::Impossible<(), Unsupported>;

    fn serialize_str(self, v: &str) -> Result {
        self.text(v)
    }
    fn serialize_char(self, v: char) -> Result {
        self.text(v.encode_utf8(&mut [0; 4]))
    }
    integers!();
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Result {
        self.text(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, v: &T) -> Result {
        v.serialize(self)
    }
    fn serialize_bool(self, _: bool) -> Result {
        Err(Unsupported)
    }
    fn serialize_f32(self, _: f32) -> Result {
        Err(Unsupported)
    }
    fn serialize_f64(self, _: f64) -> Result {
        Err(Unsupported)
    }
    fn serialize_bytes(self, _: &[u8]) -> Result {
        Err(Unsupported)
    }
    fn serialize_none(self) -> Result {
        Err(Unsupported)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result {
        Err(Unsupported)
    }
    fn serialize_unit(self) -> Result {
        Err(Unsupported)
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result {
        Err(Unsupported)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result {
        Err(Unsupported)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq> {
        Err(Unsupported)
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple> {
        Err(Unsupported)
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct> {
        Err(Unsupported)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant> {
        Err(Unsupported)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap> {
        Err(Unsupported)
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct> {
        Err(Unsupported)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant> {
        Err(Unsupported)
    }
}
