//! Reading a stored value as a stream.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, ReadBuf};

use crate::entry::{Checksum, Header};

/// The value of one entry as an [`AsyncRead`], from [`FsCache::get_stream`](crate::FsCache::get_stream).
///
/// It reads the file that held the entry when it was opened, so a concurrent `set`
/// or `delete` of the key does not disturb it. The checksum is verified as the value is
/// read: damaged bytes end in an [`io::ErrorKind::InvalidData`] error, a file cut short
/// in [`io::ErrorKind::UnexpectedEof`], never in a clean end of file. The error is sticky:
/// every read after it fails the same way, so a caller that retries never sees a clean end.
#[derive(Debug)]
pub struct ValueReader {
    file: tokio::fs::File,
    header: Header,
    checksum: Option<Checksum>,
    read: u64,
    /// The failure reported, repeated on every later read.
    failed: Option<(io::ErrorKind, &'static str)>,
}

impl ValueReader {
    pub(crate) fn new(file: tokio::fs::File, header: Header, checksum: Checksum) -> ValueReader {
        ValueReader { file, header, checksum: Some(checksum), read: 0, failed: None }
    }

    fn fail(&mut self, kind: io::ErrorKind, message: &'static str) -> Poll<io::Result<()>> {
        self.failed = Some((kind, message));
        self.checksum = None;
        Poll::Ready(Err(io::Error::new(kind, message)))
    }

    /// The value's length in bytes.
    pub fn len(&self) -> u64 {
        self.header.value_len
    }

    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.header.value_len == 0
    }
}

impl AsyncRead for ValueReader {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some((kind, message)) = this.failed {
            return Poll::Ready(Err(io::Error::new(kind, message)));
        }
        let Some(checksum) = this.checksum.as_mut() else {
            // Verified and finished: stay at end of file.
            return Poll::Ready(Ok(()));
        };
        let before = buf.filled().len();
        if let Err(error) = ready!(Pin::new(&mut this.file).poll_read(cx, buf)) {
            // The bytes read so far are unverified: nothing after this may end cleanly.
            this.failed = Some((error.kind(), "reading the cache entry failed earlier"));
            this.checksum = None;
            return Poll::Ready(Err(error));
        }
        let fresh = &buf.filled()[before..];
        if fresh.is_empty() {
            if this.read != this.header.value_len {
                return this.fail(io::ErrorKind::UnexpectedEof, "the cache entry file ended early");
            }
            let finished = this.checksum.take().map(|checksum| checksum.finish(&this.header));
            if finished != Some(this.header.checksum) {
                return this.fail(io::ErrorKind::InvalidData, "the cache entry does not match its checksum");
            }
            return Poll::Ready(Ok(()));
        }
        this.read += fresh.len() as u64;
        if this.read > this.header.value_len {
            return this.fail(io::ErrorKind::InvalidData, "the cache entry file is longer than its header says");
        }
        checksum.update(fresh);
        Poll::Ready(Ok(()))
    }
}
