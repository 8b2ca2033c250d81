//! Replacing revealed secret values by `[REDACTED]`.
//!
//! A [`Redactor`] is built from the values an attempt revealed and finds, in
//! one aho-corasick pass (leftmost-longest), each value in the forms a task is
//! likely to print it in: as is; JSON-escaped; base64, standard and URL-safe,
//! padded and not; the stretch of base64 that a value produces wherever it
//! sits inside a longer encoded string (as in an HTTP Basic `user:password`
//! header); percent-encoded (upper- and lowercase hex, `%20` or `+` for a
//! space); and hex, lower- and uppercase (as `xxd -p`, `hexdump` and most
//! "print the bytes" code write it; a byte is two digits wherever it sits, so the
//! value's hex is found inside a longer hex string too). JSON documents
//! (outputs, task values) stay valid JSON.
//!
//! This is a safety net against accidental leaks, not a barrier: a task that
//! wants to leak a value it holds can transform it in ways no pattern covers
//! (the design's `inject` grants, where the guest never holds the value, are
//! the barrier). Pure: no I/O. The patterns are zeroized on drop (the
//! automaton's internal copy is not).

use aho_corasick::{AhoCorasick, MatchKind};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use serde_json::Value;
use zeroize::Zeroizing;

/// What a value is replaced by.
pub const REDACTED: &str = "[REDACTED]";

/// Shortest stretch of a value's base64 taken from inside a longer encoding:
/// shorter ones would match unrelated text too often.
const MIN_BASE64_FRAGMENT: usize = 4;

/// How much of a stream [`Redactor::found_in_reader`] reads at a time.
const SCAN_CHUNK: usize = 64 << 10;

/// Finds and replaces the values an attempt revealed.
pub struct Redactor {
    matcher: Option<AhoCorasick>,
    patterns: Vec<Zeroizing<String>>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} patterns)", self.patterns.len())
    }
}

impl Redactor {
    /// A redactor that changes nothing.
    pub fn none() -> Redactor {
        Redactor { matcher: None, patterns: Vec::new() }
    }

    /// A redactor for `values` and their encodings. Empty values are ignored.
    pub fn new<S: AsRef<str>>(values: impl IntoIterator<Item = S>) -> Redactor {
        let mut patterns: Vec<Zeroizing<String>> = Vec::new();
        for value in values {
            for form in forms(value.as_ref()) {
                if !form.is_empty() && !patterns.iter().any(|p| **p == *form) {
                    patterns.push(form);
                }
            }
        }
        if patterns.is_empty() {
            return Redactor::none();
        }
        let matcher = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(patterns.iter().map(|p| p.as_bytes()))
            .ok();
        Redactor { matcher, patterns }
    }

    /// Whether there is nothing to redact.
    pub fn is_empty(&self) -> bool {
        self.matcher.is_none()
    }

    /// Whether any form of any value occurs in `bytes`.
    pub fn found_in(&self, bytes: &[u8]) -> bool {
        self.matcher.as_ref().is_some_and(|m| m.is_match(bytes))
    }

