//! Helpers shared by the integration tests: self-checking values and child processes.

// Each test binary uses the part it needs.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The environment variable that turns a re-invoked test binary into a child role.
pub(crate) const ROLE: &str = "CACHE_FS_TEST_ROLE";
/// The directory a child works in.
pub(crate) const DIR: &str = "CACHE_FS_TEST_DIR";

/// A value that says which writer made it and checks itself: 16 bytes of
/// `(generation, key)` then a pattern derived from both, `len` bytes in all (at least 16).
pub(crate) fn value(generation: u64, key: u64, len: usize) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(len.max(16));
    bytes.extend_from_slice(&generation.to_le_bytes());
    bytes.extend_from_slice(&key.to_le_bytes());
    let seed = generation.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ key;
    bytes.extend((16..len.max(16)).map(|index| pattern(seed, index)));
    bytes
}

fn pattern(seed: u64, index: usize) -> u8 {
    let mixed = seed.wrapping_add(index as u64).wrapping_mul(0x2545_f491_4f6c_dd1d);
    (mixed >> 56) as u8
}

/// The `(generation, key)` a value was written with, if every byte of it is intact.
pub(crate) fn check(bytes: &[u8]) -> Option<(u64, u64)> {
    let generation = u64::from_le_bytes(bytes.get(0..8)?.try_into().ok()?);
    let key = u64::from_le_bytes(bytes.get(8..16)?.try_into().ok()?);
    let seed = generation.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ key;
    bytes[16..]
        .iter()
        .enumerate()
        .all(|(offset, &byte)| byte == pattern(seed, offset + 16))
        .then_some((generation, key))
}

/// This test binary, re-invoked to run only `test` with `role` set.
pub(crate) fn child(test: &str, role: &str, dir: &std::path::Path) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("the test binary's path"));
    command
        .args(["--exact", test, "--include-ignored", "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .env(DIR, dir)
        .stdin(Stdio::null());
    command
}

/// What a child printed after `RESULT ` on each line that has it; fails the
/// test if the child fails or outlives `limit`.
pub(crate) fn results(mut child: Child, limit: Duration) -> Vec<String> {
    let stdout = child.stdout.take().expect("the child's stdout is piped");
    let reader = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            // libtest may print the test's name on the same line before the output.
            .filter_map(|line| line.split_once("RESULT ").map(|(_, result)| result.to_owned()))
            .collect::<Vec<_>>()
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for a child") {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("a child process ran longer than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let lines = reader.join().expect("reading the child's output");
    assert!(status.success(), "a child process failed: {status}");
    lines
}
