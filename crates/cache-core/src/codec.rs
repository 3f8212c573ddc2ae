//! How typed values become bytes.

use std::fmt::Debug;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Turns typed values into stored bytes and back.
///
/// Pick one with [`CacheExt::with_codec`](crate::CacheExt::with_codec); the plain
/// `get_as`/`set_as` use [`Json`].
///
/// ```
/// use cache_core::{Codec, Json, Postcard};
///
/// let point = (3_i32, -4_i32);
/// assert_eq!(&Json.encode(&point)?[..], b"[3,-4]");
/// let compact = Postcard.encode(&point)?;
/// assert!(compact.len() < 4);
/// assert_eq!(Postcard.decode::<(i32, i32)>(&compact)?, point);
/// assert!(Json.decode::<(i32, i32)>(b"not json").is_err());
/// # Ok::<(), cache_core::CodecError>(())
/// ```
pub trait Codec: Debug + Send + Sync {
    /// The name used in error messages, such as `"json"`.
    fn name(&self) -> &'static str;

    /// Encodes `value`.
    fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Bytes, CodecError>;

    /// Decodes a value of type `T` from `bytes`.
    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, CodecError>;
}

/// Why a codec failed; the source of an [`ErrorKind::Serialization`](crate::ErrorKind::Serialization) error.
///
/// ```
/// use cache_core::{Codec, CodecError, Json};
///
/// let error: CodecError = Json.decode::<u8>(b"300").unwrap_err();
/// assert!(error.to_string().contains("invalid value: integer `300`"), "{error}");
/// ```
pub type CodecError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// JSON through `serde_json`: readable, and integers are decimal ASCII, so a value
/// written by `incr` reads back as an `i64` and one written by `set_as(&5_i64)` can be
/// incremented.
///
/// ```
/// use cache_core::{Codec, Json};
///
/// assert_eq!(&Json.encode(&42_i64)?[..], b"42", "the text incr reads and writes");
/// assert_eq!(Json.decode::<Vec<String>>(br#"["a","b"]"#)?, ["a", "b"]);
/// # Ok::<(), cache_core::CodecError>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Json;

impl Codec for Json {
    fn name(&self) -> &'static str {
        "json"
    }

    fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Bytes, CodecError> {
        Ok(Bytes::from(serde_json::to_vec(value)?))
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, CodecError> {
        Ok(serde_json::from_slice(bytes)?)
    }
}

/// Compact binary through `postcard`: smaller and faster than JSON, not self-describing.
/// Its integers are varints, not decimal text: do not mix it with `incr` on one key.
///
/// ```
/// use cache_core::{Codec, Postcard};
///
/// let bytes = Postcard.encode(&("Ada", 36_u8))?;
/// assert_eq!(&bytes[..], b"\x03Ada\x24");
/// assert_eq!(Postcard.decode::<(String, u8)>(&bytes)?, ("Ada".to_owned(), 36));
/// # Ok::<(), cache_core::CodecError>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Postcard;

impl Codec for Postcard {
    fn name(&self) -> &'static str {
        "postcard"
    }

    fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Bytes, CodecError> {
        Ok(Bytes::from(postcard::to_stdvec(value)?))
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, CodecError> {
        Ok(postcard::from_bytes(bytes)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Record {
        id: u64,
        name: String,
        tags: Vec<String>,
        score: Option<i32>,
    }

    fn round_trip<C: Codec>(codec: &C, record: &Record) -> Record {
        let bytes = codec.encode(record).expect("encode");
        codec.decode(&bytes).expect("decode")
    }

    #[test]
    fn json_integers_are_decimal_ascii() {
        assert_eq!(&Json.encode(&5_000_000_000_000_i64).expect("encode")[..], b"5000000000000");
        assert_eq!(Json.decode::<i64>(b"-42").expect("decode"), -42);
    }

    #[test]
    fn decoding_garbage_is_an_error() {
        assert!(Json.decode::<Record>(b"{not json").is_err());
        assert!(Postcard.decode::<Record>(&[0xff; 3]).is_err());
    }

    proptest! {
        #[test]
        fn both_codecs_round_trip(id in any::<u64>(), name in ".*", tags in proptest::collection::vec(".*", 0..4), score in any::<Option<i32>>()) {
            let record = Record { id, name, tags, score };
            prop_assert_eq!(&round_trip(&Json, &record), &record);
            prop_assert_eq!(&round_trip(&Postcard, &record), &record);
        }
    }
}