    /// Whether any form of any value occurs in what `reader` yields, read in chunks that
    /// overlap by the longest form less one byte (so a value across two chunks is found).
    pub fn found_in_reader(&self, mut reader: impl std::io::Read) -> std::io::Result<bool> {
        let Some(matcher) = &self.matcher else { return Ok(false) };
        let overlap = self.patterns.iter().map(|p| p.len()).max().unwrap_or(1) - 1;
        let mut buf = vec![0u8; overlap + SCAN_CHUNK];
        let mut held = 0;
        loop {
            let n = match reader.read(&mut buf[held..]) {
                Ok(0) => return Ok(false),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let filled = held + n;
            if matcher.is_match(&buf[..filled]) {
                return Ok(true);
            }
            held = overlap.min(filled);
            buf.copy_within(filled - held..filled, 0);
        }
    }

    /// `text` with every occurrence replaced by [`REDACTED`].
    pub fn redact(&self, text: &str) -> String {
        let Some(matcher) = &self.matcher else { return text.to_string() };
        let mut out = String::with_capacity(text.len());
        matcher.replace_all_with(text, &mut out, |_, _, dst| {
            dst.push_str(REDACTED);
            true
        });
        out
    }

    /// A log: like [`Redactor::redact`], and if the log was cut off (`truncated`),
    /// a trailing start of a value (the cap fell inside it) is redacted too.
    pub fn redact_log(&self, text: &str, truncated: bool) -> String {
        let mut out = self.redact(text);
        if truncated && !self.is_empty() {
            let cut = self
                .patterns
                .iter()
                .filter_map(|p| {
                    (1..p.len().min(out.len() + 1))
                        .rev()
                        .find(|&k| out.as_bytes().ends_with(&p.as_bytes()[..k]) && out.is_char_boundary(out.len() - k))
                })
                .max();
            if let Some(k) = cut {
                out.truncate(out.len() - k);
                out.push_str(REDACTED);
            }
        }
        out
    }

    /// A JSON document with every value redacted, still valid JSON: a match
    /// inside a string becomes `[REDACTED]` within it; a number, boolean or
    /// null that is a value becomes the string `"[REDACTED]"`; escaped forms
    /// (`\u0041`) are caught on the decoded text. Not JSON: redacted as text.
    pub fn redact_json(&self, json: &str) -> String {
        if self.is_empty() {
            return json.to_string();
        }
        let text = self.redact(json);
        match serde_json::from_str::<Value>(&text) {
            Ok(v) if !self.hides_in(&v) => text,
            _ => match serde_json::from_str::<Value>(json) {
                Ok(v) => serde_json::to_string(&self.redact_value(v)).unwrap_or_else(|_| format!("\"{REDACTED}\"")),
                Err(_) => text,
            },
        }
    }

    fn hides_in(&self, v: &Value) -> bool {
        match v {
            Value::String(s) => self.found_in(s.as_bytes()),
            Value::Array(items) => items.iter().any(|i| self.hides_in(i)),
            Value::Object(map) => map.iter().any(|(k, v)| self.found_in(k.as_bytes()) || self.hides_in(v)),
            scalar => self.found_in(scalar.to_string().as_bytes()),
        }
    }

    fn redact_value(&self, v: Value) -> Value {
        match v {
            Value::String(s) => Value::String(self.redact(&s)),
            Value::Array(items) => Value::Array(items.into_iter().map(|i| self.redact_value(i)).collect()),
            Value::Object(map) => {
                Value::Object(map.into_iter().map(|(k, v)| (self.redact(&k), self.redact_value(v))).collect())
            }
            scalar if self.found_in(scalar.to_string().as_bytes()) => Value::String(REDACTED.to_string()),
            scalar => scalar,
        }
    }
}

/// Every form of `value` a redactor looks for.
pub(crate) fn forms(value: &str) -> Vec<Zeroizing<String>> {
    if value.is_empty() {
        return Vec::new();
    }
    let bytes = value.as_bytes();
    let mut out = vec![Zeroizing::new(value.to_string())];
    if let Ok(quoted) = serde_json::to_string(value) {
        if let Some(inner) = quoted.strip_prefix('"').and_then(|q| q.strip_suffix('"')) {
            out.push(Zeroizing::new(inner.to_string()));
        }
        drop(Zeroizing::new(quoted));
    }
    for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
        out.push(Zeroizing::new(engine.encode(bytes)));
    }
    for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
        for offset in 0..3 {
            if let Some(core) = base64_core(engine, bytes, offset) {
                out.push(core);
            }
        }
    }
    out.push(hex(bytes, LOWER_HEX));
    out.push(hex(bytes, UPPER_HEX));
    out.push(percent_encode(bytes, UPPER_HEX, false));
    out.push(percent_encode(bytes, LOWER_HEX, false));
    out.push(percent_encode(bytes, UPPER_HEX, true));
    out
}

