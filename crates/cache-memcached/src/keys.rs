//! How a cache key becomes a memcached key, and how a lifetime becomes memcached's `exptime`.
//!
//! A handle with prefix `P` stores key `K` of generation `G` (a number kept on each server,
//! see [`generation_key`]) under one of two wire forms:
//!
//! - plain, `P K # G` (`app:user:7#1733043123456789012`), when `P K` has no space or control
//!   character and the whole fits memcached's 250 bytes: other clients can read it as is;
//! - digest, `hex(SHA-256(G as 8 little-endian bytes, P K)) # d` otherwise.
//!
//! Generation keys are `P # g`, or `hex(SHA-256(P)) # gd` when `P` cannot be sent as is.
//! The text after the last `#` tells the forms apart: digits for a plain entry, `d` for a
//! digest entry, `g` or `gd` for a generation. No form can produce another, so no key,
//! however hostile, reaches a generation or another form's entry; within a form, the plain
//! one is injective and the digest one collision-resistant.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use cache_core::Ttl;
use sha2::{Digest, Sha256};

/// The longest key memcached accepts.
pub(crate) const MAX_KEY_LEN: usize = 250;

/// memcached reads an `exptime` above this many seconds (30 days) as a Unix time.
pub(crate) const MAX_RELATIVE_SECS: u64 = 30 * 24 * 60 * 60;

/// memcached parses `exptime` as a signed 32-bit number: no Unix time after 2038-01-19.
const MAX_ABSOLUTE_SECS: u64 = i32::MAX as u64;

/// Whether memcached takes these bytes in a key unchanged: no space, no control character
/// (DEL included). Bytes of multi-byte UTF-8 characters are fine.
fn sendable(bytes: &[u8]) -> bool {
    bytes.iter().all(|&byte| byte > b' ' && byte != 0x7f)
}

fn hex(digest: &[u8]) -> String {
    let mut text = String::with_capacity(digest.len() * 2);
    for byte in digest {
        // Writing to a String cannot fail.
        let _ = write!(text, "{byte:02x}");
    }
    text
}

/// The wire key of `key` under `prefix` in generation `generation`.
pub(crate) fn entry_key(prefix: &str, key: &str, generation: u64) -> String {
    let digits = generation.to_string();
    let plain_len = prefix.len() + key.len() + 1 + digits.len();
    if plain_len <= MAX_KEY_LEN && sendable(prefix.as_bytes()) && sendable(key.as_bytes()) {
        let mut wire = String::with_capacity(plain_len);
        wire.push_str(prefix);
        wire.push_str(key);
        wire.push('#');
        wire.push_str(&digits);
        return wire;
    }
    let mut hasher = Sha256::new();
    hasher.update(generation.to_le_bytes());
    hasher.update(prefix.as_bytes());
    hasher.update(key.as_bytes());
    let mut wire = hex(&hasher.finalize());
    wire.push_str("#d");
    wire
}

/// The wire key holding the generation of `prefix` (one copy on every server).
pub(crate) fn generation_key(prefix: &str) -> String {
    if prefix.len() + 2 <= MAX_KEY_LEN && sendable(prefix.as_bytes()) {
        format!("{prefix}#g")
    } else {
        let mut wire = hex(&Sha256::digest(prefix.as_bytes()));
        wire.push_str("#gd");
        wire
    }
}

/// memcached's `exptime` for an entry that must live `lifetime` (`None` = never expires),
/// written at `now`.
///
/// memcached's clock ticks once a second at a phase the client cannot see, so an `exptime`
/// of `n` seconds lives between `n - 1` and `n` seconds: one second is added to the
/// rounded-up lifetime, and an entry lives at least what was asked, at most two seconds
/// longer. Lifetimes over 30 days are sent as a Unix time (the protocol's rule); one past
/// what memcached's 32-bit clock can hold (2038) means never expires, as the contract asks of
/// a lifetime too large to represent.
pub(crate) fn exptime(lifetime: Option<Duration>, now: SystemTime) -> u32 {
    let Some(lifetime) = lifetime else { return 0 };
    let secs = Ttl::whole_seconds(lifetime).saturating_add(1);
    if secs <= MAX_RELATIVE_SECS {
        // At most 30 days: fits.
        return u32::try_from(secs).unwrap_or(0);
    }
    let now = now.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |since| since.as_secs());
    let at = now.saturating_add(secs);
    if at > MAX_ABSOLUTE_SECS { 0 } else { u32::try_from(at).unwrap_or(0) }
}

