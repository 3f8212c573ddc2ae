//! The cache-core conformance suite on `MemcachedCache` over three real memcached servers
//! (`CACHE_TEST_MEMCACHED_RING_ADDRS`, started by `cargo xtask test`).

mod support;

use support::{MemcachedHarness, Three};

cache_core::conformance_tests!(MemcachedHarness<Three>, #[ignore = "needs memcached-ring: cargo xtask test"]);
