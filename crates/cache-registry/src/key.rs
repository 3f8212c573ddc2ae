//! Stable item keys: a hash of the URI and the canonical form of the params.

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The canonical JSON text of `params`, the form the registry stores and hashes.
///
/// The form is compact JSON with object keys sorted by their UTF-8 bytes (which is Unicode
/// code point order), at every depth, and no whitespace anywhere outside strings. Strings use
/// `serde_json`'s escaping (only `"`, `\` and control characters are escaped; everything else
/// is written as UTF-8). Numbers are written as `serde_json` writes them: integers without a
/// decimal point, floats in their shortest round-trip form, so `1` and `1.0` are different
/// params. Array order is kept: it is part of the value.
///
/// So `{"b": 1, "a": [true, null]}` and `{"a":[true,null],"b":1}` both become
/// `{"a":[true,null],"b":1}`.
///
/// # Errors
///
/// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) when `params` cannot be
/// represented as JSON (a map with non-string keys, a failing `Serialize` impl).
///
/// ```
/// use serde_json::json;
///
/// let canonical = cache_registry::canonical_params(&json!({"b": 1, "a": [true, null]}))?;
/// assert_eq!(canonical, r#"{"a":[true,null],"b":1}"#);
/// # Ok::<(), cache_registry::Error>(())
/// ```
pub fn canonical_params<P: Serialize + ?Sized>(params: &P) -> Result<String> {
    let value = serde_json::to_value(params)
        .map_err(|error| Error::invalid_input("canonical params", "params are not JSON").with_source(error))?;
    let mut out = String::new();
    write_canonical(&value, &mut out);
    Ok(out)
}

/// The key of the item identified by `uri` and `params`: the lowercase hex SHA-256 of
/// `uri`, a newline, and [`canonical_params`]`(params)`.
///
/// # Errors
///
/// As [`canonical_params`].
///
/// ```
/// use serde_json::json;
///
/// let key = cache_registry::item_key("https://example.org/a.csv", &json!({"day": 1}))?;
/// assert_eq!(key.len(), 64);
/// assert_eq!(key, cache_registry::item_key("https://example.org/a.csv", &json!({ "day" : 1 }))?);
/// # Ok::<(), cache_registry::Error>(())
/// ```
pub fn item_key<P: Serialize + ?Sized>(uri: &str, params: &P) -> Result<String> {
    let canonical = canonical_params(params)?;
    Ok(key_of(uri, &canonical))
}

pub(crate) fn key_of(uri: &str, canonical_params: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(uri.as_bytes());
    hasher.update(b"\n");
    hasher.update(canonical_params.as_bytes());
    let digest = hasher.finalize();
    let mut hex = String::with_capacity(64);
    for byte in digest.iter() {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    hex
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(number) => out.push_str(&number.to_string()),
        Value::String(text) => write_string(text, out),
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            // Sorted here, not by relying on serde_json's map type: another crate in the build
            // may turn on `preserve_order`, which would make the key depend on insertion order.
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|left, right| left.0.as_bytes().cmp(right.0.as_bytes()));
            out.push('{');
            for (index, (name, item)) in entries.into_iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_string(name, out);
                out.push(':');
                write_canonical(item, out);
            }
            out.push('}');
        }
    }
}

fn write_string(text: &str, out: &mut String) {
    out.push('"');
    for ch in text.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            control if u32::from(control) < 0x20 => {
                let code = u32::from(control);
                out.push_str("\\u00");
                out.push(char::from(HEX[(code >> 4) as usize]));
                out.push(char::from(HEX[(code & 0x0f) as usize]));
            }
            other => out.push(other),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn map_order_and_whitespace_do_not_change_the_key() {
        let left: Value = serde_json::from_str(r#"{ "b" : 1, "a": {"y": [1, 2], "x": null} }"#).unwrap();
        let right: Value = serde_json::from_str(r#"{"a":{"x":null,"y":[1,2]},"b":1}"#).unwrap();
        assert_eq!(canonical_params(&left).unwrap(), r#"{"a":{"x":null,"y":[1,2]},"b":1}"#);
        assert_eq!(item_key("u", &left).unwrap(), item_key("u", &right).unwrap());
    }

    #[test]
    fn uri_array_order_and_number_form_are_part_of_the_key() {
        assert_ne!(item_key("u", &json!([1, 2])).unwrap(), item_key("u", &json!([2, 1])).unwrap());
        assert_ne!(item_key("u", &json!({})).unwrap(), item_key("v", &json!({})).unwrap());
        assert_ne!(item_key("u", &json!(1)).unwrap(), item_key("u", &json!(1.0)).unwrap());
    }

    #[test]
    fn key_is_sha256_of_uri_newline_canonical() {
        // sha256("u\n{}"), computed independently with coreutils' sha256sum.
        assert_eq!(
            item_key("u", &json!({})).unwrap(),
            "f0641e44de69749351c0b4977cc5eb17e656c7ddfcc1614d7088ba2d5efdd2e3"
        );
    }

    #[test]
    fn non_string_map_keys_are_invalid_input() {
        let mut map = std::collections::BTreeMap::new();
        map.insert(vec![1u8], 1);
        let error = canonical_params(&map).unwrap_err();
        assert_eq!(error.kind(), crate::ErrorKind::InvalidInput);
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            // Eighths are exact in binary, so parsing them back is exact without `float_roundtrip`.
            any::<i32>().prop_map(|n| json!(f64::from(n) / 8.0)),
            any::<String>().prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(any::<String>(), inner, 0..4)
                    .prop_map(|map| Value::Object(map.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn canonical_form_parses_back_to_the_same_value(value in json_value()) {
            let canonical = canonical_params(&value).unwrap();
            let parsed: Value = serde_json::from_str(&canonical).unwrap();
            prop_assert_eq!(&parsed, &value);
            prop_assert_eq!(canonical_params(&parsed).unwrap(), canonical);
        }
    }
}
