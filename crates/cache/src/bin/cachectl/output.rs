//! What the store commands print: raw bytes and plain text, or one JSON object per command.

use std::io::Write;

use base64::Engine as _;
use serde_json::{Value, json};

use crate::fail::Failure;

/// A value for `--json`: the text itself when it is UTF-8, base64 otherwise, with the
/// encoding named so a reader never has to guess.
pub(crate) fn json_value(bytes: &[u8]) -> Value {
    match std::str::from_utf8(bytes) {
        Ok(text) => json!({ "value": text, "encoding": "utf8" }),
        Err(_) => json!({ "value": base64::engine::general_purpose::STANDARD.encode(bytes), "encoding": "base64" }),
    }
}

/// Writes `bytes` to stdout exactly, and flushes: a closed pipe (`| head`) is not an error
/// worth a message, anything else is.
pub(crate) fn stdout_bytes(bytes: &[u8]) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(error) => Err(Failure::other(format!("writing to stdout: {error}"))),
    }
}

/// One line of text on stdout.
pub(crate) fn line(text: impl std::fmt::Display) -> Result<(), Failure> {
    stdout_bytes(format!("{text}\n").as_bytes())
}

/// One JSON document on stdout, on one line.
pub(crate) fn json_line(value: &Value) -> Result<(), Failure> {
    line(value)
}

/// Merges `fields` into `base` (both objects), so every command's JSON starts the same way.
pub(crate) fn with(mut base: Value, fields: Value) -> Value {
    if let (Some(base), Value::Object(fields)) = (base.as_object_mut(), fields) {
        base.extend(fields);
    }
    base
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_values_are_base64_and_text_stays_text() {
        assert_eq!(json_value(b"hi"), json!({"value": "hi", "encoding": "utf8"}));
        assert_eq!(json_value(&[0xff, 0x00]), json!({"value": "/wA=", "encoding": "base64"}));
        assert_eq!(with(json!({"key": "k"}), json!({"found": true})), json!({"key": "k", "found": true}));
    }
}
