//! Name rules shared by the bundle file's parts, and "did you mean" suggestions.

/// The longest task key, job name, component name or parameter name accepted.
pub const MAX_NAME_LEN: usize = 100;

/// Checks a task key, job name, component name or parameter name: `^[A-Za-z0-9_-]+$`,
/// at most [`MAX_NAME_LEN`] characters. The error explains the rule.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("name is empty; use letters, digits, `_` and `-`".to_string());
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!("name is {} characters long; at most {MAX_NAME_LEN} are allowed", name.len()));
    }
    match name.chars().find(|&c| !is_name_char(c)) {
        Some(bad) => Err(format!("`{name}` contains {bad:?}; use only letters, digits, `_` and `-`")),
        None => Ok(()),
    }
}

/// Whether `name` follows the [`check_name`] rule.
pub fn is_name(name: &str) -> bool {
    check_name(name).is_ok()
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

fn is_secret_part_char(c: char) -> bool {
    is_name_char(c) || c == '.'
}

/// Checks a secret name: `scope/key`, each part `[A-Za-z0-9_.-]+`.
pub fn check_secret_name(name: &str) -> Result<(), String> {
    let shape_ok = match name.split_once('/') {
        Some((scope, key)) => {
            !scope.is_empty()
                && !key.is_empty()
                && scope.chars().all(is_secret_part_char)
                && key.chars().all(is_secret_part_char)
        }
        None => false,
    };
    if shape_ok {
        Ok(())
    } else {
        Err(format!("secret `{name}` is not a `scope/key` name (each part uses letters, digits, `_`, `.` and `-`)"))
    }
}

/// Writes one key of a dotted key path, quoting it when it is not a bare TOML key.
pub fn push_key(path: &mut String, key: &str) {
    if !path.is_empty() {
        path.push('.');
    }
    if !key.is_empty() && key.chars().all(is_name_char) {
        path.push_str(key);
    } else {
        path.push_str(&format!("{key:?}"));
    }
}

/// `parent.key`, quoting `key` when needed.
pub fn child_path(parent: &str, key: &str) -> String {
    let mut path = parent.to_string();
    push_key(&mut path, key);
    path
}

/// The candidate closest to `wanted` within edit distance 2, if any (first wins a tie).
pub fn closest<'c>(wanted: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    let mut best: Option<(usize, &str)> = None;
    for candidate in candidates {
        let distance = edit_distance(wanted, candidate);
        if distance <= 2 && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

/// " (did you mean `x`?)" when a candidate is close, else "".
pub fn suggestion<'c>(wanted: &str, candidates: impl IntoIterator<Item = &'c str>) -> String {
    closest(wanted, candidates).map_or_else(String::new, |close| format!(" (did you mean `{close}`?)"))
}

/// Levenshtein distance over characters.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = Vec::with_capacity(b.len() + 1);
        current.push(i + 1);
        for (j, &cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != cb);
            let insert = current[j] + 1;
            let delete = previous[j + 1] + 1;
            current.push(substitute.min(insert).min(delete));
        }
        previous = current;
    }
    previous[b.len()]
}

/// Joins names as "`a`, `b`, `c`" for error messages, or "none" when empty.
pub fn list(names: impl IntoIterator<Item = impl AsRef<str>>) -> String {
    let quoted: Vec<String> = names.into_iter().map(|n| format!("`{}`", n.as_ref())).collect();
    if quoted.is_empty() { "none".to_string() } else { quoted.join(", ") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_rule() {
        assert!(check_name("bronze_orders-2").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("a b").unwrap_err().contains("' '"));
        assert!(check_name(&"x".repeat(101)).unwrap_err().contains("at most 100"));
        assert!(check_name(&"x".repeat(100)).is_ok());
    }

    #[test]
    fn secret_names_need_scope_and_key() {
        assert!(check_secret_name("storage/access_key").is_ok());
        assert!(check_secret_name("a.b/c-d").is_ok());
        for bad in ["storage", "/key", "scope/", "a/b/c", "a b/c"] {
            assert!(check_secret_name(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn suggestions_stay_within_two_edits() {
        assert_eq!(edit_distance("timout", "timeout"), 1);
        assert_eq!(closest("dependson", ["key", "depends_on"]), Some("depends_on"));
        assert_eq!(closest("zzzzzz", ["key", "depends_on"]), None);
    }

    #[test]
    fn key_paths_quote_odd_keys() {
        assert_eq!(child_path("jobs", "hello"), "jobs.hello");
        assert_eq!(child_path("", "bundle"), "bundle");
        assert_eq!(child_path("components", "a.b"), "components.\"a.b\"");
    }
}
