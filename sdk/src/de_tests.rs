//! Tests of de.rs.
use super::*;
use serde::Deserialize;
use std::collections::BTreeMap;

fn pairs(kv: &[(&str, &str)]) -> Vec<(String, String)> {
    kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
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
    assert_eq!(b, Basic { n: 42, name: "ada".into(), tags: Some(vec!["x".into(), "y".into()]) });
}

#[test]
fn missing_option_is_none_and_unknown_params_are_ignored() {
    let b: Basic = parse(&[("name", "ada"), ("n", " 7 "), ("other", "zzz")]).unwrap();
    assert_eq!(b, Basic { n: 7, name: "ada".into(), tags: None });
}

#[test]
fn missing_required_param_is_named() {
    let e = parse::<Basic>(&[("name", "ada")]).unwrap_err();
    assert_eq!(e.to_string(), "missing required param `n`");
}

#[test]
fn bad_number_names_param_and_value() {
    let e = parse::<Basic>(&[("n", "x1"), ("name", "a")]).unwrap_err();
    assert_eq!(e.to_string(), "param `n`: `x1` is not a valid u32 (invalid digit found in string)");
    let e = parse::<Basic>(&[("n", "-1"), ("name", "a")]).unwrap_err();
    assert!(e.to_string().starts_with("param `n`: `-1` is not a valid u32"), "{e}");
    let e = parse::<Basic>(&[("n", "99999999999"), ("name", "a")]).unwrap_err();
    assert!(e.to_string().contains("too large"), "{e}");
}

#[test]
fn scalars() {
    assert_eq!(value::<i64>("-12").unwrap(), -12);
    assert_eq!(value::<u8>("255").unwrap(), 255);
    assert!(value::<u8>("256").is_err());
    assert_eq!(value::<i128>("-170141183460469231731687303715884105728").unwrap(), i128::MIN);
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
    assert!(e.to_string().starts_with("`maybe` is not a valid bool"), "{e}");
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
    assert_eq!(value::<Vec<String>>(r#"["a,b", "c"]"#).unwrap(), vec!["a,b", "c"]);
    assert_eq!(value::<(u8, String)>("1, x").unwrap(), (1, "x".to_string()));
    assert_eq!(value::<(u8, bool)>("[1, true]").unwrap(), (1, true));
    assert!(value::<(u8, u8)>("1,2,3").is_err());
    let e = value::<Vec<u32>>("1,x").unwrap_err();
    assert!(e.to_string().starts_with("element 1: `x` is not a valid u32"), "{e}");
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
    let o: Outer = parse(&[("inner", r#"{"a": 1}"#), ("weights", r#"{"x": 0.5, "y": 2}"#)]).unwrap();
    assert_eq!(o.inner, Inner { a: 1, b: None });
    assert_eq!(o.weights["y"], 2.0);
    let e = parse::<Outer>(&[("inner", "a=1"), ("weights", "{}")]).unwrap_err();
    assert!(e.to_string().starts_with("param `inner`: not valid JSON"), "{e}");
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
    assert_eq!(value::<Mode>(r#"{"custom": {"factor": 3}}"#).unwrap(), Mode::Custom { factor: 3 });
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
    assert_eq!(p, P { limit: 10, dry_run: true, port: Port(8080) });

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
