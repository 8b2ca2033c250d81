//! Tests of the cache key: canonical encoding, explanations, nearest results.

use super::*;

const ABI: u32 = 1;

fn hex(byte: u8) -> String {
    Hash([byte; 32]).to_string()
}

/// A full set of parts: every field set.
fn sample() -> KeyParts {
    let mut parts = KeyParts::new(hex(0x3f), ABI);
    parts.params = BTreeMap::from([("day".into(), "2026-11-25".into()), ("who".into(), "world".into())]);
    parts.limits = limit_parts(64 << 20, None, 1 << 20, None);
    parts.mounts = vec![MountPart { guest: "/landing".into(), mode: "ro".into(), content: hex(1) }];
    parts.inputs = BTreeMap::from([("upstream.bronze".into(), hex(2)), ("context.target".into(), "dev".into())]);
    parts.capabilities = vec!["world:task".into(), "mounts:ro".into(), "secrets".into()];
    parts.secrets = BTreeMap::from([("storage/key".into(), 1)]);
    parts.env = BTreeMap::from([("GREETING".into(), "hi".into())]);
    parts.args = vec!["--name".into(), "x".into()];
    parts.stdin = Some(hex(3));
    parts
}

#[test]
fn new_parts_carry_the_versions() {
    let parts = KeyParts::new("abc", ABI);
    assert_eq!(parts.format, KEY_FORMAT_VERSION);
    assert_eq!(parts.abi, ABI);
    assert_eq!(parts.key(), KeyParts::new("abc", ABI).key());
    assert!(parts.canonical().starts_with(KEY_DOMAIN));
}

#[test]
fn every_field_changes_the_key() {
    let base = sample();
    let key = base.key();
    type Mutation = Box<dyn Fn(&mut KeyParts)>;
    let mutations: Vec<(&str, Mutation)> = vec![
        ("format", Box::new(|p: &mut KeyParts| p.format += 1)),
        ("component", Box::new(|p: &mut KeyParts| p.component = hex(0x9c))),
        ("param value", Box::new(|p: &mut KeyParts| *p.params.get_mut("day").unwrap() = "2026-11-26".into())),
        (
            "param added",
            Box::new(|p: &mut KeyParts| {
                p.params.insert("n".into(), "5".into());
            }),
        ),
        ("limit", Box::new(|p: &mut KeyParts| p.limits = limit_parts(128 << 20, None, 1 << 20, None))),
        ("mount content", Box::new(|p: &mut KeyParts| p.mounts[0].content = hex(9))),
        ("mount mode", Box::new(|p: &mut KeyParts| p.mounts[0].mode = "rw".into())),
        ("mount guest", Box::new(|p: &mut KeyParts| p.mounts[0].guest = "/landed".into())),
        (
            "input",
            Box::new(|p: &mut KeyParts| {
                p.inputs.insert("upstream.bronze".into(), hex(7));
            }),
        ),
        ("capability", Box::new(|p: &mut KeyParts| p.capabilities.push("network".into()))),
        (
            "secret version",
            Box::new(|p: &mut KeyParts| {
                p.secrets.insert("storage/key".into(), 2);
            }),
        ),
        (
            "env",
            Box::new(|p: &mut KeyParts| {
                p.env.insert("GREETING".into(), "hello".into());
            }),
        ),
        ("args", Box::new(|p: &mut KeyParts| p.args.push("y".into()))),
        ("args order", Box::new(|p: &mut KeyParts| p.args.reverse())),
        ("stdin", Box::new(|p: &mut KeyParts| p.stdin = None)),
        ("abi", Box::new(|p: &mut KeyParts| p.abi += 1)),
    ];
    for (what, mutate) in mutations {
        let mut changed = base.clone();
        mutate(&mut changed);
        assert_ne!(changed.key(), key, "{what} did not change the key");
        assert!(!explain(&base, &changed).is_empty(), "{what} is not explained");
    }
}

