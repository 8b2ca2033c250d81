//! The task's parameters (resolved by the host after templating), all strings.

use std::fmt::Display;
use std::str::FromStr;

use serde::de::DeserializeOwned;

use crate::{TaskError, de::ParamsDeserializer, host};

/// Parameter `name`, if it was given.
pub fn get(name: &str) -> Option<String> {
    host::param_get(name)
}

/// Parameter `name` parsed as `T`.
///
/// A missing parameter or one that does not parse is a permanent error that names the
/// parameter, the offending value and the parse error, e.g.
/// ``param `n`: `x` is not a valid u32: invalid digit found in string``.
pub fn require<T>(name: &str) -> Result<T, TaskError>
where
    T: FromStr,
    T::Err: Display,
{
    match get(name) {
        None => Err(TaskError::permanent(format!("missing required param `{name}`"))),
        Some(raw) => parse_value(name, &raw),
    }
}

/// Parameter `name` parsed as `T`, or `default` if it was not given.
///
/// A parameter that is given but does not parse is still an error (permanent): a typo in a
/// parameter should not silently fall back to the default.
pub fn get_or<T>(name: &str, default: T) -> Result<T, TaskError>
where
    T: FromStr,
    T::Err: Display,
{
    match get(name) {
        None => Ok(default),
        Some(raw) => parse_value(name, &raw),
    }
}

/// Parameter `name` parsed as `T`, `None` if it was not given (a bad value is an error).
pub fn get_parsed<T>(name: &str) -> Result<Option<T>, TaskError>
where
    T: FromStr,
    T::Err: Display,
{
    get(name).map(|raw| parse_value(name, &raw)).transpose()
}

/// All parameters as `(name, value)` pairs, in the host's order.
pub fn all() -> Vec<(String, String)> {
    host::param_list()
}

/// Deserialize all parameters into `T` (usually a `#[derive(Deserialize)]` struct whose
/// field names are the parameter names). See [`from_pairs`] for how strings become values.
///
/// ```
/// # use sluice_sdk::{params, testing::MockHost};
/// #[derive(serde::Deserialize)]
/// struct Params { n: u32, name: String, tags: Option<Vec<String>> }
///
/// MockHost::new().param("n", "3").param("name", "x").param("tags", r#"["a","b"]"#).install();
/// let p: Params = params::parse().unwrap();
/// assert_eq!((p.n, p.tags.unwrap().len()), (3, 2));
/// ```
pub fn parse<T: DeserializeOwned>() -> Result<T, TaskError> {
    from_pairs(&all())
}

/// Deserialize `(name, value)` string pairs into `T`; the logic behind [`parse`].
///
/// Each value is a string that becomes what the field's type asks for: strings as-is;
/// integers, floats, `bool` (`true/false`, `yes/no`, `on/off`, `1/0`) and `char` parsed from the
/// trimmed string; `Option<T>` is `Some` when the parameter is present and `None` when it is
/// absent; sequences and tuples are JSON arrays (`["a","b"]`) or comma-separated lists
/// (`a, b`); maps and nested structs are JSON objects; enums are a variant name or JSON.
/// A missing non-`Option` field without `#[serde(default)]` is
/// ``missing required param `n` ``. Unknown parameters are ignored unless the struct has
/// `#[serde(deny_unknown_fields)]`. Every error is permanent.
pub fn from_pairs<T: DeserializeOwned>(pairs: &[(String, String)]) -> Result<T, TaskError> {
    T::deserialize(ParamsDeserializer::new(pairs)).map_err(TaskError::permanent)
}

fn parse_value<T>(name: &str, raw: &str) -> Result<T, TaskError>
where
    T: FromStr,
    T::Err: Display,
{
    raw.parse().map_err(|e| {
        TaskError::permanent(format!("param `{name}`: `{raw}` is not a valid {}: {e}", short_type_name::<T>()))
    })
}

/// `alloc::string::String` → `String`, `core::option::Option<u32>` → `Option<u32>`.
fn short_type_name<T>() -> String {
    let full = std::any::type_name::<T>();
    let mut out = String::with_capacity(full.len());
    let mut segment = String::new();
    for c in full.chars() {
        if c.is_alphanumeric() || c == '_' || c == ':' {
            segment.push(c);
        } else {
            out.push_str(segment.rsplit("::").next().unwrap_or(""));
            segment.clear();
            out.push(c);
        }
    }
    out.push_str(segment.rsplit("::").next().unwrap_or(""));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::MockHost;

    #[test]
    fn require_names_param_and_problem() {
        MockHost::new().param("n", "x").param("f", "1.5").install();
        let e = require::<u32>("n").unwrap_err();
        assert_eq!(e, TaskError::Permanent("param `n`: `x` is not a valid u32: invalid digit found in string".into()));
        let e = require::<u32>("missing").unwrap_err();
        assert_eq!(e, TaskError::Permanent("missing required param `missing`".into()));
        assert_eq!(require::<f64>("f").unwrap(), 1.5);
        assert_eq!(require::<String>("n").unwrap(), "x");
    }

    #[test]
    fn get_or_defaults_only_when_absent() {
        MockHost::new().param("bad", "nope").param("good", "7").install();
        assert_eq!(get_or("absent", 3u32).unwrap(), 3);
        assert_eq!(get_or("good", 3u32).unwrap(), 7);
        assert!(get_or("bad", 3u32).unwrap_err().is_permanent());
        assert_eq!(get_parsed::<u8>("good").unwrap(), Some(7));
        assert_eq!(get_parsed::<u8>("absent").unwrap(), None);
    }

    #[test]
    fn all_and_get() {
        MockHost::new().param("a", "1").param("b", "2").param("a", "3").install();
        assert_eq!(all(), vec![("b".into(), "2".into()), ("a".into(), "3".into())]);
        assert_eq!(get("a").as_deref(), Some("3"));
        assert_eq!(get("c"), None);
    }

    #[test]
    fn parse_errors_are_permanent() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct P {
            n: u32,
        }
        MockHost::new().param("n", "-3").install();
        let e = parse::<P>().unwrap_err();
        assert!(e.is_permanent());
        assert!(e.message().starts_with("param `n`: `-3` is not a valid u32"), "{e}");
    }

    #[test]
    fn type_names_are_short() {
        assert_eq!(short_type_name::<String>(), "String");
        assert_eq!(short_type_name::<u32>(), "u32");
        assert_eq!(short_type_name::<Option<std::net::Ipv4Addr>>(), "Option<Ipv4Addr>");
    }
}
