//! The cache-core conformance suite on `FsCache`: each harness is a fresh temp directory,
//! and caches opened on it with different prefixes are namespaces of one store.

use cache_core::testkit::Harness;
use cache_fs::FsCache;

struct FsHarness {
    dir: tempfile::TempDir,
}

impl Harness for FsHarness {
    type Cache = FsCache;

    async fn isolated() -> Self {
        FsHarness { dir: tempfile::tempdir().expect("creating a temp directory") }
    }

    async fn open(&self, prefix: &str) -> FsCache {
        FsCache::builder(self.dir.path()).prefix(prefix).build().await.expect("building an FsCache")
    }
}

cache_core::conformance_tests!(FsHarness);
