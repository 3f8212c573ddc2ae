//! Streaming reads: plain files, gzip, bzip2 and xz streams, and zip and tar members.
//!
//! Nothing here reads a whole file into memory: decoders wrap the file, a tar is walked header
//! by header (by the `tar` crate), and a zip member is read in place after one look at the
//! central directory.

use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use crate::error::{Error, ErrorKind, Result};

/// A stream over an item's content (or one archive member of it), decoded as it is read.
///
/// Corrupt compressed data, a truncated archive member and a zip member whose CRC-32 does not
/// match all surface as `io::ErrorKind::InvalidData` or `UnexpectedEof` from `read`.
///
/// ```
/// use std::io::{BufRead, BufReader, Write};
/// use cache_registry::{NewItem, Registry};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// let registry = Registry::open(dir.path())?;
/// let mut writer = registry.create("https://example.org/a.txt", &(), &NewItem::new())?.write()?;
/// writer.write_all(b"one\ntwo\n")?;
/// let item = writer.commit()?;
/// let lines: Vec<String> = BufReader::new(item.open()?).lines().collect::<Result<_, _>>()?;
/// assert_eq!(lines, ["one", "two"]);
/// # Ok(())
/// # }
/// ```
pub struct Reader {
    inner: Box<dyn Read + Send>,
}

impl fmt::Debug for Reader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reader").finish_non_exhaustive()
    }
}

impl Read for Reader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

impl Reader {
    fn new(inner: impl Read + Send + 'static) -> Reader {
        Reader { inner: Box::new(inner) }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Codec {
    Plain,
    Gzip,
    Bzip2,
    Xz,
    Zip,
}

/// The extension decides; only a file without one is sniffed, so a plain text file that
/// happens to begin with `BZh` is never mistaken for bzip2 when it says `.txt`.
fn codec_of(ext: &str, head: &[u8]) -> Codec {
    let last = ext.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
    match last.as_str() {
        "gz" | "tgz" | "gzip" => Codec::Gzip,
        "bz2" | "tbz" | "tbz2" | "bzip2" => Codec::Bzip2,
        "xz" | "txz" => Codec::Xz,
        "zip" => Codec::Zip,
        "" => sniff(head),
        _ => Codec::Plain,
    }
}

fn sniff(head: &[u8]) -> Codec {
    if head.starts_with(&[0x1f, 0x8b]) {
        Codec::Gzip
    } else if head.starts_with(b"BZh") {
        Codec::Bzip2
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        Codec::Xz
    } else if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        Codec::Zip
    } else {
        Codec::Plain
    }
}

fn open_file(path: &Path, operation: &'static str) -> Result<File> {
    File::open(path).map_err(|error| {
        if error.kind() == io::ErrorKind::NotFound {
            Error::new(ErrorKind::FileMissing, operation).with_context(path.display().to_string()).with_source(error)
        } else {
            Error::io(operation, path, error)
        }
    })
}

/// Opens `path` and decides its codec, leaving the file at its start.
fn open_with_codec(path: &Path, ext: &str, operation: &'static str) -> Result<(File, Codec)> {
    let mut file = open_file(path, operation)?;
    let mut head = [0u8; 6];
    let mut filled = 0;
    while filled < head.len() {
        match file.read(&mut head[filled..]) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(Error::io(operation, path, error)),
        }
    }
    file.seek(SeekFrom::Start(0)).map_err(|error| Error::io(operation, path, error))?;
    Ok((file, codec_of(ext, &head[..filled])))
}

/// What decoding may cost; the registry's settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Bytes of memory an xz decoder may take (its dictionary, mostly).
    pub(crate) xz_memory: u64,
}

/// An xz decoder whose memory is capped. The stream declares its dictionary size, and the
/// decoder allocates it: without a cap, a 156 KB file declaring a huge dictionary takes 1 GiB.
/// Going over the cap is an `OutOfMemory` error that names the setting.
struct XzCapped<R: Read> {
    inner: lzma_rust2::XzReader<R>,
    limit: u64,
}

impl<R: Read> XzCapped<R> {
    fn new(inner: R, multiple_streams: bool, limit: u64) -> Self {
        // The decoder takes KiB; u32::MAX KiB means no limit.
        let kib = u32::try_from(limit / 1024).unwrap_or(u32::MAX);
        XzCapped { inner: lzma_rust2::XzReader::new_mem_limit(inner, multiple_streams, kib), limit }
    }
}

impl<R: Read> Read for XzCapped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|error| {
            if error.kind() == io::ErrorKind::OutOfMemory {
                io::Error::new(
                    io::ErrorKind::OutOfMemory,
                    format!(
                        "the xz stream needs more decoder memory than the limit of {} KiB \
                         (RegistryBuilder::xz_memory_limit)",
                        self.limit / 1024
                    ),
                )
            } else {
                error
            }
        })
    }
}