/// The characters of `bytes`' base64 that are the same wherever `bytes` sits
/// in a longer input whose length before it is `offset` modulo 3.
fn base64_core(engine: &base64::engine::GeneralPurpose, bytes: &[u8], offset: usize) -> Option<Zeroizing<String>> {
    let mut shifted = Zeroizing::new(vec![0u8; offset]);
    shifted.extend_from_slice(bytes);
    let encoded = Zeroizing::new(engine.encode(shifted.as_slice()));
    // leading characters that mix in the bytes before; trailing one that mixes in the bytes after
    let skip = [0, 2, 3][offset];
    let end = shifted.len() * 8 / 6;
    (end >= skip + MIN_BASE64_FRAGMENT).then(|| Zeroizing::new(encoded[skip..end].to_string()))
}

const LOWER_HEX: &[u8; 16] = b"0123456789abcdef";
const UPPER_HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Two hex digits per byte.
fn hex(bytes: &[u8], digits: &[u8; 16]) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(bytes.len() * 2));
    for &b in bytes {
        out.push(char::from(digits[usize::from(b >> 4)]));
        out.push(char::from(digits[usize::from(b & 0xf)]));
    }
    out
}

/// RFC 3986 percent-encoding (everything but unreserved characters); `plus`:
/// a space becomes `+` (HTML forms).
fn percent_encode(bytes: &[u8], hex: &[u8; 16], plus: bool) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(bytes.len() * 3));
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else if plus && b == b' ' {
            out.push('+');
        } else {
            out.push('%');
            out.push(char::from(hex[usize::from(b >> 4)]));
            out.push(char::from(hex[usize::from(b & 0xf)]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "s3cr3t/p@ss w+rd?";

    fn clean(r: &Redactor, text: &str) {
        let out = r.redact(text);
        assert!(!r.found_in(out.as_bytes()), "{out}");
        assert!(out.contains(REDACTED), "{text} → {out}");
    }

    #[test]
    fn every_encoding_is_redacted() {
        let r = Redactor::new([SECRET]);
        let b = SECRET.as_bytes();
        for form in [
            SECRET.to_string(),
            STANDARD.encode(b),
            STANDARD_NO_PAD.encode(b),
            URL_SAFE.encode(b),
            URL_SAFE_NO_PAD.encode(b),
            "s3cr3t%2Fp%40ss%20w%2Brd%3F".to_string(),
            "s3cr3t%2fp%40ss%20w%2brd%3f".to_string(),
            "s3cr3t%2Fp%40ss+w%2Brd%3F".to_string(),
            "7333637233742f7040737320772b72643f".to_string(),
            "7333637233742F7040737320772B72643F".to_string(),
        ] {
            clean(&r, &format!("before {form} after"));
            assert_eq!(r.redact(&format!("x{form}y")), format!("x{REDACTED}y"), "{form}");
        }
    }

    #[test]
    fn hex_in_either_case_is_redacted_alone_and_inside_longer_hex() {
        let r = Redactor::new(["pw:\u{e9}t\u{e9}"]);
        // "pw:été": the UTF-8 bytes, as `xxd -p` (lower) or a debugger (upper) prints them
        let lower = "70773ac3a974c3a9";
        assert_eq!(r.redact(lower), REDACTED);
        assert_eq!(r.redact(&lower.to_uppercase()), REDACTED);
        // inside a longer dump: "user=" before, "\n" after
        let dump = format!("75736572 3d{lower}0a");
        assert_eq!(r.redact(&dump), format!("75736572 3d{REDACTED}0a"));
        let upper = format!("0x7573657220{}", lower.to_uppercase());
        assert_eq!(r.redact(&upper), format!("0x7573657220{REDACTED}"));
        // in JSON, hex is an ordinary string
        let v: Value = serde_json::from_str(&r.redact_json(&format!("{{\"h\":\"{lower}\"}}"))).unwrap();
        assert_eq!(v["h"], REDACTED);
        // mixed case is not a form a program writes: left alone (a net, not a barrier)
        assert_eq!(r.redact("70773AC3a974c3a9"), "70773AC3a974c3a9");
    }

    #[test]
    fn base64_inside_longer_encodings_is_redacted() {
        let r = Redactor::new([SECRET]);
        for prefix in ["", "a", "ab", "user:", "admin:"] {
            for suffix in ["", "!", "tail"] {
                let header = format!("Authorization: Basic {}", STANDARD.encode(format!("{prefix}{SECRET}{suffix}")));
                let out = r.redact(&header);
                assert!(out.contains(REDACTED), "{prefix:?} {suffix:?}: {out}");
            }
        }
    }

    #[test]
    fn json_stays_json() {
        let r = Redactor::new([SECRET, "12345", "quo\"te"]);
        let doc =
            serde_json::json!({ "a": SECRET, "b": [format!("x{SECRET}"), 12345], "c": "quo\"te", "d": 7 }).to_string();
        let out = r.redact_json(&doc);
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["a"], REDACTED);
        assert_eq!(v["b"], serde_json::json!([format!("x{REDACTED}"), REDACTED]));
        assert_eq!(v["c"], REDACTED);
        assert_eq!(v["d"], 7);
        // escapes do not hide a value
        let escaped = "{\"a\":\"\\u0073\\u0033cr3t/p@ss w+rd?\"}";
        let v: Value = serde_json::from_str(&r.redact_json(escaped)).unwrap();
        assert_eq!(v["a"], REDACTED);
        // untouched documents keep their exact text
        assert_eq!(r.redact_json("{ \"z\": 1,  \"a\": 2 }"), "{ \"z\": 1,  \"a\": 2 }");
        assert_eq!(r.redact_json(&format!("not json {SECRET}")), format!("not json {REDACTED}"));
    }

    #[test]
    fn a_log_cut_inside_a_value_loses_the_start_too() {
        let r = Redactor::new([SECRET]);
        let log = format!("line\n{}", &SECRET[..6]);
        assert_eq!(r.redact_log(&log, true), format!("line\n{REDACTED}"));
        assert_eq!(r.redact_log(&log, false), log, "only a cut-off log loses its tail");
        assert_eq!(r.redact_log("all fine", true), "all fine");
    }

    #[test]
    fn a_value_across_two_chunks_of_a_stream_is_found() {
        let r = Redactor::new([SECRET]);
        for at in [0, SCAN_CHUNK - 3, SCAN_CHUNK, 3 * SCAN_CHUNK - 1] {
            let mut data = vec![b'.'; at];
            data.extend_from_slice(SECRET.as_bytes());
            data.extend_from_slice(&[b'.'; 10]);
            // one byte per read is the worst a reader can do
            assert!(r.found_in_reader(std::io::Cursor::new(&data)).unwrap(), "at {at}");
            assert!(r.found_in_reader(std::io::BufReader::with_capacity(7, &data[..])).unwrap(), "at {at}");
        }
        assert!(!r.found_in_reader(std::io::Cursor::new(vec![b'.'; 3 * SCAN_CHUNK])).unwrap());
        assert!(!Redactor::none().found_in_reader(SECRET.as_bytes()).unwrap());
    }

    #[test]
    fn nothing_to_redact_changes_nothing() {
        let r = Redactor::new(Vec::<String>::new());
        assert!(r.is_empty());
        assert_eq!(r.redact("abc"), "abc");
        assert!(!r.found_in(b"abc"));
        assert!(Redactor::new([""]).is_empty());
        let longest = Redactor::new(["ab", "abc"]);
        assert_eq!(longest.redact("abcd"), format!("{REDACTED}d"));
    }
}
