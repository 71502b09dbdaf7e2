//! Hand-written Avro codec for the canonical event.
//!
//! The event type mirrors `schemas/security_event.v1.avsc` one to one, so encoding and decoding
//! can walk the Rust structs directly instead of going through the generic
//! [`apache_avro::types::Value`] tree: no per-field name allocation, no schema lookups. The
//! record and enum types are declared with `avro_record!` and `avro_enum!`, which generate the
//! binary codec and the `Value` conversion from the field list, in declaration order (which must
//! be the schema's field order; the tests cross-check every byte against `apache-avro`).
//!
//! Decoding never panics and never trusts lengths: every length is checked against the bytes that
//! are left before anything is allocated.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use apache_avro::types::Value;

/// One step of the path to the place a decode error happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment {
    /// A record field.
    Field(&'static str),
    /// An array element.
    Index(usize),
    /// A map value.
    Key(String),
}

/// Error while decoding Avro (binary or [`Value`]) into the event types, with the field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DecodeError {
    /// Path segments, innermost first (they are pushed while the error travels up).
    rev_path: Vec<Segment>,
    /// What went wrong.
    pub(crate) reason: String,
}

impl DecodeError {
    /// A new error at the current position.
    pub(crate) fn new(reason: impl Into<String>) -> Self {
        Self {
            rev_path: Vec::new(),
            reason: reason.into(),
        }
    }

    /// The same error, one record field further out.
    pub(crate) fn within(mut self, field: &'static str) -> Self {
        self.rev_path.push(Segment::Field(field));
        self
    }

    /// The same error, inside array element `index`.
    pub(crate) fn at_index(mut self, index: usize) -> Self {
        self.rev_path.push(Segment::Index(index));
        self
    }

    /// The same error, inside the map value under `key`.
    pub(crate) fn at_key(mut self, key: &str) -> Self {
        self.rev_path.push(Segment::Key(key.to_owned()));
        self
    }

    /// The field path in the dotted form used everywhere in secflow (`network.src_ip`,
    /// `host.ip[1]`, `labels.env`); empty for the top level.
    pub(crate) fn path(&self) -> String {
        let mut out = String::new();
        for seg in self.rev_path.iter().rev() {
            match seg {
                Segment::Field(name) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(name);
                }
                Segment::Index(i) => {
                    out.push('[');
                    out.push_str(&i.to_string());
                    out.push(']');
                }
                Segment::Key(k) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(k);
                }
            }
        }
        out
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path(), self.reason)
    }
}

/// Cursor over one Avro binary datum.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes not read yet.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    fn byte(&mut self) -> Result<u8, DecodeError> {
        match self.buf.get(self.pos) {
            Some(b) => {
                self.pos += 1;
                Ok(*b)
            }
            None => Err(DecodeError::new("unexpected end of data")),
        }
    }

    /// A zig-zag varint `long`.
    pub(crate) fn long(&mut self) -> Result<i64, DecodeError> {
        let mut acc: u64 = 0;
        let mut shift = 0u32;
        loop {
            let b = self.byte()?;
            if shift == 63 && b > 1 {
                return Err(DecodeError::new("varint does not fit in 64 bits"));
            }
            acc |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
            if shift > 63 {
                return Err(DecodeError::new("varint longer than 10 bytes"));
            }
        }
        Ok(((acc >> 1) as i64) ^ -((acc & 1) as i64))
    }

    /// A zig-zag varint `int`.
    pub(crate) fn int(&mut self) -> Result<i32, DecodeError> {
        let v = self.long()?;
        i32::try_from(v).map_err(|_| DecodeError::new(format!("int out of range: {v}")))
    }

    /// A `boolean` (one byte, 0 or 1).
    pub(crate) fn boolean(&mut self) -> Result<bool, DecodeError> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(DecodeError::new(format!("invalid boolean byte {b}"))),
        }
    }

    /// A length-prefixed UTF-8 `string`.
    pub(crate) fn string(&mut self) -> Result<String, DecodeError> {
        let len = self.long()?;
        let len = usize::try_from(len)
            .map_err(|_| DecodeError::new(format!("negative string length {len}")))?;
        if len > self.remaining() {
            return Err(DecodeError::new(format!(
                "string length {len} exceeds the {} bytes left",
                self.remaining()
            )));
        }
        let end = self.pos + len;
        let bytes = self
            .buf
            .get(self.pos..end)
            .ok_or_else(|| DecodeError::new("unexpected end of data"))?;
        let s = std::str::from_utf8(bytes)
            .map_err(|e| DecodeError::new(format!("string is not valid UTF-8: {e}")))?;
        self.pos = end;
        Ok(s.to_owned())
    }

    /// The item count of the next array or map block (0 = end), skipping the byte size that
    /// follows a negative count. Refuses counts that cannot fit in the bytes left (every item of
    /// the canonical schema takes at least one byte).
    pub(crate) fn block_len(&mut self) -> Result<usize, DecodeError> {
        let count = self.long()?;
        let count = if count < 0 {
            let _byte_size = self.long()?;
            count
                .checked_neg()
                .ok_or_else(|| DecodeError::new("invalid block count"))?
        } else {
            count
        };
        let count = usize::try_from(count).map_err(|_| DecodeError::new("invalid block count"))?;
        if count > self.remaining() {
            return Err(DecodeError::new(format!(
                "block of {count} items exceeds the {} bytes left",
                self.remaining()
            )));
        }
        Ok(count)
    }
}

