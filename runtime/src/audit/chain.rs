//! One entry of the trail: its line format and its hash.
//!
//! An entry is one line: the **canonical JSON** of its fields (one flat object, keys in byte
//! order, no whitespace, as serde_json writes a `BTreeMap`), with `"hash"` appended as the last
//! member:
//!
//! ```text
//! {"event":"run_started","host":"clinic-01",…,"prev":"<64 hex>","seq":1,"ts":"…"},"hash":"<64 hex>"}
//! ```
//!
//! `hash` is the hex SHA-256 of `prev` followed by that canonical JSON without `hash` (the line
//! with its last member removed). It is computed from the **bytes of the line**, not from a
//! re-serialisation of the parsed object: serde_json's default float parser is not guaranteed
//! to round-trip every `f64`, and a verifier that re-serialised would then reject an intact entry.
//! Hashing the written bytes also makes the rule easy to check without reqsync (`docs/AUDIT.md`).

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// `prev` of the first entry of a file.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The member every line ends with; what precedes it, closed by `}`, is the hashed body.
const HASH_MEMBER: &str = ",\"hash\":\"";

/// The hash of an entry whose canonical JSON without `hash` is `body`.
pub(crate) fn entry_hash(prev: &str, body: &str) -> String {
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(body.as_bytes());
    hex::encode(h.finalize())
}

/// Where an entry sits in its chain: what the next entry needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub seq: u64,
    pub hash: String,
}

impl Link {
    /// Before the first entry: the next one gets seq 1 and `prev` = [`GENESIS`].
    pub(crate) fn genesis() -> Self {
        Link {
            seq: 0,
            hash: GENESIS.to_string(),
        }
    }
}

/// Writes an entry's line (without the trailing newline) and returns it with its hash.
/// `fields` must already hold `seq` and `prev`. A `BTreeMap` rather than `serde_json::Map`:
/// the map type is the canonical key order, whatever serde_json features (`preserve_order`)
/// another crate in the build turns on.
pub(crate) fn seal(fields: &BTreeMap<String, Value>, prev: &str) -> (String, String) {
    // Serialising a map of JSON values cannot fail (all keys are strings).
    let body = serde_json::to_string(fields).unwrap_or_else(|_| "{}".to_string());
    let hash = entry_hash(prev, &body);
    let mut line = String::with_capacity(body.len() + HASH_MEMBER.len() + 66);
    line.push_str(&body[..body.len() - 1]);
    line.push_str(HASH_MEMBER);
    line.push_str(&hash);
    line.push_str("\"}");
    (line, hash)
}

/// An entry read back from a line.
#[derive(Debug)]
pub(crate) struct Unsealed {
    pub seq: u64,
    pub prev: String,
    pub hash: String,
    pub fields: Map<String, Value>,
    /// Whether `hash` is the hash of the line's content and `prev`.
    pub hash_matches: bool,
}

/// Why a line is not an entry at all (as opposed to an entry in the wrong place).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Malformed {
    NotJson(String),
    NotEntry(&'static str),
}

/// Parses a line (without its newline) and checks its hash against its own content.
pub(crate) fn unseal(line: &str) -> Result<Unsealed, Malformed> {
    let fields = match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(m)) => m,
        Ok(_) => return Err(Malformed::NotEntry("the line is JSON but not an object")),
        // The parser's message names a line and column, never the text around it.
        Err(e) => return Err(Malformed::NotJson(e.to_string())),
    };
    let hash = hex_field(&fields, "hash").ok_or(Malformed::NotEntry(
        "`hash` is missing or not 64 lowercase hex digits",
    ))?;
    let prev = hex_field(&fields, "prev").ok_or(Malformed::NotEntry(
        "`prev` is missing or not 64 lowercase hex digits",
    ))?;
    let seq = fields
        .get("seq")
        .and_then(Value::as_u64)
        .filter(|s| *s > 0)
        .ok_or(Malformed::NotEntry(
            "`seq` is missing or not a positive integer",
        ))?;
    // The hashed body is the line up to the `hash` member, which the writer always puts last.
    let suffix_len = HASH_MEMBER.len() + 64 + 2;
    let body = line
        .len()
        .checked_sub(suffix_len)
        .filter(|&at| line.is_char_boundary(at))
        .filter(|&at| line[at..] == format!("{HASH_MEMBER}{hash}\"}}"))
        .map(|at| format!("{}}}", &line[..at]))
        .ok_or(Malformed::NotEntry(
            "`hash` is not the last member of the line",
        ))?;
    let hash_matches = entry_hash(&prev, &body) == hash;
    Ok(Unsealed {
        seq,
        prev,
        hash,
        fields,
        hash_matches,
    })
}

fn hex_field(fields: &Map<String, Value>, key: &str) -> Option<String> {
    fields
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(seq: u64, prev: &str) -> BTreeMap<String, Value> {
        let mut f = BTreeMap::new();
        f.insert("seq".to_string(), Value::from(seq));
        f.insert("prev".to_string(), Value::from(prev));
        f.insert("zeta".to_string(), Value::from(1.0e-7));
        f.insert("event".to_string(), Value::from("run_started"));
        f
    }

    #[test]
    fn a_sealed_line_has_sorted_keys_and_hash_last_and_unseals() {
        let (line, hash) = seal(&fields(1, GENESIS), GENESIS);
        assert!(
            line.starts_with("{\"event\":\"run_started\",\"prev\":"),
            "{line}"
        );
        assert!(line.ends_with(&format!(",\"hash\":\"{hash}\"}}")), "{line}");
        let u = unseal(&line).expect("unseal");
        assert!(u.hash_matches);
        assert_eq!((u.seq, u.prev.as_str(), u.hash), (1, GENESIS, hash));
    }

    #[test]
    fn the_hash_is_sha256_of_prev_then_the_line_without_hash() {
        let (line, hash) = seal(&fields(1, GENESIS), GENESIS);
        let body = line.replace(&format!(",\"hash\":\"{hash}\""), "");
        let expected = hex::encode(Sha256::digest(format!("{GENESIS}{body}")));
        assert_eq!(hash, expected);
    }

    #[test]
    fn an_edited_value_no_longer_matches_its_hash() {
        let (line, _) = seal(&fields(1, GENESIS), GENESIS);
        let edited = line.replace("run_started", "run_stopped");
        assert!(!unseal(&edited).expect("still an entry").hash_matches);
    }

    #[test]
    fn a_line_without_the_hash_last_is_not_an_entry() {
        let (line, hash) = seal(&fields(1, GENESIS), GENESIS);
        let moved = format!(
            "{{\"hash\":\"{hash}\",{}",
            &line[1..line.len() - (HASH_MEMBER.len() + 66)]
        ) + "}";
        assert_eq!(
            unseal(&moved).map(|_| ()),
            Err(Malformed::NotEntry(
                "`hash` is not the last member of the line"
            ))
        );
    }
}
