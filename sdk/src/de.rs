//! A serde `Deserializer` over the task's parameters, which the host hands over as strings.
//!
//! * The parameter map deserializes as a map/struct: field name = parameter name.
//! * A single value is a string that deserializes into whatever the target type asks for:
//!   `deserialize_any`/`str`/`String` → the string itself; integers, floats, `bool` and `char`
//!   parse the (trimmed) string; `Option<T>` → `Some(T)` whenever the parameter is present
//!   (a missing parameter is `None`); sequences and tuples parse the string as JSON when it
//!   starts with `[`, and otherwise as a comma-separated list (`a, b, c`; `""` is empty);
//!   maps and structs parse the string as JSON; enums accept a variant name (`fast`) or JSON.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor, value::BorrowedStrDeserializer};

/// Error while deserializing parameters. Converted into a permanent [`crate::TaskError`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamError(pub(crate) String);

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParamError {}

impl de::Error for ParamError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        ParamError(msg.to_string())
    }

    fn missing_field(field: &'static str) -> Self {
        ParamError(format!("missing required param `{field}`"))
    }
}

impl ParamError {
    fn json(e: serde_json::Error) -> Self {
        ParamError(format!("not valid JSON for this type: {e}"))
    }
}

/// Deserializes the whole parameter list as a map.
pub(crate) struct ParamsDeserializer<'de> {
    pairs: &'de [(String, String)],
}

impl<'de> ParamsDeserializer<'de> {
    pub(crate) fn new(pairs: &'de [(String, String)]) -> Self {
        ParamsDeserializer { pairs }
    }
}

impl<'de> Deserializer<'de> for ParamsDeserializer<'de> {
    type Error = ParamError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        visitor.visit_map(ParamsMap { iter: self.pairs.iter(), current: None })
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ParamError> {
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct enum
        identifier ignored_any
    }
}

struct ParamsMap<'de> {
    iter: std::slice::Iter<'de, (String, String)>,
    current: Option<&'de (String, String)>,
}

impl<'de> MapAccess<'de> for ParamsMap<'de> {
    type Error = ParamError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, ParamError> {
        match self.iter.next() {
            None => Ok(None),
            Some(pair) => {
                self.current = Some(pair);
                seed.deserialize(BorrowedStrDeserializer::new(pair.0.as_str())).map(Some)
            }
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, ParamError> {
        let (name, value) = self.current.take().expect("next_value_seed before next_key_seed");
        seed.deserialize(ValueDeserializer::new(value)).map_err(|e| ParamError(format!("param `{name}`: {e}")))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

/// Deserializes one parameter value (a string) into the type asked for.
pub(crate) struct ValueDeserializer<'de> {
    s: &'de str,
}

impl<'de> ValueDeserializer<'de> {
    pub(crate) fn new(s: &'de str) -> Self {
        ValueDeserializer { s }
    }

    fn parse<T>(&self, what: &str) -> Result<T, ParamError>
    where
        T: std::str::FromStr,
        T::Err: fmt::Display,
    {
        self.s.trim().parse().map_err(|e| ParamError(format!("`{}` is not a valid {what} ({e})", self.s)))
    }

    fn is_json_array(&self) -> bool {
        self.s.trim_start().starts_with('[')
    }
}

macro_rules! parse_number {
    ($($method:ident => $visit:ident : $t:ty),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
            visitor.$visit(self.parse::<$t>(stringify!($t))?)
        }
    )*};
}

macro_rules! from_json {
    ($de:expr, $call:ident ( $($arg:expr),* )) => {{
        let mut json = serde_json::Deserializer::from_str($de.s);
        let value = json.$call($($arg),*).map_err(ParamError::json)?;
        json.end().map_err(ParamError::json)?;
        Ok(value)
    }};
}

impl<'de> Deserializer<'de> for ValueDeserializer<'de> {
    type Error = ParamError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        visitor.visit_borrowed_str(self.s)
    }

    parse_number! {
        deserialize_i8 => visit_i8: i8,
        deserialize_i16 => visit_i16: i16,
        deserialize_i32 => visit_i32: i32,
        deserialize_i64 => visit_i64: i64,
        deserialize_i128 => visit_i128: i128,
        deserialize_u8 => visit_u8: u8,
        deserialize_u16 => visit_u16: u16,
        deserialize_u32 => visit_u32: u32,
        deserialize_u64 => visit_u64: u64,
        deserialize_u128 => visit_u128: u128,
        deserialize_f32 => visit_f32: f32,
        deserialize_f64 => visit_f64: f64,
        deserialize_char => visit_char: char,
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        match self.s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => visitor.visit_bool(true),
            "false" | "no" | "off" | "0" => visitor.visit_bool(false),
            _ => Err(ParamError(format!("`{}` is not a valid bool (use true/false, yes/no, on/off or 1/0)", self.s))),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        visitor.visit_borrowed_str(self.s)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        visitor.visit_borrowed_str(self.s)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        visitor.visit_borrowed_str(self.s)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        visitor.visit_borrowed_bytes(self.s.as_bytes())
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        visitor.visit_borrowed_bytes(self.s.as_bytes())
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        visitor.visit_some(self)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        match self.s.trim() {
            "" | "null" => visitor.visit_unit(),
            _ => Err(ParamError(format!("expected an empty value or `null`, got `{}`", self.s))),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, ParamError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ParamError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        if self.is_json_array() {
            from_json!(self, deserialize_seq(visitor))
        } else {
            CommaSeq::new(self.s).visit(visitor)
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, ParamError> {
        if self.is_json_array() {
            from_json!(self, deserialize_tuple(len, visitor))
        } else {
            CommaSeq::new(self.s).visit(visitor)
        }
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, ParamError> {
        if self.is_json_array() {
            from_json!(self, deserialize_tuple_struct(name, len, visitor))
        } else {
            CommaSeq::new(self.s).visit(visitor)
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        from_json!(self, deserialize_map(visitor))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ParamError> {
        from_json!(self, deserialize_struct(name, fields, visitor))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ParamError> {
        let trimmed = self.s.trim();
        if trimmed.starts_with('{') || trimmed.starts_with('"') {
            from_json!(self, deserialize_enum(name, variants, visitor))
        } else {
            visitor.visit_enum(BorrowedStrDeserializer::<ParamError>::new(trimmed))
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        visitor.visit_unit()
    }
}

/// `a, b, c` as a sequence of trimmed string values; `""` is the empty sequence.
struct CommaSeq<'de> {
    items: Option<std::str::Split<'de, char>>,
    seen: usize,
}

impl<'de> CommaSeq<'de> {
    fn new(s: &'de str) -> Self {
        let items = if s.trim().is_empty() { None } else { Some(s.split(',')) };
        CommaSeq { items, seen: 0 }
    }

    fn visit<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, ParamError> {
        let value = visitor.visit_seq(&mut self)?;
        let rest = self.items.map_or(0, |it| it.count());
        if rest > 0 {
            return Err(de::Error::invalid_length(self.seen + rest, &"fewer elements"));
        }
        Ok(value)
    }
}

impl<'de> SeqAccess<'de> for &mut CommaSeq<'de> {
    type Error = ParamError;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, ParamError> {
        let Some(items) = self.items.as_mut() else {
            return Ok(None);
        };
        match items.next() {
            None => Ok(None),
            Some(item) => {
                let index = self.seen;
                self.seen += 1;
                seed.deserialize(ValueDeserializer::new(item.trim()))
                    .map(Some)
                    .map_err(|e| ParamError(format!("element {index}: {e}")))
            }
        }
    }
}

#[cfg(test)]
#[path = "de_tests.rs"]
mod tests;
