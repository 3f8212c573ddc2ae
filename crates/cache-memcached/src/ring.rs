//! Which server holds a key: rendezvous (highest random weight) hashing.
//!
//! Each server's weight for a key is `mix(hash(P K) ^ hash(server address))`; the highest
//! wins (ties to the earlier server). Adding a server moves only the keys it now wins, about
//! `1/n` of them, and removing one moves only its own. The full key `P K` is hashed, not the
//! wire key, so a key stays on its server across `clear`s and another client can find it
//! from the documented form: 64-bit FNV-1a over the bytes, then MurmurHash3's `fmix64`.
//! Both are fixed here (never `std`'s `DefaultHasher`, which may change between Rust
//! releases), so every process, whatever it was built with, routes alike.

/// The servers' address hashes, in configuration order.
#[derive(Debug, Clone)]
pub(crate) struct Ring {
    seeds: Vec<u64>,
}

impl Ring {
    pub(crate) fn new<'a>(addresses: impl IntoIterator<Item = &'a str>) -> Ring {
        Ring { seeds: addresses.into_iter().map(|address| fmix64(fnv1a([address.as_bytes()]))).collect() }
    }

    /// The index of the server that holds `prefix + key`.
    pub(crate) fn server_for(&self, prefix: &str, key: &str) -> usize {
        if self.seeds.len() <= 1 {
            return 0;
        }
        let hash = fnv1a([prefix.as_bytes(), key.as_bytes()]);
        let mut best = (0, 0);
        for (index, seed) in self.seeds.iter().enumerate() {
            let weight = fmix64(hash ^ seed);
            if index == 0 || weight > best.1 {
                best = (index, weight);
            }
        }
        best.0
    }
}

fn fnv1a<const N: usize>(parts: [&[u8]; N]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in parts.into_iter().flatten() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// MurmurHash3's 64-bit finalizer: every input bit affects every output bit, which FNV
/// alone does not give for the last bytes of a key.
fn fmix64(mut value: u64) -> u64 {
    value ^= value >> 33;
    value = value.wrapping_mul(0xff51_afd7_ed55_8ccd);
    value ^= value >> 33;
    value = value.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    value ^ (value >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addresses(count: usize) -> Vec<String> {
        (0..count).map(|index| format!("10.0.0.{index}:11211")).collect()
    }

    fn ring(addresses: &[String]) -> Ring {
        Ring::new(addresses.iter().map(String::as_str))
    }

    #[test]
    fn keys_spread_evenly() {
        let ring = ring(&addresses(3));
        let mut counts = [0usize; 3];
        for index in 0..30_000 {
            counts[ring.server_for("p:", &format!("key-{index}"))] += 1;
        }
        for count in counts {
            assert!((9_000..=11_000).contains(&count), "uneven spread: {counts:?}");
        }
    }

    #[test]
    fn a_fourth_server_moves_about_a_quarter_of_the_keys() {
        let three = ring(&addresses(3));
        let four = ring(&addresses(4));
        let keys = 20_000;
        let mut moved = 0;
        for index in 0..keys {
            let key = format!("key-{index}");
            let (before, after) = (three.server_for("", &key), four.server_for("", &key));
            if before != after {
                assert_eq!(after, 3, "a key moved between two old servers");
                moved += 1;
            }
        }
        let share = moved as f64 / f64::from(keys);
        assert!((0.22..0.28).contains(&share), "moved {share}");
    }

    #[test]
    fn routing_is_fixed_across_builds() {
        // Other processes and clients route by the documented hash: pin it.
        assert_eq!(fnv1a([b"".as_slice()]), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a([b"a".as_slice()]), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a([b"ab".as_slice()]), fnv1a([b"a".as_slice(), b"b".as_slice()]));
        let one = Ring::new(["127.0.0.1:11211"]);
        assert_eq!(one.server_for("any", "key"), 0);
    }
}