/// Append a zig-zag varint `long`.
#[inline]
pub(crate) fn write_long(out: &mut Vec<u8>, v: i64) {
    let mut n = ((v << 1) ^ (v >> 63)) as u64;
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Append a length-prefixed string.
#[inline]
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    // A `str` never exceeds isize::MAX bytes, so the length always fits in an i64.
    write_long(out, s.len() as i64);
    out.extend_from_slice(s.as_bytes());
}

/// Name of a Rust field as it appears in the schema (`r#type` → `type`).
pub(crate) fn avro_name(rust: &'static str) -> &'static str {
    rust.strip_prefix("r#").unwrap_or(rust)
}

/// A type that maps to one Avro schema of the canonical event.
pub(crate) trait AvroCodec: Sized {
    /// Append the binary encoding.
    fn encode(&self, out: &mut Vec<u8>);
    /// Read the binary encoding.
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError>;
    /// The value as `apache-avro` produces it when it resolves data against the schema.
    fn to_value(&self) -> Value;
    /// Convert from an `apache-avro` value (resolved against the schema; unresolved strings for
    /// enums and plain longs for timestamps are accepted too).
    fn from_value(v: Value) -> Result<Self, DecodeError>;
}

/// Describe a value's kind for error messages.
pub(crate) fn kind_of(v: &Value) -> String {
    format!("{:?}", apache_avro::schema::SchemaKind::from(v))
}

impl AvroCodec for String {
    #[inline]
    fn encode(&self, out: &mut Vec<u8>) {
        write_str(out, self);
    }
    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.string()
    }
    fn to_value(&self) -> Value {
        Value::String(self.clone())
    }
    fn from_value(v: Value) -> Result<Self, DecodeError> {
        match v {
            Value::String(s) => Ok(s),
            other => Err(DecodeError::new(format!(
                "expected a string, found {}",
                kind_of(&other)
            ))),
        }
    }
}

impl AvroCodec for i64 {
    #[inline]
    fn encode(&self, out: &mut Vec<u8>) {
        write_long(out, *self);
    }
    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.long()
    }
    fn to_value(&self) -> Value {
        Value::Long(*self)
    }
    fn from_value(v: Value) -> Result<Self, DecodeError> {
        match v {
            Value::Long(n) => Ok(n),
            Value::Int(n) => Ok(i64::from(n)),
            other => Err(DecodeError::new(format!(
                "expected a long, found {}",
                kind_of(&other)
            ))),
        }
    }
}

impl AvroCodec for i32 {
    #[inline]
    fn encode(&self, out: &mut Vec<u8>) {
        write_long(out, i64::from(*self));
    }
    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.int()
    }
    fn to_value(&self) -> Value {
        Value::Int(*self)
    }
    fn from_value(v: Value) -> Result<Self, DecodeError> {
        match v {
            Value::Int(n) => Ok(n),
            other => Err(DecodeError::new(format!(
                "expected an int, found {}",
                kind_of(&other)
            ))),
        }
    }
}

