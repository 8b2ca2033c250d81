//! Readable differences: a line diff of two texts (`-` expected, `+` actual, with a little
//! context) and a JSON-aware diff naming each path that differs.
//!
//! Pure functions over their inputs; every output is bounded (named limits below) so a
//! changed 1 GiB file never makes a 1 GiB message.

use serde_json::Value;

/// Lines of a text diff shown at most: enough to see a change, short enough to read.
pub const MAX_DIFF_LINES: usize = 60;
/// Differences of a JSON diff listed at most.
pub const MAX_JSON_DIFFS: usize = 20;
/// Unchanged lines shown around each change.
const CONTEXT: usize = 2;
/// The largest (expected lines × actual lines) table the line diff builds (32 MiB of
/// u16 cells at most); beyond it, only the first differing line is shown.
const MAX_LCS_CELLS: usize = 16 * 1024 * 1024;

/// A line diff of `expected` against `actual`: `-` lines only in expected, `+` lines
/// only in actual, `  ` context; `@@ line N` heads each hunk. Empty when equal.
pub fn text_diff(expected: &str, actual: &str) -> String {
    if expected == actual {
        return String::new();
    }
    let (a, b): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    if a.len().saturating_mul(b.len()) > MAX_LCS_CELLS || a.len() > u16::MAX as usize || b.len() > u16::MAX as usize {
        return first_difference(&a, &b);
    }
    let ops = edit_script(&a, &b);
    render(&ops)
}

#[derive(Clone, Copy, PartialEq)]
enum Op<'a> {
    Same(usize, &'a str),
    Removed(usize, &'a str),
    Added(usize, &'a str),
}

/// The longest common subsequence's edit script (expected line numbers for context).
fn edit_script<'a>(a: &[&'a str], b: &[&'a str]) -> Vec<Op<'a>> {
    let (n, m) = (a.len(), b.len());
    // lcs[i][j]: the LCS length of a[i..] and b[j..]
    let mut lcs = vec![0u16; (n + 1) * (m + 1)];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i * (m + 1) + j] = if a[i] == b[j] {
                lcs[(i + 1) * (m + 1) + j + 1] + 1
            } else {
                lcs[(i + 1) * (m + 1) + j].max(lcs[i * (m + 1) + j + 1])
            };
        }
    }
    let (mut i, mut j, mut ops) = (0, 0, Vec::new());
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            ops.push(Op::Same(i + 1, a[i]));
            (i, j) = (i + 1, j + 1);
        } else if i < n && (j == m || lcs[(i + 1) * (m + 1) + j] >= lcs[i * (m + 1) + j + 1]) {
            ops.push(Op::Removed(i + 1, a[i]));
            i += 1;
        } else {
            ops.push(Op::Added(j + 1, b[j]));
            j += 1;
        }
    }
    ops
}

