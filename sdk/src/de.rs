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

use serde::de::{
    self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor,
    value::BorrowedStrDeserializer,
};

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
        visitor.visit_map(ParamsMap {
            iter: self.pairs.iter(),
            current: None,
        })
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

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ParamError> {
        match self.iter.next() {
            None => Ok(None),
            Some(pair) => {
                self.current = Some(pair);
                seed.deserialize(BorrowedStrDeserializer::new(pair.0.as_str()))
                    .map(Some)
            }
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, ParamError> {
        let (name, value) = self
            .current
            .take()
            .expect("next_value_seed before next_key_seed");
        seed.deserialize(ValueDeserializer::new(value))
            .map_err(|e| ParamError(format!("param `{name}`: {e}")))
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
        self.s
            .trim()
            .parse()
            .map_err(|e| ParamError(format!("`{}` is not a valid {what} ({e})", self.s)))
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
            _ => Err(ParamError(format!(
                "`{}` is not a valid bool (use true/false, yes/no, on/off or 1/0)",
                self.s
            ))),
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
            _ => Err(ParamError(format!(
                "expected an empty value or `null`, got `{}`",
                self.s
            ))),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ParamError> {
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

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, ParamError> {
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
        let items = if s.trim().is_empty() {
            None
        } else {
            Some(s.split(','))
        };
        CommaSeq { items, seen: 0 }
    }

    fn visit<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, ParamError> {
        let value = visitor.visit_seq(&mut self)?;
        let rest = self.items.map_or(0, |it| it.count());
        if rest > 0 {
            return Err(de::Error::invalid_length(
                self.seen + rest,
                &"fewer elements",
            ));
        }
        Ok(value)
    }
}

impl<'de> SeqAccess<'de> for &mut CommaSeq<'de> {
    type Error = ParamError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, ParamError> {
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
mod tests {
    use super::*;
    use serde::Deserialize;
    use std::collections::BTreeMap;

    fn pairs(kv: &[(&str, &str)]) -> Vec<(String, String)> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn parse<T: serde::de::DeserializeOwned>(kv: &[(&str, &str)]) -> Result<T, ParamError> {
        let p = pairs(kv);
        T::deserialize(ParamsDeserializer::new(&p))
    }

    fn value<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, ParamError> {
        T::deserialize(ValueDeserializer::new(s))
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Basic {
        n: u32,
        name: String,
        tags: Option<Vec<String>>,
    }

    #[test]
    fn the_example_struct() {
        let b: Basic = parse(&[("n", "42"), ("name", "ada"), ("tags", r#"["x","y"]"#)]).unwrap();
        assert_eq!(
            b,
            Basic {
                n: 42,
                name: "ada".into(),
                tags: Some(vec!["x".into(), "y".into()])
            }
        );
    }

    #[test]
    fn missing_option_is_none_and_unknown_params_are_ignored() {
        let b: Basic = parse(&[("name", "ada"), ("n", " 7 "), ("other", "zzz")]).unwrap();
        assert_eq!(
            b,
            Basic {
                n: 7,
                name: "ada".into(),
                tags: None
            }
        );
    }

    #[test]
    fn missing_required_param_is_named() {
        let e = parse::<Basic>(&[("name", "ada")]).unwrap_err();
        assert_eq!(e.to_string(), "missing required param `n`");
    }

    #[test]
    fn bad_number_names_param_and_value() {
        let e = parse::<Basic>(&[("n", "x1"), ("name", "a")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "param `n`: `x1` is not a valid u32 (invalid digit found in string)"
        );
        let e = parse::<Basic>(&[("n", "-1"), ("name", "a")]).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("param `n`: `-1` is not a valid u32"),
            "{e}"
        );
        let e = parse::<Basic>(&[("n", "99999999999"), ("name", "a")]).unwrap_err();
        assert!(e.to_string().contains("too large"), "{e}");
    }

    #[test]
    fn scalars() {
        assert_eq!(value::<i64>("-12").unwrap(), -12);
        assert_eq!(value::<u8>("255").unwrap(), 255);
        assert!(value::<u8>("256").is_err());
        assert_eq!(
            value::<i128>("-170141183460469231731687303715884105728").unwrap(),
            i128::MIN
        );
        assert_eq!(value::<f64>("2.5").unwrap(), 2.5);
        assert_eq!(value::<f32>("1e3").unwrap(), 1000.0);
        assert_eq!(value::<char>("é").unwrap(), 'é');
        assert!(value::<char>("ab").is_err());
        assert_eq!(value::<String>("  keep spaces ").unwrap(), "  keep spaces ");
        assert_eq!(value::<()>("").unwrap(), ());
    }

    #[test]
    fn bools() {
        for t in ["true", "TRUE", "yes", "on", "1", " true "] {
            assert!(value::<bool>(t).unwrap(), "{t}");
        }
        for f in ["false", "no", "off", "0"] {
            assert!(!value::<bool>(f).unwrap(), "{f}");
        }
        let e = value::<bool>("maybe").unwrap_err();
        assert!(
            e.to_string().starts_with("`maybe` is not a valid bool"),
            "{e}"
        );
    }

    #[test]
    fn options_are_some_when_present() {
        assert_eq!(value::<Option<u32>>("5").unwrap(), Some(5));
        assert_eq!(value::<Option<String>>("").unwrap(), Some(String::new()));
        assert!(value::<Option<u32>>("five").is_err());
    }

    #[test]
    fn sequences_json_or_comma_separated() {
        assert_eq!(value::<Vec<u32>>("[1, 2, 3]").unwrap(), vec![1, 2, 3]);
        assert_eq!(value::<Vec<u32>>("1, 2,3").unwrap(), vec![1, 2, 3]);
        assert_eq!(value::<Vec<String>>("a, b").unwrap(), vec!["a", "b"]);
        assert_eq!(value::<Vec<String>>("").unwrap(), Vec::<String>::new());
        assert_eq!(
            value::<Vec<String>>(r#"["a,b", "c"]"#).unwrap(),
            vec!["a,b", "c"]
        );
        assert_eq!(value::<(u8, String)>("1, x").unwrap(), (1, "x".to_string()));
        assert_eq!(value::<(u8, bool)>("[1, true]").unwrap(), (1, true));
        assert!(value::<(u8, u8)>("1,2,3").is_err());
        let e = value::<Vec<u32>>("1,x").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("element 1: `x` is not a valid u32"),
            "{e}"
        );
        assert!(value::<Vec<u32>>("[1, 2").is_err());
        assert!(value::<Vec<u32>>("[1] trailing").is_err());
    }

    #[test]
    fn maps_and_structs_from_json() {
        #[derive(Debug, Deserialize, PartialEq)]
        struct Inner {
            a: u32,
            b: Option<String>,
        }
        #[derive(Debug, Deserialize, PartialEq)]
        struct Outer {
            inner: Inner,
            weights: BTreeMap<String, f64>,
        }
        let o: Outer = parse(&[
            ("inner", r#"{"a": 1}"#),
            ("weights", r#"{"x": 0.5, "y": 2}"#),
        ])
        .unwrap();
        assert_eq!(o.inner, Inner { a: 1, b: None });
        assert_eq!(o.weights["y"], 2.0);
        let e = parse::<Outer>(&[("inner", "a=1"), ("weights", "{}")]).unwrap_err();
        assert!(
            e.to_string().starts_with("param `inner`: not valid JSON"),
            "{e}"
        );
    }

    #[test]
    fn enums_by_name_or_json() {
        #[derive(Debug, Deserialize, PartialEq)]
        #[serde(rename_all = "lowercase")]
        enum Mode {
            Fast,
            Slow,
            Custom { factor: u32 },
        }
        assert_eq!(value::<Mode>("fast").unwrap(), Mode::Fast);
        assert_eq!(value::<Mode>(" slow ").unwrap(), Mode::Slow);
        assert_eq!(value::<Mode>(r#""slow""#).unwrap(), Mode::Slow);
        assert_eq!(
            value::<Mode>(r#"{"custom": {"factor": 3}}"#).unwrap(),
            Mode::Custom { factor: 3 }
        );
        let e = value::<Mode>("medium").unwrap_err();
        assert!(e.to_string().contains("unknown variant `medium`"), "{e}");
    }

    #[test]
    fn defaults_renames_newtypes_and_whole_maps() {
        #[derive(Debug, Deserialize, PartialEq)]
        struct Port(u16);
        #[derive(Debug, Deserialize, PartialEq)]
        struct P {
            #[serde(default = "ten")]
            limit: u32,
            #[serde(rename = "dry-run", default)]
            dry_run: bool,
            port: Port,
        }
        fn ten() -> u32 {
            10
        }
        let p: P = parse(&[("port", "8080"), ("dry-run", "yes")]).unwrap();
        assert_eq!(
            p,
            P {
                limit: 10,
                dry_run: true,
                port: Port(8080)
            }
        );

        let all: BTreeMap<String, String> = parse(&[("a", "1"), ("b", "x")]).unwrap();
        assert_eq!(all.len(), 2);
        let nums: BTreeMap<String, u32> = parse(&[("a", "1"), ("b", "2")]).unwrap();
        assert_eq!(nums["b"], 2);
        let e = parse::<BTreeMap<String, u32>>(&[("a", "1"), ("b", "two")]).unwrap_err();
        assert!(e.to_string().starts_with("param `b`: "), "{e}");
    }

    #[test]
    fn deny_unknown_fields_is_respected() {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Strict {
            n: u32,
        }
        let e = parse::<Strict>(&[("n", "1"), ("typo", "2")]).unwrap_err();
        assert!(e.to_string().contains("unknown field `typo`"), "{e}");
    }

    #[test]
    fn any_sees_the_string() {
        let v: serde_json::Value = value("123").unwrap();
        assert_eq!(v, serde_json::Value::String("123".into()));
    }
}
