//! The shape of a cache entry as a MongoDB document, and the filters that find them.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use cache_core::Ttl;
use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{Binary, Bson, DateTime, Document, doc};

use crate::error::Failure;

/// The document's `_id`: the prefix followed by the key.
pub(crate) const ID: &str = "_id";
/// The value: BSON binary as written by `set`, or an Int64 written by `incr`.
pub(crate) const VALUE: &str = "value";
/// When the entry expires, as a BSON date; absent when it never does.
pub(crate) const EXPIRES_AT: &str = "expires_at";

/// The largest document MongoDB stores (`maxBsonObjectSize`).
pub(crate) const MAX_DOCUMENT_LEN: usize = 16 * 1024 * 1024;
/// The largest value this store promises to take: a document's limit less 16 KiB, so that
/// any key up to about 16 KiB still fits beside it. Longer keys lower it for their value
/// (the exact document size is checked on every write).
pub const MAX_VALUE_LEN: usize = MAX_DOCUMENT_LEN - 16 * 1024;

/// The size in bytes of the document [`entry`] builds, computed without building it so
/// an oversized value is refused before it is copied.
pub(crate) fn entry_len(id: &str, value_len: usize, expires: bool) -> usize {
    // Document length and terminator; each element is a type byte and a NUL-terminated name.
    let header = 4 + 1;
    let id_element = 1 + ID.len() + 1 + 4 + id.len() + 1;
    let value_element = 1 + VALUE.len() + 1 + 4 + 1 + value_len;
    let expiry_element = if expires { 1 + EXPIRES_AT.len() + 1 + 8 } else { 0 };
    header + id_element + value_element + expiry_element
}

/// Refuses a value that would break the promised limit or MongoDB's document limit.
pub(crate) fn check_size(id: &str, value_len: usize) -> Result<(), Failure> {
    let len = entry_len(id, value_len, true);
    if value_len > MAX_VALUE_LEN {
        return Err(Failure::TooLarge { len: value_len, limit: MAX_VALUE_LEN });
    }
    if len > MAX_DOCUMENT_LEN {
        return Err(Failure::TooLarge { len, limit: MAX_DOCUMENT_LEN });
    }
    Ok(())
}

/// The whole document of an entry written by `set` or `add`.
pub(crate) fn entry(id: &str, value: &Bytes, expires_at: Option<DateTime>) -> Document {
    let mut document = doc! {
        ID: id,
        VALUE: Binary { subtype: BinarySubtype::Generic, bytes: value.to_vec() },
    };
    if let Some(expires_at) = expires_at {
        document.insert(EXPIRES_AT, expires_at);
    }
    document
}

/// The whole document of a counter created by `incr` over an expired entry.
pub(crate) fn counter(id: &str, value: i64, expires_at: Option<DateTime>) -> Document {
    let mut document = doc! { ID: id, VALUE: value };
    if let Some(expires_at) = expires_at {
        document.insert(EXPIRES_AT, expires_at);
    }
    document
}

/// When an entry written at `now` with `ttl` expires, rounded *up* to MongoDB's
/// millisecond dates so it never expires early; `None` = never (also for lifetimes too
/// large for a date).
pub(crate) fn expiry(ttl: Ttl, default: Option<Duration>, now: SystemTime) -> Option<DateTime> {
    let at = ttl.expires_at(now, default)?;
    let since_epoch = at.duration_since(SystemTime::UNIX_EPOCH).ok()?;
    let millis = since_epoch.as_millis() + u128::from(since_epoch.subsec_nanos() % 1_000_000 != 0);
    i64::try_from(millis).ok().map(DateTime::from_millis)
}

/// `now` as a MongoDB date, for comparing against `expires_at`.
pub(crate) fn date(now: SystemTime) -> DateTime {
    DateTime::from_system_time(now)
}

/// Matches documents that have not expired at `now`: no `expires_at`, or one after `now`.
/// Every read carries it, because the server's TTL sweep runs only about once a minute.
pub(crate) fn live(now: DateTime) -> Document {
    doc! { "$not": { "$lte": now } }
}

/// Matches documents that have expired at `now`.
pub(crate) fn expired(now: DateTime) -> Document {
    doc! { "$lte": now }
}

/// Whether a document read back has expired at `now`.
pub(crate) fn has_expired(document: &Document, now: DateTime) -> bool {
    document.get_datetime(EXPIRES_AT).is_ok_and(|at| *at <= now)
}

/// The value of an entry as the caller sees it: binary as stored, integers written by
/// `incr` as decimal ASCII.
pub(crate) fn value_of(document: Document) -> Result<Bytes, Failure> {
    match document.get(VALUE) {
        Some(Bson::Binary(_)) => match document.into_iter().find(|(name, _)| name == VALUE) {
            Some((_, Bson::Binary(binary))) => Ok(Bytes::from(binary.bytes)),
            _ => Err(Failure::Shape("the value field vanished while being read".to_owned())),
        },
        Some(Bson::Int64(number)) => Ok(cache_core::format_integer(*number)),
        Some(Bson::Int32(number)) => Ok(cache_core::format_integer(i64::from(*number))),
        Some(other) => Err(Failure::Shape(format!(
            "the document's `{VALUE}` is a BSON {:?}, not binary data or an integer",
            other.element_type()
        ))),
        None => Err(Failure::Shape(format!("the document has no `{VALUE}` field"))),
    }
}

