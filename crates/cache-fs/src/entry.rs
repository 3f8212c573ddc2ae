//! The on-disk entry format: a fixed header, then the prefix, the key and the value.
//!
//! ```text
//! offset  size  field
//!      0     4  magic "FSC\0"
//!      4     2  format version (little endian, currently 1)
//!      6     2  reserved, zero
//!      8     8  expiry, Unix milliseconds; 0 = never
//!     16     8  prefix length
//!     24     8  key length
//!     32     8  value length
//!     40     8  checksum: XXH3-64 of prefix ‖ key ‖ value ‖ bytes 0..40
//!     48        prefix, key, value
//! ```
//!
//! The lengths must add up to the file's size, so a truncated file is caught before any
//! byte is hashed; the checksum catches everything else (a torn or zero-filled block
//! after a power cut, bit rot). The checksum is last in the hash input so a streamed
//! value can be hashed as it arrives and the header written once its length is known.

use std::hash::Hasher;

use twox_hash::XxHash3_64;

const MAGIC: [u8; 4] = *b"FSC\0";
const VERSION: u16 = 1;
/// Bytes before the prefix.
pub(crate) const HEADER_LEN: usize = 48;
/// The header bytes the checksum covers: all but the checksum itself.
const CHECKSUMMED_LEN: usize = 40;

/// An entry's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    /// Unix milliseconds after which the entry is dead; 0 = never.
    pub(crate) expires_ms: u64,
    pub(crate) prefix_len: u64,
    pub(crate) key_len: u64,
    pub(crate) value_len: u64,
    pub(crate) checksum: u64,
}

impl Header {
    /// A header whose checksum is still to be computed.
    pub(crate) fn new(expires_ms: u64, prefix: &[u8], key: &[u8], value_len: u64) -> Header {
        Header { expires_ms, prefix_len: len64(prefix), key_len: len64(key), value_len, checksum: 0 }
    }

    fn checksummed(&self) -> [u8; CHECKSUMMED_LEN] {
        let mut bytes = [0; CHECKSUMMED_LEN];
        bytes[0..4].copy_from_slice(&MAGIC);
        bytes[4..6].copy_from_slice(&VERSION.to_le_bytes());
        bytes[8..16].copy_from_slice(&self.expires_ms.to_le_bytes());
        bytes[16..24].copy_from_slice(&self.prefix_len.to_le_bytes());
        bytes[24..32].copy_from_slice(&self.key_len.to_le_bytes());
        bytes[32..40].copy_from_slice(&self.value_len.to_le_bytes());
        bytes
    }

    pub(crate) fn encode(&self) -> [u8; HEADER_LEN] {
        let mut bytes = [0; HEADER_LEN];
        bytes[..CHECKSUMMED_LEN].copy_from_slice(&self.checksummed());
        bytes[CHECKSUMMED_LEN..].copy_from_slice(&self.checksum.to_le_bytes());
        bytes
    }

    /// Parses the first [`HEADER_LEN`] bytes; `None` for anything this version did not write.
    pub(crate) fn decode(bytes: &[u8]) -> Option<Header> {
        let bytes = bytes.get(..HEADER_LEN)?;
        let word = |at: usize| bytes.get(at..at + 8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes);
        if bytes[0..4] != MAGIC || bytes[4..6] != VERSION.to_le_bytes() || bytes[6..8] != [0, 0] {
            return None;
        }
        Some(Header {
            expires_ms: word(8)?,
            prefix_len: word(16)?,
            key_len: word(24)?,
            value_len: word(32)?,
            checksum: word(40)?,
        })
    }

    /// Where the value starts: after the header, the prefix and the key.
    pub(crate) fn value_offset(&self) -> Option<u64> {
        (HEADER_LEN as u64).checked_add(self.prefix_len)?.checked_add(self.key_len)
    }

    /// The size a complete file with this header has.
    pub(crate) fn file_len(&self) -> Option<u64> {
        self.value_offset()?.checked_add(self.value_len)
    }

    /// Whether the entry is still alive at `now_ms` (Unix milliseconds).
    pub(crate) fn is_live(&self, now_ms: u64) -> bool {
        self.expires_ms == 0 || now_ms < self.expires_ms
    }
}

fn len64(bytes: &[u8]) -> u64 {
    // usize is at most 64 bits on every target Rust supports.
    bytes.len() as u64
}

/// The running checksum of an entry: feed it the prefix, the key and the value in order,
/// then [`finish`](Checksum::finish) with the header.
pub(crate) struct Checksum(Box<XxHash3_64>);

impl Checksum {
    pub(crate) fn new() -> Checksum {
        Checksum(Box::new(XxHash3_64::with_seed(0)))
    }

    pub(crate) fn update(&mut self, bytes: &[u8]) {
        self.0.write(bytes);
    }

    pub(crate) fn finish(mut self, header: &Header) -> u64 {
        self.0.write(&header.checksummed());
        self.0.finish()
    }
}

impl std::fmt::Debug for Checksum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Checksum")
    }
}

/// The checksum of a whole entry held in memory.
pub(crate) fn checksum_of(header: &Header, body: &[&[u8]]) -> u64 {
    let mut checksum = Checksum::new();
    for part in body {
        checksum.update(part);
    }
    checksum.finish(header)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips() {
        let mut header = Header::new(1_700_000_000_123, b"app:", b"key", 5);
        header.checksum = checksum_of(&header, &[b"app:", b"key", b"value"]);
        assert_eq!(Header::decode(&header.encode()), Some(header));
        assert_eq!(header.value_offset(), Some(48 + 4 + 3));
        assert_eq!(header.file_len(), Some(48 + 4 + 3 + 5));
    }

    #[test]
    fn foreign_bytes_are_not_a_header() {
        let header = Header::new(0, b"", b"k", 1).encode();
        let mut wrong_magic = header;
        wrong_magic[0] = b'X';
        let mut future_version = header;
        future_version[4] = 2;
        assert_eq!(Header::decode(&wrong_magic), None);
        assert_eq!(Header::decode(&future_version), None);
        assert_eq!(Header::decode(&header[..HEADER_LEN - 1]), None);
    }

    #[test]
    fn every_field_is_covered_by_the_checksum() {
        let header = Header::new(0, b"p", b"k", 1);
        let sum = checksum_of(&header, &[b"p", b"k", b"v"]);
        let expiring = Header { expires_ms: 1, ..header };
        assert_ne!(sum, checksum_of(&expiring, &[b"p", b"k", b"v"]));
        assert_ne!(sum, checksum_of(&header, &[b"p", b"k", b"w"]));
        // Moving a byte from the key into the prefix changes the lengths, so the sum.
        let shifted = Header::new(0, b"pk", b"", 1);
        assert_ne!(sum, checksum_of(&shifted, &[b"pk", b"", b"v"]));
    }

    #[test]
    fn huge_lengths_do_not_overflow() {
        let header = Header { expires_ms: 0, prefix_len: u64::MAX, key_len: 1, value_len: 1, checksum: 0 };
        assert_eq!(header.value_offset(), None);
        assert_eq!(header.file_len(), None);
    }
}