impl AvroCodec for bool {
    #[inline]
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }
    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.boolean()
    }
    fn to_value(&self) -> Value {
        Value::Boolean(*self)
    }
    fn from_value(v: Value) -> Result<Self, DecodeError> {
        match v {
            Value::Boolean(b) => Ok(b),
            other => Err(DecodeError::new(format!(
                "expected a boolean, found {}",
                kind_of(&other)
            ))),
        }
    }
}

/// `["null", T]`: branch 0 is null, branch 1 the value.
impl<T: AvroCodec> AvroCodec for Option<T> {
    #[inline]
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            None => out.push(0),
            Some(v) => {
                out.push(2); // zig-zag of branch index 1
                v.encode(out);
            }
        }
    }
    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.long()? {
            0 => Ok(None),
            1 => T::decode(r).map(Some),
            i => Err(DecodeError::new(format!(
                "union branch {i} does not exist (the union is [null, value])"
            ))),
        }
    }
    fn to_value(&self) -> Value {
        match self {
            None => Value::Union(0, Box::new(Value::Null)),
            Some(v) => Value::Union(1, Box::new(v.to_value())),
        }
    }
    fn from_value(v: Value) -> Result<Self, DecodeError> {
        match v {
            Value::Null => Ok(None),
            Value::Union(_, inner) => match *inner {
                Value::Null => Ok(None),
                inner => T::from_value(inner).map(Some),
            },
            other => T::from_value(other).map(Some),
        }
    }
}

impl<T: AvroCodec> AvroCodec for Vec<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        if !self.is_empty() {
            // A Vec never holds more than isize::MAX items.
            write_long(out, self.len() as i64);
            for item in self {
                item.encode(out);
            }
        }
        out.push(0);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut items = Vec::new();
        loop {
            let n = r.block_len()?;
            if n == 0 {
                return Ok(items);
            }
            items.reserve(n);
            for _ in 0..n {
                let index = items.len();
                items.push(T::decode(r).map_err(|e| e.at_index(index))?);
            }
        }
    }
    fn to_value(&self) -> Value {
        Value::Array(self.iter().map(AvroCodec::to_value).collect())
    }
    fn from_value(v: Value) -> Result<Self, DecodeError> {
        match v {
            Value::Array(items) => items
                .into_iter()
                .enumerate()
                .map(|(i, item)| T::from_value(item).map_err(|e| e.at_index(i)))
                .collect(),
            other => Err(DecodeError::new(format!(
                "expected an array, found {}",
                kind_of(&other)
            ))),
        }
    }
}

/// `map<string>`; a `BTreeMap` so that the encoding is deterministic (same event, same bytes).
impl AvroCodec for BTreeMap<String, String> {
    fn encode(&self, out: &mut Vec<u8>) {
        if !self.is_empty() {
            write_long(out, self.len() as i64);
            for (k, v) in self {
                write_str(out, k);
                write_str(out, v);
            }
        }
        out.push(0);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut map = BTreeMap::new();
        loop {
            let n = r.block_len()?;
            if n == 0 {
                return Ok(map);
            }
            for _ in 0..n {
                let k = r.string()?;
                let v = r.string().map_err(|e| e.at_key(&k))?;
                if map.contains_key(&k) {
                    return Err(DecodeError::new("duplicate map key").at_key(&k));
                }
                map.insert(k, v);
            }
        }
    }
    fn to_value(&self) -> Value {
        Value::Map(
            self.iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect::<HashMap<_, _>>(),
        )
    }
    fn from_value(v: Value) -> Result<Self, DecodeError> {
        match v {
            Value::Map(m) => m
                .into_iter()
                .map(|(k, v)| match String::from_value(v) {
                    Ok(s) => Ok((k, s)),
                    Err(e) => Err(e.at_key(&k)),
                })
                .collect(),
            other => Err(DecodeError::new(format!(
                "expected a map, found {}",
                kind_of(&other)
            ))),
        }
    }
}