fn decoded(file: File, codec: Codec, limits: Limits) -> Box<dyn Read + Send> {
    match codec {
        Codec::Gzip => Box::new(flate2::read::MultiGzDecoder::new(file)),
        Codec::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(file)),
        Codec::Xz => Box::new(XzCapped::new(BufReader::with_capacity(64 * 1024, file), true, limits.xz_memory)),
        Codec::Plain | Codec::Zip => Box::new(BufReader::with_capacity(64 * 1024, file)),
    }
}

pub(crate) fn open_raw(path: &Path) -> Result<Reader> {
    let file = open_file(path, "open")?;
    Ok(Reader::new(BufReader::with_capacity(64 * 1024, file)))
}

pub(crate) fn open(path: &Path, ext: &str, limits: Limits) -> Result<Reader> {
    let (file, codec) = open_with_codec(path, ext, "open")?;
    if codec == Codec::Zip {
        return zip_member(file, path, None, limits);
    }
    Ok(Reader { inner: decoded(file, codec, limits) })
}

pub(crate) fn open_member(path: &Path, ext: &str, name: &str, limits: Limits) -> Result<Reader> {
    let (file, codec) = open_with_codec(path, ext, "open member")?;
    if codec == Codec::Zip {
        return zip_member(file, path, Some(name), limits);
    }
    let stream = decoded(file, codec, limits);
    let wanted = normalize(name);
    let (stream, size) =
        walk_tar(stream, |found| normalize(found) == wanted).map_err(|error| tar_error(path, error))?;
    match size {
        Some(size) => Ok(Reader::new(Exact { inner: stream, remaining: size })),
        None => Err(Error::new(ErrorKind::NotFound, "open member").with_context(format!("no file member {name:?}"))),
    }
}

pub(crate) fn members(path: &Path, ext: &str, limits: Limits) -> Result<Vec<String>> {
    let (file, codec) = open_with_codec(path, ext, "members")?;
    if codec == Codec::Zip {
        let archive = zip::ZipArchive::new(BufReader::new(file)).map_err(|error| zip_error(path, error))?;
        return Ok(archive.file_names().filter(|name| !name.ends_with('/')).map(str::to_owned).collect());
    }
    let stream = decoded(file, codec, limits);
    let mut names = Vec::new();
    walk_tar(stream, |name| {
        names.push(name.to_owned());
        false
    })
    .map_err(|error| tar_error(path, error))?;
    Ok(names)
}

fn normalize(name: &str) -> &str {
    let mut name = name;
    while let Some(rest) = name.strip_prefix("./") {
        name = rest;
    }
    name
}

fn tar_error(path: &Path, error: io::Error) -> Error {
    // The tar crate reports a malformed archive (bad checksum, size overflow, a header with no
    // member after it) as `Other`; decoders report corrupt input as `InvalidData`.
    let kind = match error.kind() {
        io::ErrorKind::Other | io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof => ErrorKind::Corrupt,
        io::ErrorKind::OutOfMemory => ErrorKind::LimitExceeded,
        _ => ErrorKind::Io,
    };
    Error::new(kind, "open member")
        .with_context(format!("{}: reading it as a tar archive", path.display()))
        .with_source(error)
}

// ---- zip ----

fn zip_error(path: &Path, error: zip::result::ZipError) -> Error {
    use zip::result::ZipError;
    let kind = match &error {
        ZipError::Io(_) => ErrorKind::Io,
        ZipError::FileNotFound => ErrorKind::NotFound,
        ZipError::UnsupportedArchive(_) => ErrorKind::Unsupported,
        _ => ErrorKind::Corrupt,
    };
    Error::new(kind, "open member")
        .with_context(format!("{}: reading it as a zip archive", path.display()))
        .with_source(error)
}

/// Opens the member `name`, or the only file member when `name` is `None`.
///
/// The zip crate is used only to read the central directory; the member's bytes are then read
/// straight from the file, so the returned reader owns its file and borrows nothing.
fn zip_member(file: File, path: &Path, name: Option<&str>, limits: Limits) -> Result<Reader> {
    let (method, data_start, compressed, size, crc) = {
        let mut archive = zip::ZipArchive::new(BufReader::new(&file)).map_err(|error| zip_error(path, error))?;
        let index = match name {
            Some(name) => {
                let wanted = normalize(name);
                (0..archive.len())
                    .find(|&index| {
                        archive
                            .name_for_index(index)
                            .is_some_and(|found| !found.ends_with('/') && normalize(found) == wanted)
                    })
                    .ok_or_else(|| {
                        Error::new(ErrorKind::NotFound, "open member").with_context(format!("no file member {name:?}"))
                    })?
            }
            None => {
                let files: Vec<usize> = (0..archive.len())
                    .filter(|&index| archive.name_for_index(index).is_some_and(|found| !found.ends_with('/')))
                    .collect();
                match files.as_slice() {
                    [only] => *only,
                    _ => {
                        return Err(Error::invalid_input(
                            "open",
                            format!("the zip holds {} files: open one with open_member", files.len()),
                        ));
                    }
                }
            }
        };
        let entry = archive.by_index_raw(index).map_err(|error| zip_error(path, error))?;
        if entry.encrypted() {
            return Err(Error::new(ErrorKind::Unsupported, "open member")
                .with_context(format!("zip member {:?} is encrypted", entry.name())));
        }
        (entry.compression(), entry.data_start(), entry.compressed_size(), entry.size(), entry.crc32())
    };
    let mut file = file;
    file.seek(SeekFrom::Start(data_start)).map_err(|error| Error::io("open member", path, error))?;
    let raw = BufReader::with_capacity(64 * 1024, file).take(compressed);
    use zip::CompressionMethod;
    let decoder: Box<dyn Read + Send> = if method == CompressionMethod::STORE {
        Box::new(raw)
    } else if method == CompressionMethod::DEFLATE {
        Box::new(flate2::read::DeflateDecoder::new(raw))
    } else if method == CompressionMethod::BZIP2 {
        Box::new(bzip2::read::BzDecoder::new(raw))
    } else if method == CompressionMethod::XZ {
        Box::new(XzCapped::new(raw, false, limits.xz_memory))
    } else {
        return Err(Error::new(ErrorKind::Unsupported, "open member")
            .with_context(format!("zip compression method {method:?} (stored, deflate, bzip2 and xz are read)")));
    };
    Ok(Reader::new(Checked { inner: decoder, crc: flate2::Crc::new(), read: 0, size, expected_crc: crc }))
}