#[test]
fn bytes_moved_between_adjacent_fields_change_the_key() {
    // Each pair has the same bytes in the same order, split differently between fields
    // (or between the items of one field).
    let pairs: Vec<(KeyParts, KeyParts)> = vec![
        (
            KeyParts { component: "abc".into(), ..KeyParts::new("", ABI) },
            KeyParts {
                component: "ab".into(),
                params: BTreeMap::from([("c".into(), String::new())]),
                ..KeyParts::new("", ABI)
            },
        ),
        (
            KeyParts { params: BTreeMap::from([("a".into(), "bc".into())]), ..KeyParts::new("x", ABI) },
            KeyParts { params: BTreeMap::from([("ab".into(), "c".into())]), ..KeyParts::new("x", ABI) },
        ),
        (
            KeyParts { params: BTreeMap::from([("m".into(), "1".into())]), ..KeyParts::new("x", ABI) },
            KeyParts { limits: BTreeMap::from([("m".into(), "1".into())]), ..KeyParts::new("x", ABI) },
        ),
        (
            KeyParts { inputs: BTreeMap::from([("k".into(), "v".into())]), ..KeyParts::new("x", ABI) },
            KeyParts { env: BTreeMap::from([("k".into(), "v".into())]), ..KeyParts::new("x", ABI) },
        ),
        (
            KeyParts { capabilities: vec!["ab".into()], ..KeyParts::new("x", ABI) },
            KeyParts { capabilities: vec!["a".into(), "b".into()], ..KeyParts::new("x", ABI) },
        ),
        (
            KeyParts { args: vec!["a b".into()], ..KeyParts::new("x", ABI) },
            KeyParts { args: vec!["a".into(), "b".into()], ..KeyParts::new("x", ABI) },
        ),
        (
            KeyParts { args: vec!["ab".into(), String::new()], ..KeyParts::new("x", ABI) },
            KeyParts { args: vec!["a".into(), "b".into()], ..KeyParts::new("x", ABI) },
        ),
        (
            KeyParts { args: vec![String::new()], ..KeyParts::new("x", ABI) },
            KeyParts { stdin: Some(String::new()), ..KeyParts::new("x", ABI) },
        ),
        (
            KeyParts {
                mounts: vec![MountPart { guest: "/ab".into(), mode: "ro".into(), content: "c".into() }],
                ..KeyParts::new("x", ABI)
            },
            KeyParts {
                mounts: vec![MountPart { guest: "/a".into(), mode: "bro".into(), content: "c".into() }],
                ..KeyParts::new("x", ABI)
            },
        ),
        (
            KeyParts {
                env: BTreeMap::from([("A".into(), "1".into()), ("B".into(), "2".into())]),
                ..KeyParts::new("x", ABI)
            },
            KeyParts { env: BTreeMap::from([("A".into(), "1B2".into())]), ..KeyParts::new("x", ABI) },
        ),
        (
            KeyParts { secrets: BTreeMap::from([("s".into(), 1)]), ..KeyParts::new("x", ABI) },
            KeyParts { secrets: BTreeMap::from([("s".into(), 256)]), ..KeyParts::new("x", ABI) },
        ),
    ];
    for (i, (a, b)) in pairs.iter().enumerate() {
        assert_ne!(a.canonical(), b.canonical(), "pair {i} encodes alike");
        assert_ne!(a.key(), b.key(), "pair {i} collides");
    }
}

#[test]
fn sets_are_canonical_and_order_free() {
    let base = sample();
    let mut shuffled = base.clone();
    shuffled.capabilities.reverse();
    shuffled.capabilities.push("secrets".into()); // a duplicate changes nothing
    shuffled.mounts.insert(0, MountPart { guest: "/a".into(), mode: "ro".into(), content: hex(5) });
    let mut sorted = base.clone();
    sorted.mounts.push(MountPart { guest: "/a".into(), mode: "ro".into(), content: hex(5) });
    assert_eq!(shuffled.key(), sorted.key());
    let mut reversed = sorted.clone();
    reversed.capabilities.reverse();
    assert!(explain(&sorted, &shuffled).is_empty());
    assert_eq!(reversed.key(), sorted.key());
}