/// The `exptime` that keeps an entry's remaining lifetime, from the seconds memcached reports
/// as left (`-1` = never expires).
pub(crate) fn keep_exptime(remaining: Option<i64>, now: SystemTime) -> u32 {
    match remaining {
        None | Some(..0) => 0,
        // `exptime` adds one second for the unseen clock phase; the remaining time memcached
        // reports already includes it, so take it off to keep the entry's end where it was.
        Some(secs) => exptime(Some(Duration::from_secs(secs.unsigned_abs().saturating_sub(1))), now),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn plain_keys_are_readable_by_other_clients() {
        assert_eq!(entry_key("app:", "user:7", 42), "app:user:7#42");
        assert_eq!(entry_key("", "ключ", 1), "ключ#1");
        assert_eq!(generation_key("app:"), "app:#g");
        assert_eq!(generation_key(""), "#g");
    }

    #[test]
    fn keys_memcached_cannot_take_become_digests() {
        for key in ["a b", "a\nb", "a\0b", "a\u{7f}", "", " "] {
            let wire = entry_key("p:", key, 1);
            if key.is_empty() {
                assert_eq!(wire, "p:#1", "the empty key is fine under a prefix");
                continue;
            }
            assert_eq!(wire.len(), 66, "{key:?} -> {wire}");
            assert!(wire.ends_with("#d"));
        }
        let long = "k".repeat(300);
        assert!(entry_key("", &long, 7).ends_with("#d"));
        assert!(generation_key("a prefix with spaces").ends_with("#gd"));
        // At the edge: 250 bytes in all is plain, 251 is a digest.
        let edge = "x".repeat(MAX_KEY_LEN - 2);
        assert_eq!(entry_key("", &edge, 7).len(), MAX_KEY_LEN);
        assert!(entry_key("", &format!("{edge}x"), 7).ends_with("#d"));
    }

    #[test]
    fn every_wire_key_is_sendable() {
        for key in ["", " ", "a\r\nb", "ünï 🔑", &"x".repeat(10_000)] {
            for prefix in ["", "p:", "with space:"] {
                let wire = entry_key(prefix, key, u64::MAX);
                assert!(wire.len() <= MAX_KEY_LEN && sendable(wire.as_bytes()), "{wire:?}");
                let generation = generation_key(prefix);
                assert!(generation.len() <= MAX_KEY_LEN && sendable(generation.as_bytes()));
            }
        }
    }

    #[test]
    fn generations_separate_entries() {
        assert_ne!(entry_key("p:", "k", 1), entry_key("p:", "k", 2));
        assert_ne!(entry_key("p:", "a b", 1), entry_key("p:", "a b", 2));
    }

    #[test]
    fn lifetimes_round_up_and_add_the_clock_phase() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        assert_eq!(exptime(None, now), 0);
        assert_eq!(exptime(Some(Duration::ZERO), now), 2);
        assert_eq!(exptime(Some(Duration::from_millis(1500)), now), 3);
        assert_eq!(exptime(Some(Duration::from_secs(1)), now), 2);
        // 30 days minus a second plus the phase second is still relative.
        assert_eq!(exptime(Some(Duration::from_secs(MAX_RELATIVE_SECS - 1)), now), 2_592_000);
        // 31 days is a Unix time.
        let month = Duration::from_secs(31 * 24 * 3600);
        assert_eq!(u64::from(exptime(Some(month), now)), 1_800_000_000 + month.as_secs() + 1);
        // Past 2038 memcached cannot hold it: never expires.
        assert_eq!(exptime(Some(Duration::from_secs(20 * 365 * 24 * 3600)), now), 0);
        assert_eq!(exptime(Some(Duration::MAX), now), 0);
    }

    #[test]
    fn remaining_lifetimes_are_kept() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        assert_eq!(keep_exptime(None, now), 0);
        assert_eq!(keep_exptime(Some(-1), now), 0);
        assert_eq!(keep_exptime(Some(5), now), 5);
        assert_eq!(keep_exptime(Some(0), now), 2);
        assert_eq!(u64::from(keep_exptime(Some(40 * 24 * 3600), now)), 1_800_000_000 + 40 * 24 * 3600);
    }

    proptest! {
        #[test]
        fn distinct_keys_never_share_a_wire_key(a in ".{0,300}", b in ".{0,300}", generation in any::<u64>()) {
            prop_assume!(a != b);
            prop_assert_ne!(entry_key("p:", &a, generation), entry_key("p:", &b, generation));
        }

        #[test]
        fn wire_forms_never_meet(prefix in ".{0,40}", key in ".{0,300}", generation in any::<u64>()) {
            let entry = entry_key(&prefix, &key, generation);
            let forms: HashSet<String> = [generation_key(&prefix), generation_key(&key), generation_key(&entry)].into();
            prop_assert!(!forms.contains(&entry));
            prop_assert!(entry.len() <= MAX_KEY_LEN && sendable(entry.as_bytes()));
        }
    }
}