fn render(ops: &[Op<'_>]) -> String {
    let near_change = |k: usize| {
        let lo = k.saturating_sub(CONTEXT);
        let hi = (k + CONTEXT + 1).min(ops.len());
        ops[lo..hi].iter().any(|op| !matches!(op, Op::Same(..)))
    };
    let mut lines = Vec::new();
    let mut last_shown: Option<usize> = None;
    for (k, op) in ops.iter().enumerate() {
        if !near_change(k) {
            continue;
        }
        if last_shown.is_none_or(|last| last + 1 != k) {
            let at = match op {
                Op::Same(n, _) | Op::Removed(n, _) => format!("@@ line {n} (expected)"),
                Op::Added(n, _) => format!("@@ line {n} (actual)"),
            };
            lines.push(at);
        }
        last_shown = Some(k);
        lines.push(match op {
            Op::Same(_, l) => format!("  {l}"),
            Op::Removed(_, l) => format!("- {l}"),
            Op::Added(_, l) => format!("+ {l}"),
        });
    }
    cap(lines)
}

fn first_difference(a: &[&str], b: &[&str]) -> String {
    let at = a.iter().zip(b).position(|(x, y)| x != y).unwrap_or(a.len().min(b.len()));
    let line = |side: &[&str]| side.get(at).map_or("(no line: the text ends)".to_string(), |l| l.to_string());
    format!(
        "@@ first difference at line {} (texts too large to diff: {} and {} lines)\n- {}\n+ {}",
        at + 1,
        a.len(),
        b.len(),
        line(a),
        line(b)
    )
}

fn cap(mut lines: Vec<String>) -> String {
    if lines.len() > MAX_DIFF_LINES {
        let more = lines.len() - MAX_DIFF_LINES;
        lines.truncate(MAX_DIFF_LINES);
        lines.push(format!("… {more} more diff lines"));
    }
    lines.join("\n")
}

/// Each path where `actual` differs from `expected`, as `PATH: expected X, got Y`,
/// `PATH: missing (expected X)` or `PATH: unexpected Y`; at most [`MAX_JSON_DIFFS`].
pub fn json_diff(expected: &Value, actual: &Value, root: &str) -> Vec<String> {
    let mut out = Vec::new();
    walk(expected, actual, root.to_string(), &mut out);
    if out.len() > MAX_JSON_DIFFS {
        let more = out.len() - MAX_JSON_DIFFS;
        out.truncate(MAX_JSON_DIFFS);
        out.push(format!("… {more} more differences"));
    }
    out
}

fn walk(expected: &Value, actual: &Value, path: String, out: &mut Vec<String>) {
    if out.len() > MAX_JSON_DIFFS {
        return;
    }
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (key, ev) in e {
                let child = child(&path, key);
                match a.get(key) {
                    Some(av) => walk(ev, av, child, out),
                    None => out.push(format!("{child}: missing (expected {})", super::check::shorten(ev))),
                }
            }
            for (key, av) in a.iter().filter(|(k, _)| !e.contains_key(*k)) {
                out.push(format!("{}: unexpected {}", child(&path, key), super::check::shorten(av)));
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                walk(ev, av, format!("{path}[{i}]"), out);
            }
            if e.len() != a.len() {
                out.push(format!("{path}: expected {} elements, got {}", e.len(), a.len()));
            }
        }
        (e, a) if super::check::compare(a, crate::spec::suite::CompareOp::Eq, e).unwrap_or(false) => {}
        (e, a) => out.push(format!("{path}: expected {}, got {}", super::check::shorten(e), super::check::shorten(a))),
    }
}

fn child(path: &str, key: &str) -> String {
    if !key.is_empty() && key.chars().all(|c| c.is_alphanumeric() || c == '_') {
        format!("{path}.{key}")
    } else {
        format!("{path}[{}]", Value::String(key.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_line_diff_shows_the_change_with_context() {
        let diff = text_diff("a\nb\nc\nd\ne\nf\ng\n", "a\nb\nc\nD\ne\nf\ng\n");
        assert_eq!(diff, "@@ line 2 (expected)\n  b\n  c\n- d\n+ D\n  e\n  f");
        assert_eq!(text_diff("same", "same"), "");
        assert_eq!(text_diff("x\n", "x\ny\n"), "@@ line 1 (expected)\n  x\n+ y");
    }

    #[test]
    fn a_json_diff_names_every_path_that_differs() {
        let expected = json!({ "rows": [{ "id": 1 }, { "id": 2 }], "name": "a", "gone": true });
        let actual = json!({ "rows": [{ "id": 1 }, { "id": 3 }], "name": "a", "new key": 1 });
        assert_eq!(
            json_diff(&expected, &actual, "$"),
            vec!["$.gone: missing (expected true)", "$.rows[1].id: expected 2, got 3", "$[\"new key\"]: unexpected 1"]
        );
    }

    #[test]
    fn huge_texts_show_their_first_difference() {
        let a: String = (0..5000).map(|i| format!("{i}\n")).collect();
        let b = a.replace("4000\n", "x\n");
        let diff = text_diff(&a, &b);
        assert!(
            diff.contains("first difference at line 4001") && diff.contains("- 4000") && diff.contains("+ x"),
            "{diff}"
        );
    }
}