/// The `_id` range of every document whose `_id` starts with `prefix`, as an anchored
/// range query the `_id` index answers directly (no regular expression, so `.` or `*`
/// in a prefix are plain characters). The empty prefix matches everything.
///
/// MongoDB compares strings by their UTF-8 bytes, which orders them as code points do,
/// so the strings starting with `prefix` are exactly those `>= prefix` and `<` the
/// prefix with its last character replaced by the next code point.
pub(crate) fn prefix_range(prefix: &str) -> Document {
    if prefix.is_empty() {
        return Document::new();
    }
    match prefix_upper_bound(prefix) {
        Some(upper) => doc! { ID: { "$gte": prefix, "$lt": upper } },
        None => doc! { ID: { "$gte": prefix } },
    }
}

/// The smallest string greater than every string starting with `prefix`; `None` when
/// there is none (the prefix is all U+10FFFF).
pub(crate) fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        // The next scalar value, stepping over the surrogate gap.
        let next = (u32::from(last) + 1..=0x10_FFFF).find_map(char::from_u32);
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn computed_length_matches_the_encoded_document() {
        for (id, len, expires) in [("", 0, false), ("app:key", 10, true), ("ü\0🔑", 1000, true)] {
            let value = Bytes::from(vec![7; len]);
            let expires_at = expires.then(|| DateTime::from_millis(1_700_000_000_000));
            let encoded = mongodb::bson::to_vec(&entry(id, &value, expires_at)).expect("encoding");
            assert_eq!(entry_len(id, len, expires), encoded.len(), "{id:?}");
        }
    }

    #[test]
    fn sizes_are_refused_at_the_limits() {
        assert!(check_size("k", MAX_VALUE_LEN).is_ok());
        assert!(matches!(check_size("k", MAX_VALUE_LEN + 1), Err(Failure::TooLarge { .. })));
        let long_key = "k".repeat(20 * 1024);
        assert!(matches!(check_size(&long_key, MAX_VALUE_LEN), Err(Failure::TooLarge { .. })));
    }

    #[test]
    fn expiry_rounds_up_to_the_millisecond() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_micros(1_000_000_500);
        assert_eq!(expiry(Ttl::After(Duration::ZERO), None, now), Some(DateTime::from_millis(1_000_001)));
        assert_eq!(expiry(Ttl::millis(1500), None, now), Some(DateTime::from_millis(1_001_501)));
        assert_eq!(expiry(Ttl::Never, Some(Duration::from_secs(1)), now), None);
        assert_eq!(expiry(Ttl::Default, None, now), None);
        assert_eq!(expiry(Ttl::After(Duration::MAX), None, now), None);
        let exact = SystemTime::UNIX_EPOCH + Duration::from_millis(5);
        assert_eq!(expiry(Ttl::Default, Some(Duration::from_millis(2)), exact), Some(DateTime::from_millis(7)));
    }

    #[test]
    fn values_read_back_as_written() {
        let binary = entry("k", &Bytes::from_static(b"\0bytes"), None);
        assert_eq!(value_of(binary).ok(), Some(Bytes::from_static(b"\0bytes")));
        assert_eq!(value_of(counter("k", -42, None)).ok(), Some(Bytes::from_static(b"-42")));
        assert!(matches!(value_of(doc! { ID: "k", VALUE: "text" }), Err(Failure::Shape(_))));
        assert!(matches!(value_of(doc! { ID: "k" }), Err(Failure::Shape(_))));
    }

    #[test]
    fn upper_bounds_step_the_last_character() {
        assert_eq!(prefix_upper_bound("app").as_deref(), Some("apq"));
        assert_eq!(prefix_upper_bound("a.b*").as_deref(), Some("a.b+"));
        assert_eq!(prefix_upper_bound("a\u{D7FF}").as_deref(), Some("a\u{E000}"));
        assert_eq!(prefix_upper_bound("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_upper_bound("\u{10FFFF}"), None);
        assert_eq!(prefix_range(""), Document::new());
    }

    proptest! {
        /// The range holds exactly the strings that start with the prefix.
        #[test]
        fn the_range_is_exactly_the_prefix(prefix in "\\PC{0,4}", other in "\\PC{0,6}") {
            let inside = match prefix_upper_bound(&prefix) {
                Some(upper) => other.as_bytes() >= prefix.as_bytes() && other.as_bytes() < upper.as_bytes(),
                None => other.as_bytes() >= prefix.as_bytes(),
            };
            prop_assert_eq!(inside, other.starts_with(&prefix));
            let extended = format!("{prefix}{other}");
            if let Some(upper) = prefix_upper_bound(&prefix) {
                prop_assert!(extended.as_bytes() < upper.as_bytes());
            }
        }
    }
}
