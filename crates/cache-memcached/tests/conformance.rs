//! The cache-core conformance suite on `MemcachedCache` against one real memcached
//! (`CACHE_TEST_MEMCACHED_ADDR`, started by `cargo xtask test`).

mod support;

use support::{MemcachedHarness, One};

cache_core::conformance_tests!(MemcachedHarness<One>, #[ignore = "needs memcached: cargo xtask test"]);
