//! A full disk, for real: a child process in its own user and mount namespaces
//! (`unshare`, no root needed where unprivileged user namespaces are allowed) mounts a
//! 1 MiB tmpfs over a temp directory and fills it. The mount lives and dies with the
//! child's namespace, so nothing is left mounted even if the test fails. If the
//! namespace or the mount cannot be made, the test fails saying so; it never skips.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use cache_core::{Bytes, Cache, ErrorKind, Ttl};
use cache_fs::FsCache;
use support::{DIR, ROLE, results};

const TEST: &str = "a_full_disk_is_an_error_and_the_old_value_stays";

async fn fill(dir: &Path) {
    let cache = FsCache::builder(dir).build().await.expect("build on the tmpfs");
    let old = Bytes::from(vec![b'o'; 100 * 1024]);
    cache.set("k", old.clone(), Ttl::Never).await.expect("the first value fits");

    let too_big = Bytes::from(vec![b'n'; 2 << 20]);
    let error = cache.set("k", too_big.clone(), Ttl::Never).await.expect_err("2 MiB cannot fit in 1 MiB");
    assert_eq!(error.kind(), ErrorKind::Unavailable, "a full disk is reported as such: {error}");
    assert!(error.is_temporary());
    assert_eq!(cache.get("k").await.expect("get"), Some(old.clone()), "the old value stays readable");

    let error = cache.set_stream("k", &too_big[..], Ttl::Never).await.expect_err("streamed, it cannot fit either");
    assert_eq!(error.kind(), ErrorKind::Unavailable, "{error}");
    assert_eq!(cache.get("k").await.expect("get"), Some(old), "the old value stays readable after a stream");

    let leftovers = walk(dir).into_iter().filter(|path| path.to_string_lossy().contains(".tmp-")).count();
    assert_eq!(leftovers, 0, "the failed writes' temp files are removed");
    cache.set("small", Bytes::from_static(b"fits"), Ttl::Never).await.expect("the space was given back");
    println!("RESULT full disk: set and set_stream failed with {error}; old value intact");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("listing") {
            let path = entry.expect("listing").path();
            if path.is_dir() {
                stack.push(path.clone());
            }
            found.push(path);
        }
    }
    found
}

#[test]
fn a_full_disk_is_an_error_and_the_old_value_stays() {
    if std::env::var(ROLE).as_deref() == Ok("full-disk") {
        let dir = PathBuf::from(std::env::var_os(DIR).expect("a directory"));
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs"])
            .arg(&dir)
            .status()
            .expect("running mount");
        assert!(mounted.success(), "cannot mount a 1 MiB tmpfs on {} inside the namespace", dir.display());
        cache_core::testkit::block_on(fill(&dir));
        return;
    }
    let tmp = tempfile::tempdir().expect("temp directory");
    let child = Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "--"])
        .arg(std::env::current_exe().expect("the test binary's path"))
        .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
        .env(ROLE, "full-disk")
        .env(DIR, tmp.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("running unshare (util-linux) for a private mount namespace");
    let lines = results(child, Duration::from_secs(120));
    assert!(lines.iter().any(|line| line.starts_with("full disk")), "the child did not reach the checks: {lines:?}");
    for line in lines {
        println!("{line}");
    }
}