/// How one record field is converted: [`Native`] (the type's own [`AvroCodec`]) or
/// [`TsMillis`] (an `i64` with logical type `timestamp-millis`).
pub(crate) trait FieldCodec<T> {
    /// Append the binary encoding.
    fn encode(v: &T, out: &mut Vec<u8>);
    /// Read the binary encoding.
    fn decode(r: &mut Reader<'_>) -> Result<T, DecodeError>;
    /// Convert to a resolved `Value`.
    fn to_value(v: &T) -> Value;
    /// Convert from a `Value`.
    fn from_value(v: Value) -> Result<T, DecodeError>;
}

/// The field's type has its own [`AvroCodec`].
#[derive(Debug)]
pub(crate) struct Native;

impl<T: AvroCodec> FieldCodec<T> for Native {
    #[inline]
    fn encode(v: &T, out: &mut Vec<u8>) {
        v.encode(out);
    }
    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<T, DecodeError> {
        T::decode(r)
    }
    fn to_value(v: &T) -> Value {
        v.to_value()
    }
    fn from_value(v: Value) -> Result<T, DecodeError> {
        T::from_value(v)
    }
}

/// `{"type": "long", "logicalType": "timestamp-millis"}` held as epoch milliseconds.
#[derive(Debug)]
pub(crate) struct TsMillis;

fn ts_from_value(v: Value) -> Result<i64, DecodeError> {
    match v {
        Value::TimestampMillis(n) | Value::Long(n) => Ok(n),
        other => Err(DecodeError::new(format!(
            "expected a timestamp-millis, found {}",
            kind_of(&other)
        ))),
    }
}

impl FieldCodec<i64> for TsMillis {
    #[inline]
    fn encode(v: &i64, out: &mut Vec<u8>) {
        write_long(out, *v);
    }
    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<i64, DecodeError> {
        r.long()
    }
    fn to_value(v: &i64) -> Value {
        Value::TimestampMillis(*v)
    }
    fn from_value(v: Value) -> Result<i64, DecodeError> {
        ts_from_value(v)
    }
}

impl FieldCodec<Option<i64>> for TsMillis {
    #[inline]
    fn encode(v: &Option<i64>, out: &mut Vec<u8>) {
        match v {
            None => out.push(0),
            Some(n) => {
                out.push(2);
                write_long(out, *n);
            }
        }
    }
    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<Option<i64>, DecodeError> {
        match r.long()? {
            0 => Ok(None),
            1 => r.long().map(Some),
            i => Err(DecodeError::new(format!(
                "union branch {i} does not exist (the union is [null, timestamp-millis])"
            ))),
        }
    }
    fn to_value(v: &Option<i64>) -> Value {
        match v {
            None => Value::Union(0, Box::new(Value::Null)),
            Some(n) => Value::Union(1, Box::new(Value::TimestampMillis(*n))),
        }
    }
    fn from_value(v: Value) -> Result<Option<i64>, DecodeError> {
        match v {
            Value::Null => Ok(None),
            Value::Union(_, inner) => match *inner {
                Value::Null => Ok(None),
                inner => ts_from_value(inner).map(Some),
            },
            other => ts_from_value(other).map(Some),
        }
    }
}

/// Take the field `name` out of a record's field list (leaving an empty name behind so that
/// leftovers can be detected).
pub(crate) fn take_field(
    fields: &mut [(String, Value)],
    name: &'static str,
) -> Result<Value, DecodeError> {
    match fields.iter_mut().find(|(n, _)| n == name) {
        Some((n, v)) => {
            n.clear();
            Ok(std::mem::replace(v, Value::Null))
        }
        None => Err(DecodeError::new("missing field").within(name)),
    }
}

/// Unwrap a `Value::Record`.
pub(crate) fn expect_record(v: Value) -> Result<Vec<(String, Value)>, DecodeError> {
    match v {
        Value::Record(fields) => Ok(fields),
        other => Err(DecodeError::new(format!(
            "expected a record, found {}",
            kind_of(&other)
        ))),
    }
}

/// Refuse fields the schema does not have.
pub(crate) fn no_leftovers(fields: &[(String, Value)]) -> Result<(), DecodeError> {
    match fields.iter().find(|(n, _)| !n.is_empty()) {
        Some((n, _)) => Err(DecodeError::new(format!("unknown field `{n}`"))),
        None => Ok(()),
    }
}

/// Pick the field codec: `Native` unless one is named.
macro_rules! codec_of {
    () => {
        $crate::event::codec::Native
    };
    ($c:ty) => {
        $c
    };
}

/// Declare a record struct (attributes and docs pass through) and implement [`AvroCodec`] for
/// it. Fields are encoded in declaration order, which must be the schema's order. A field may
/// name its codec with `=> TsMillis`.
macro_rules! avro_record {
    (
        $(#[$smeta:meta])*
        pub struct $name:ident {
            $(
                $(#[$fmeta:meta])*
                pub $field:ident : $ty:ty $(=> $codec:ty)?
            ),* $(,)?
        }
    ) => {
        $(#[$smeta])*
        pub struct $name {
            $(
                $(#[$fmeta])*
                pub $field: $ty,
            )*
        }

        impl $crate::event::codec::AvroCodec for $name {
            #[inline]
            fn encode(&self, out: &mut Vec<u8>) {
                $(
                    <codec_of!($($codec)?) as $crate::event::codec::FieldCodec<$ty>>::encode(
                        &self.$field,
                        out,
                    );
                )*
            }

            #[inline]
            fn decode(
                r: &mut $crate::event::codec::Reader<'_>,
            ) -> Result<Self, $crate::event::codec::DecodeError> {
                Ok(Self {
                    $(
                        $field: <codec_of!($($codec)?) as $crate::event::codec::FieldCodec<$ty>>
                            ::decode(r)
                            .map_err(|e| e.within(
                                $crate::event::codec::avro_name(stringify!($field)),
                            ))?,
                    )*
                })
            }

            fn to_value(&self) -> apache_avro::types::Value {
                apache_avro::types::Value::Record(vec![
                    $(
                        (
                            $crate::event::codec::avro_name(stringify!($field)).to_owned(),
                            <codec_of!($($codec)?) as $crate::event::codec::FieldCodec<$ty>>
                                ::to_value(&self.$field),
                        ),
                    )*
                ])
            }

            fn from_value(
                v: apache_avro::types::Value,
            ) -> Result<Self, $crate::event::codec::DecodeError> {
                let mut fields = $crate::event::codec::expect_record(v)?;
                let out = Self {
                    $(
                        $field: {
                            let name = $crate::event::codec::avro_name(stringify!($field));
                            let v = $crate::event::codec::take_field(&mut fields, name)?;
                            <codec_of!($($codec)?) as $crate::event::codec::FieldCodec<$ty>>
                                ::from_value(v)
                                .map_err(|e| e.within(name))?
                        },
                    )*
                };
                $crate::event::codec::no_leftovers(&fields)?;
                Ok(out)
            }
        }
    };
}

/// Declare an Avro enum: a Rust enum whose variants are the schema's symbols in order, with
/// serde names equal to the symbols, `as_str`, `from_symbol`, `SYMBOLS`, `Display`, `FromStr`
/// and [`AvroCodec`].
macro_rules! avro_enum {
    (
        $(#[$emeta:meta])*
        pub enum $name:ident {
            $(
                $(#[$vmeta:meta])*
                $variant:ident = $symbol:literal
            ),* $(,)?
        }
    ) => {
        $(#[$emeta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
            serde::Serialize, serde::Deserialize,
        )]
        pub enum $name {
            $(
                $(#[$vmeta])*
                #[serde(rename = $symbol)]
                $variant,
            )*
        }

        impl $name {
            /// Every variant, in schema symbol order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];
            /// The Avro symbols, in schema order.
            pub const SYMBOLS: &'static [&'static str] = &[$($symbol),*];

            /// The Avro symbol (also the JSON string).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $symbol,)*
                }
            }

            /// The variant for an Avro symbol.
            pub fn from_symbol(s: &str) -> Option<Self> {
                match s {
                    $($symbol => Some($name::$variant),)*
                    _ => None,
                }
            }

            /// Position of the symbol in the schema.
            pub const fn index(self) -> u32 {
                self as u32
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::event::EventError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::from_symbol(s).ok_or_else(|| $crate::event::EventError::Invalid {
                    field: String::new(),
                    reason: format!(
                        "unknown {} `{}`, expected one of: {}",
                        stringify!($name),
                        s,
                        Self::SYMBOLS.join(", ")
                    ),
                })
            }
        }

        impl $crate::event::codec::AvroCodec for $name {
            #[inline]
            fn encode(&self, out: &mut Vec<u8>) {
                $crate::event::codec::write_long(out, i64::from(self.index()));
            }
            #[inline]
            fn decode(
                r: &mut $crate::event::codec::Reader<'_>,
            ) -> Result<Self, $crate::event::codec::DecodeError> {
                let i = r.long()?;
                usize::try_from(i)
                    .ok()
                    .and_then(|i| Self::ALL.get(i).copied())
                    .ok_or_else(|| $crate::event::codec::DecodeError::new(format!(
                        "{} index {} out of range", stringify!($name), i
                    )))
            }
            fn to_value(&self) -> apache_avro::types::Value {
                apache_avro::types::Value::Enum(self.index(), self.as_str().to_owned())
            }
            fn from_value(
                v: apache_avro::types::Value,
            ) -> Result<Self, $crate::event::codec::DecodeError> {
                match v {
                    apache_avro::types::Value::Enum(_, s)
                    | apache_avro::types::Value::String(s) => Self::from_symbol(&s).ok_or_else(
                        || $crate::event::codec::DecodeError::new(format!(
                            "unknown {} symbol `{}`", stringify!($name), s
                        )),
                    ),
                    other => Err($crate::event::codec::DecodeError::new(format!(
                        "expected an enum, found {}",
                        $crate::event::codec::kind_of(&other)
                    ))),
                }
            }
        }
    };
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn varints_round_trip_at_the_edges() {
        for v in [
            0i64,
            1,
            -1,
            63,
            -64,
            64,
            300,
            i64::from(i32::MAX),
            i64::MIN,
            i64::MAX,
        ] {
            let mut buf = Vec::new();
            write_long(&mut buf, v);
            let mut r = Reader::new(&buf);
            assert_eq!(r.long().unwrap(), v);
            assert_eq!(r.remaining(), 0);
        }
    }

    #[test]
    fn overlong_varint_is_an_error_not_a_panic() {
        let buf = [0xffu8; 11];
        assert!(Reader::new(&buf).long().is_err());
        let buf = [0xffu8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert!(Reader::new(&buf).long().is_err());
    }

    #[test]
    fn huge_lengths_are_refused_before_allocating() {
        let mut buf = Vec::new();
        write_long(&mut buf, i64::MAX / 2);
        assert!(Reader::new(&buf).string().is_err());
        assert!(Vec::<String>::decode(&mut Reader::new(&buf)).is_err());
        let mut buf = Vec::new();
        write_long(&mut buf, -5);
        assert!(Reader::new(&buf).string().is_err());
    }

    #[test]
    fn negative_block_counts_carry_a_byte_size() {
        // Block of 2 items written with a negative count and a byte size, then the end block.
        let mut buf = Vec::new();
        write_long(&mut buf, -2);
        write_long(&mut buf, 4);
        write_str(&mut buf, "a");
        write_str(&mut buf, "b");
        buf.push(0);
        let v = Vec::<String>::decode(&mut Reader::new(&buf)).unwrap();
        assert_eq!(v, vec!["a".to_owned(), "b".to_owned()]);
    }

    #[test]
    fn error_paths_render_dotted() {
        let e = DecodeError::new("bad")
            .within("ip")
            .at_index(1)
            .within("host");
        // Segments are pushed innermost first: host, [1], ip reads host[1].ip
        assert_eq!(e.path(), "host[1].ip");
        let e = DecodeError::new("bad")
            .at_index(2)
            .within("ip")
            .within("host");
        assert_eq!(e.path(), "host.ip[2]");
    }
}