#[test]
fn parts_round_trip_through_json_and_tolerate_missing_fields() {
    let parts = sample();
    let json = serde_json::to_string(&parts).unwrap();
    let back: KeyParts = serde_json::from_str(&json).unwrap();
    assert_eq!(back, parts);
    assert_eq!(back.key(), parts.key());
    let sparse: KeyParts = serde_json::from_str(r#"{"format":1,"component":"ab","abi":1}"#).unwrap();
    assert_eq!(sparse.component, "ab");
    assert!(sparse.params.is_empty() && sparse.stdin.is_none());
}

#[test]
fn explanations_read_as_the_design_says() {
    let old = sample();
    let mut new = old.clone();
    new.format = old.format + 1;
    new.component = hex(0x9c);
    new.params.insert("day".into(), "2026-11-26".into());
    new.params.insert("n".into(), "5".into());
    new.params.remove("who");
    new.limits = limit_parts(128 << 20, Some(1000), 1 << 20, None);
    new.mounts[0].content = hex(8);
    new.mounts.push(MountPart { guest: "/ref".into(), mode: "ro".into(), content: hex(4) });
    new.inputs.insert("upstream.bronze".into(), hex(6));
    new.inputs.insert("upstream.silver".into(), hex(6));
    new.inputs.insert("context.target".into(), "prod".into());
    new.capabilities.push("stdin".into());
    new.capabilities.retain(|c| c != "secrets");
    new.secrets.insert("storage/key".into(), 2);
    new.secrets.insert("db/password".into(), 3);
    new.env.insert("GREETING".into(), "hello".into());
    new.args = vec!["--name".into(), "y".into()];
    new.stdin = None;
    new.abi = 2;
    let texts: Vec<String> = explain(&old, &new).iter().map(|d| d.to_string()).collect();
    let version = format!("key format version changed ({} → {})", old.format, new.format);
    let expected = [
        version.as_str(),
        "component changed: 3f3f3f3f… → 9c9c9c9c…",
        "param day: 2026-11-25 → 2026-11-26",
        "param n added (= 5)",
        "param who removed (was world)",
        "limit fuel: unmetered → 1000",
        "limit memory: 64MiB → 128MiB",
        "mount /landing content changed",
        "mount /ref added (ro)",
        "input context.target: dev → prod",
        "input upstream.bronze changed",
        "input upstream.silver added",
        "capability stdin granted",
        "capability secrets no longer granted",
        "secret db/password granted (version 3)",
        "secret storage/key: version 1 → 2",
        "env GREETING: hi → hello",
        "args changed: --name x → --name y",
        "stdin removed",
        "sandbox ABI changed (1 → 2)",
    ];
    assert_eq!(texts, expected);
    let parts: Vec<Part> = explain(&old, &new).into_iter().map(|d| d.part).collect();
    assert_eq!(parts[2], Part::Param("day".into()));
    assert_eq!(parts[7], Part::Mount("/landing".into()));
    assert!(explain(&old, &old).is_empty());
}

#[test]
fn long_values_are_shortened_in_explanations() {
    let old = KeyParts::new("x", ABI);
    let mut new = old.clone();
    new.params.insert("blob".into(), "z".repeat(500));
    let text = explain(&old, &new)[0].to_string();
    assert!(text.len() < 100 && text.ends_with("…)"), "{text}");
}

#[test]
fn nearest_has_fewest_differences_and_ties_go_to_the_latest() {
    let new = sample();
    let mut one_off = new.clone();
    one_off.params.insert("day".into(), "2026-11-24".into());
    let mut also_one_off = new.clone();
    also_one_off.component = hex(1);
    let mut far = new.clone();
    far.component = hex(2);
    far.abi = 9;
    far.args.clear();
    let candidates = [far.clone(), one_off.clone(), also_one_off.clone()];
    assert_eq!(nearest(&new, candidates.iter()), Some(&also_one_off));
    let candidates = [also_one_off.clone(), one_off.clone(), far.clone()];
    assert_eq!(nearest(&new, candidates.iter()), Some(&one_off));
    assert_eq!(nearest(&new, std::iter::empty()), None);
    let exact = [new.clone(), far];
    assert_eq!(nearest(&new, exact.iter()), Some(&new));
}

#[test]
fn limits_read_exactly() {
    assert_eq!(crate::util::exact_size(64 << 20), "64MiB");
    assert_eq!(crate::util::exact_size(1 << 30), "1GiB");
    assert_eq!(crate::util::exact_size(1536), "1536B");
    assert_eq!(crate::util::exact_size(3 << 10), "3KiB");
    assert_eq!(crate::util::exact_size(0), "0B");
    let limits = limit_parts(256 << 20, Some(5), 1 << 20, Some(10 << 20));
    assert_eq!(limits["memory"], "256MiB");
    assert_eq!(limits["fuel"], "5");
    assert_eq!(limits["max_output"], "1MiB");
    assert_eq!(limits["max_out"], "10MiB");
    assert!(!limits.contains_key("max_log") && !limits.contains_key("timeout"));
}

#[test]
fn upstream_digest_covers_output_values_and_files() {
    let values = vec![("rows".to_string(), "3".to_string()), ("files".to_string(), "[]".to_string())];
    let mut reordered = values.clone();
    reordered.reverse();
    let tree = Hash::of(b"tree");
    let base = upstream_digest(Some("{}"), &values, Some(&tree));
    assert_eq!(base, upstream_digest(Some("{}"), &reordered, Some(&tree)));
    assert_ne!(base, upstream_digest(Some("{ }"), &values, Some(&tree)));
    assert_ne!(base, upstream_digest(Some("{}"), &values[..1], Some(&tree)));
    assert_ne!(base, upstream_digest(Some("{}"), &values, None));
    assert_ne!(upstream_digest(None, &[], None), upstream_digest(Some(""), &[], None));
    assert_eq!(upstream_input("bronze"), "upstream.bronze");
}
