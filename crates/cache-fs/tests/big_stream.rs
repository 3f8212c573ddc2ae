//! A 1 GiB value streamed in and out with memory bounded. Alone in its test binary, so
//! the process's peak resident set (VmHWM) belongs to this test only.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use cache_core::Ttl;
use cache_fs::FsCache;
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

const GIB: u64 = 1 << 30;
/// How much the peak resident set may grow while a gigabyte goes through.
const RSS_BOUND: u64 = 64 << 20;

/// A 1 MiB block of noise; block `n` of the stream is this block with `n` in its first
/// eight bytes, so a lost, repeated or reordered block is caught, and checking costs one
/// comparison per block even in a debug build.
const BLOCK: usize = 1 << 20;

fn noise() -> Vec<u8> {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    (0..BLOCK)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 56) as u8
        })
        .collect()
}

fn block(noise: &[u8], index: u64) -> Vec<u8> {
    let mut block = noise.to_vec();
    block[..8].copy_from_slice(&index.to_le_bytes());
    block
}

/// Yields `blocks` blocks.
struct Generated {
    noise: Vec<u8>,
    next: u64,
    blocks: u64,
    /// The rest of the current block, for readers with buffers smaller than a block.
    pending: Vec<u8>,
}

impl AsyncRead for Generated {
    fn poll_read(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        if self.pending.is_empty() && self.next < self.blocks {
            self.pending = block(&self.noise, self.next);
            self.next += 1;
        }
        let n = self.pending.len().min(buf.remaining());
        buf.put_slice(&self.pending[..n]);
        self.pending.drain(..n);
        Poll::Ready(Ok(()))
    }
}

/// `VmHWM` (peak resident set) of this process, in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("reading /proc/self/status");
    let line = status.lines().find(|line| line.starts_with("VmHWM:")).expect("a VmHWM line");
    let kib: u64 = line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).expect("VmHWM in kB");
    kib * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_gib_streams_in_and_out_in_bounded_memory() {
    let tmp = tempfile::tempdir().expect("temp directory");
    let free = rustix::fs::statvfs(tmp.path()).map(|stats| stats.f_bavail * stats.f_frsize).expect("statvfs");
    assert!(free > 3 * GIB, "this test needs 3 GiB free in {}, found {free} bytes", tmp.path().display());

    let cache = FsCache::builder(tmp.path()).build().await.expect("build");
    let start = peak_rss();
    let began = Instant::now();
    let noise = noise();
    let source = Generated { noise: noise.clone(), next: 0, blocks: GIB / BLOCK as u64, pending: Vec::new() };
    let written = cache.set_stream("huge", source, Ttl::Never).await.expect("set_stream");
    let wrote_in = began.elapsed();
    assert_eq!(written, GIB);

    let began = Instant::now();
    let mut reader = cache.get_stream("huge").await.expect("get_stream").expect("present");
    assert_eq!(reader.len(), GIB);
    let mut got = vec![0u8; BLOCK];
    for index in 0..GIB / BLOCK as u64 {
        reader.read_exact(&mut got).await.expect("reading the stream");
        assert!(got == block(&noise, index), "block {index} came back changed");
    }
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest).await.expect("a clean end: the checksum matched");
    assert!(rest.is_empty(), "the stream went on past 1 GiB");
    let read_in = began.elapsed();

    let grew = peak_rss().saturating_sub(start);
    println!(
        "1 GiB: set_stream {wrote_in:?}, get_stream {read_in:?}; peak RSS grew by {:.1} MiB (VmHWM {:.1} -> {:.1} MiB)",
        grew as f64 / f64::from(1 << 20),
        start as f64 / f64::from(1 << 20),
        peak_rss() as f64 / f64::from(1 << 20),
    );
    assert!(grew < RSS_BOUND, "streaming 1 GiB raised the peak resident set by {grew} bytes");
}