/// Verifies a zip member's size and CRC-32: the size as it streams, so a member whose header
/// understates it (a decompression bomb) fails as soon as it passes the declared size, not
/// after inflating all of it; the CRC-32 when the stream ends.
struct Checked {
    inner: Box<dyn Read + Send>,
    crc: flate2::Crc,
    read: u64,
    size: u64,
    expected_crc: u32,
}

impl Read for Checked {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // One byte more than the declared size is asked for, to find out whether there is more.
        let allowed = usize::try_from((self.size - self.read).saturating_add(1)).unwrap_or(usize::MAX);
        let limit = buf.len().min(allowed);
        let read = self.inner.read(&mut buf[..limit])?;
        if read > 0 {
            if read as u64 > self.size - self.read {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "zip member is longer than its declared size"));
            }
            self.crc.update(&buf[..read]);
            self.read += read as u64;
        } else if !buf.is_empty() && (self.read != self.size || self.crc.sum() != self.expected_crc) {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "zip member does not match its size or CRC-32"));
        }
        Ok(read)
    }
}

// ---- tar ----

/// Yields exactly `remaining` bytes, and an error if the stream ends before.
struct Exact {
    inner: Box<dyn Read + Send>,
    remaining: u64,
}

impl Read for Exact {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let limit = buf.len().min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let read = self.inner.read(&mut buf[..limit])?;
        if read == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "tar member is truncated"));
        }
        self.remaining -= read as u64;
        Ok(read)
    }
}

/// Counts the bytes read through it, to check where the tar crate left the stream.
struct Counted {
    inner: Box<dyn Read + Send>,
    count: u64,
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.count += read as u64;
        Ok(read)
    }
}

/// Walks the tar `stream` with the `tar` crate, which folds GNU long names and pax `path` and
/// `size` records into each member and checks sizes for overflow, calling `stop` with each
/// file member's name until it returns true. Returns the stream, positioned at the start of
/// that member's data, and the member's size; `None` when no member stopped the walk.
///
/// The crate reads a GNU long name or a pax header into memory whole, as every tar reader
/// does; member data is never buffered.
fn walk_tar(
    stream: Box<dyn Read + Send>,
    mut stop: impl FnMut(&str) -> bool,
) -> io::Result<(Box<dyn Read + Send>, Option<u64>)> {
    let mut archive = tar::Archive::new(Counted { inner: stream, count: 0 });
    let mut found = None;
    for entry in archive.entries()? {
        let entry = entry?;
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind == tar::EntryType::Continuous) {
            continue;
        }
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        if !name.ends_with('/') && stop(&name) {
            found = Some((entry.size(), entry.raw_file_position()));
            break;
        }
    }
    let counted = archive.into_inner();
    match found {
        // The crate reads headers straight from the stream, so a yielded member's data starts
        // where it stopped; checked rather than assumed, since a buffering crate would break it.
        Some((_, position)) if position != counted.count => {
            Err(io::Error::other("the tar reader did not stop at the member's data"))
        }
        Some((size, _)) => Ok((counted.inner, Some(size))),
        None => Ok((counted.inner, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_decides_and_only_a_missing_one_is_sniffed() {
        assert_eq!(codec_of("txt", b"BZh91"), Codec::Plain);
        assert_eq!(codec_of("", b"BZh91"), Codec::Bzip2);
        assert_eq!(codec_of("tar.gz", b""), Codec::Gzip);
        assert_eq!(codec_of("TGZ", b""), Codec::Gzip);
        assert_eq!(codec_of("", &[0xfd, b'7', b'z', b'X', b'Z', 0]), Codec::Xz);
        assert_eq!(codec_of("", b"PK\x03\x04"), Codec::Zip);
        assert_eq!(codec_of("", b"a,b"), Codec::Plain);
    }
}
