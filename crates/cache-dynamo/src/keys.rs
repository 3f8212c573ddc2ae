//! How a cache key becomes the table's partition key.
//!
//! DynamoDB refuses an empty string and anything over 2048 bytes as a partition key,
//! while the contract accepts every UTF-8 key. So the stored key is the full key
//! (prefix + key) itself whenever it can be, and otherwise a form no literal key can
//! take:
//!
//! - a full key of 1 to [`LITERAL_MAX`] bytes is stored as it is, so the plain SDK
//!   and the console see the caller's keys;
//! - a longer one is stored as its first `LITERAL_MAX` bytes (cut at a character
//!   boundary, so at least `LITERAL_MAX - 3`), a NUL and the hex SHA-256 of the whole
//!   key: always longer than `LITERAL_MAX`, so it cannot equal a literal key, and it
//!   starts with the prefix, so `begins_with(prefix)` still finds it for `clear`;
//! - the empty full key (possible only without a prefix) is stored as
//!   `LITERAL_MAX + 1` NUL bytes, longer than any literal key and without the hex
//!   tail of a hashed one.

use sha2::{Digest, Sha256};

/// The longest full key stored as it is. Longer ones are hashed (see the module docs).
pub(crate) const LITERAL_MAX: usize = 1024;

/// The longest stored key: a cut of at most `LITERAL_MAX` bytes, a NUL, 64 hex digits.
pub(crate) const STORED_MAX: usize = LITERAL_MAX + 1 + 64;

/// The longest prefix a cache accepts: shorter than the shortest cut of a hashed key,
/// so every hashed key still starts with its whole prefix.
pub(crate) const PREFIX_MAX: usize = 1000;

/// The partition key under which `prefix + key` is stored.
pub(crate) fn stored_key(prefix: &str, key: &str) -> String {
    let full_len = prefix.len() + key.len();
    if full_len == 0 {
        return "\0".repeat(LITERAL_MAX + 1);
    }
    let mut full = String::with_capacity(full_len.min(STORED_MAX));
    if full_len <= LITERAL_MAX {
        full.push_str(prefix);
        full.push_str(key);
        return full;
    }
    let mut hasher = Sha256::new();
    hasher.update(prefix.as_bytes());
    hasher.update(key.as_bytes());
    let digest = hasher.finalize();
    // The cut is taken over prefix + key without building the whole (maybe huge) key.
    let mut cut = LITERAL_MAX;
    let head_of_key = if prefix.len() >= cut {
        ""
    } else {
        cut -= prefix.len();
        while !key.is_char_boundary(cut) {
            cut -= 1;
        }
        &key[..cut]
    };
    full.push_str(prefix);
    full.push_str(head_of_key);
    full.push('\0');
    for byte in digest.iter() {
        full.push(char::from(HEX[usize::from(byte >> 4)]));
        full.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    full
}

const HEX: &[u8; 16] = b"0123456789abcdef";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_keys_are_stored_as_they_are() {
        assert_eq!(stored_key("app:", "user:7"), "app:user:7");
        assert_eq!(stored_key("", "a\0b"), "a\0b");
        assert_eq!(stored_key("", &"k".repeat(LITERAL_MAX)), "k".repeat(LITERAL_MAX));
    }

    #[test]
    fn long_and_empty_keys_never_equal_a_literal_key() {
        let long = stored_key("", &"k".repeat(LITERAL_MAX + 1));
        assert!(long.len() > LITERAL_MAX && long.len() <= STORED_MAX);
        assert!(long.starts_with(&"k".repeat(LITERAL_MAX)));
        let empty = stored_key("", "");
        assert!(empty.len() > LITERAL_MAX && empty.len() <= STORED_MAX);
        assert_ne!(empty, long);
    }

    #[test]
    fn hashed_keys_differ_and_keep_their_prefix() {
        let prefix = "p".repeat(PREFIX_MAX);
        let a = stored_key(&prefix, &"x".repeat(10 * 1024));
        let b = stored_key(&prefix, &format!("{}y", "x".repeat(10 * 1024 - 1)));
        assert_ne!(a, b, "keys differing only past the cut must not collide");
        assert!(a.starts_with(&prefix) && b.starts_with(&prefix));
        // The split between prefix and key does not matter: the full key is what counts.
        assert_eq!(stored_key("ab", &"c".repeat(2000)), stored_key("a", &format!("b{}", "c".repeat(2000))));
    }

    #[test]
    fn the_cut_respects_character_boundaries() {
        let key = "é".repeat(LITERAL_MAX);
        let stored = stored_key("x", &key);
        assert!(stored.len() > LITERAL_MAX && stored.len() <= STORED_MAX);
        assert!(stored.starts_with("xé"));
    }
}
