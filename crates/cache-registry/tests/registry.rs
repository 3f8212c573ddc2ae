//! Behaviour of one registry used from one process: lifecycle, lookups, attributes, search,
//! reads of every format, and cleanup.

#![allow(clippy::unwrap_used, reason = "a test helper that fails should panic with the error")]

use std::io::{Read, Write};
use std::time::{Duration, SystemTime};

use cache_registry::{
    AttrValue, Attributes, BestOrNew, Cleanup, ErrorKind, Filter, Item, NewItem, Order, Query, Reason, Registry, Status,
};
use serde_json::json;

fn registry() -> (tempfile::TempDir, Registry) {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::open(dir.path()).unwrap();
    (dir, registry)
}

fn ready(registry: &Registry, uri: &str, params: &serde_json::Value, options: &NewItem, bytes: &[u8]) -> Item {
    let item = registry.create(uri, params, options).unwrap();
    let mut writer = item.write().unwrap();
    writer.write_all(bytes).unwrap();
    writer.commit().unwrap()
}

fn read_all(mut reader: impl Read) -> Vec<u8> {
    let mut out = Vec::new();
    reader.read_to_end(&mut out).unwrap();
    out
}

#[test]
fn registry_handles_are_send_sync_and_cheap_to_clone() {
    fn assert_send_sync<T: Send + Sync + Clone + 'static>() {}
    assert_send_sync::<Registry>();
    assert_send_sync::<Item>();
    fn assert_send<T: Send>() {}
    assert_send::<cache_registry::Writer>();
    assert_send::<cache_registry::Reader>();
}

#[test]
fn create_write_commit_then_best_finds_it_with_every_field() {
    let (dir, registry) = registry();
    let before = SystemTime::now() - Duration::from_secs(1);
    let options = NewItem::new().label("nightly").attr("rows", 2);
    let item = registry.create("https://example.org/data/sales.csv", &json!({"y": 2024}), &options).unwrap();
    assert_eq!(item.status(), Status::Uninitialized);
    assert_eq!(item.version(), 1);
    assert_eq!(item.ext(), "csv");
    assert_eq!(item.label(), Some("nightly"));
    assert_eq!(item.params(), r#"{"y":2024}"#);
    assert_eq!(
        item.key(),
        cache_registry::item_key("https://example.org/data/sales.csv", &json!({"y": 2024})).unwrap()
    );
    assert!(item.created() >= before);
    assert!(item.path().starts_with(dir.path()));
    assert!(item.file_name().ends_with("-1.csv"));

    let mut writer = item.write().unwrap();
    writer.write_all(b"a,b\n1,2\n").unwrap();
    assert!(!item.path().exists(), "the final path appears only on commit");
    let committed = writer.commit().unwrap();
    assert_eq!(committed.status(), Status::Ready);
    assert_eq!(committed.size(), Some(8));

    let best = registry.best("https://example.org/data/sales.csv", &json!({"y": 2024})).unwrap().unwrap();
    assert_eq!(best.version(), 1);
    assert_eq!(best.status(), Status::Ready);
    assert_eq!(best.read_count(), 0);
    assert_eq!(read_all(best.open().unwrap()), b"a,b\n1,2\n");
    let mut again = best.clone();
    again.refresh().unwrap();
    assert_eq!(again.read_count(), 1);
    assert!(again.last_read().is_some());
    assert_eq!(again.attributes().unwrap().get("rows"), Some(&AttrValue::Int(2)));
}

#[test]
fn each_create_is_a_new_version_and_best_is_the_newest_ready() {
    let (_dir, registry) = registry();
    let params = json!({"a": 1, "b": [1, 2]});
    let reordered = json!({"b": [1, 2], "a": 1});
    let first = ready(&registry, "u", &params, &NewItem::new(), b"one");
    let second = ready(&registry, "u", &reordered, &NewItem::new(), b"two");
    let third = registry.create("u", &params, &NewItem::new()).unwrap();
    assert_eq!((first.version(), second.version(), third.version()), (1, 2, 3));
    assert_eq!(first.key(), third.key());

    let best = registry.best("u", &reordered).unwrap().unwrap();
    assert_eq!(best.version(), 2, "version 3 is not Ready");
    let versions: Vec<u64> = registry.versions("u", &params).unwrap().iter().map(Item::version).collect();
    assert_eq!(versions, [1, 2, 3]);
    assert_eq!(registry.get(first.key(), 3).unwrap().unwrap().status(), Status::Uninitialized);
    assert!(registry.get(first.key(), 9).unwrap().is_none());
    assert!(registry.best("u", &json!({"a": 2})).unwrap().is_none());
    assert!(registry.best("other", &params).unwrap().is_none());
}

#[test]
fn best_or_new_returns_the_ready_version_or_a_writer_for_a_new_one() {
    let (_dir, registry) = registry();
    let BestOrNew::New(mut writer) = registry.best_or_new("u", &json!({}), &NewItem::new().ext("txt")).unwrap() else {
        panic!("nothing was Ready yet");
    };
    assert_eq!(writer.item().status(), Status::Write);
    writer.write_all(b"made").unwrap();
    let made = writer.commit().unwrap();
    let BestOrNew::Found(found) = registry.best_or_new("u", &json!({}), &NewItem::new()).unwrap() else {
        panic!("the committed version should be found");
    };
    assert_eq!(found.version(), made.version());
    assert_eq!(read_all(found.open().unwrap()), b"made");
    assert_eq!(registry.versions("u", &json!({})).unwrap().len(), 1);
}

#[test]
fn invalid_transitions_are_errors_and_change_nothing() {
    let (_dir, registry) = registry();
    let mut item = registry.create("u", &json!(null), &NewItem::new()).unwrap();
    let error = item.set_status(Status::Ready).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidTransition);
    assert_eq!(error.context(), Some("uninitialized -> ready"));
    assert_eq!(error.to_string(), r#"registry set status "u" v1: invalid status transition: uninitialized -> ready"#);
    let bad = registry.create("https://h/x", &json!(null), &NewItem::new().attr("a.b", 1)).unwrap_err();
    assert_eq!(bad.item(), Some(r#""https://h/x""#), "{bad}");

    let writer = item.write().unwrap();
    assert_eq!(item.write().unwrap_err().kind(), ErrorKind::InvalidTransition, "only one writer may claim a version");
    let mut done = writer.commit().unwrap();
    assert_eq!(done.set_status(Status::Write).unwrap_err().kind(), ErrorKind::InvalidTransition);
    assert_eq!(done.set_status(Status::Failed).unwrap_err().kind(), ErrorKind::InvalidTransition);
    done.trash().unwrap();
    assert_eq!(done.trash().unwrap_err().kind(), ErrorKind::InvalidTransition);
    assert_eq!(registry.get(done.key(), 1).unwrap().unwrap().status(), Status::Trash);
}

#[test]
fn a_dropped_writer_marks_failed_and_leaves_no_file() {
    let (_dir, registry) = registry();
    let item = registry.create("u", &json!(1), &NewItem::new()).unwrap();
    {
        let mut writer = item.write().unwrap();
        writer.write_all(b"half").unwrap();
    }
    let stored = registry.get(item.key(), 1).unwrap().unwrap();
    assert_eq!(stored.status(), Status::Failed);
    assert!(!item.path().exists());
    assert_eq!(std::fs::read_dir(item.path().parent().unwrap()).unwrap().count(), 0);
    assert!(registry.best("u", &json!(1)).unwrap().is_none());

    let second = registry.create("u", &json!(1), &NewItem::new()).unwrap();
    second.write().unwrap().abort().unwrap();
    assert_eq!(registry.get(second.key(), 2).unwrap().unwrap().status(), Status::Failed);
}

#[test]
fn a_commit_after_the_version_was_trashed_fails() {
    let (_dir, registry) = registry();
    let item = registry.create("u", &json!(1), &NewItem::new()).unwrap();
    let mut writer = item.write().unwrap();
    writer.write_all(b"x").unwrap();
    let mut other = registry.get(item.key(), 1).unwrap().unwrap();
    other.trash().unwrap();
    assert_eq!(writer.commit().unwrap_err().kind(), ErrorKind::InvalidTransition);
    assert!(registry.best("u", &json!(1)).unwrap().is_none());
}

#[test]
fn attributes_are_typed_nested_and_updatable() {
    let (_dir, registry) = registry();
    let when = SystemTime::UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456);
    let attrs = Attributes::new()
        .with("rows", 10)
        .with("ratio", 0.5)
        .with("name", "survey")
        .with("when", when)
        .with("clean", true)
        .with("model", Attributes::new().with("layers", 3).with("kind", Attributes::new().with("family", "cnn")));
    let item = registry.create("u", &json!({}), &NewItem::new().attributes(attrs.clone())).unwrap();
    assert_eq!(item.attributes().unwrap(), attrs);
    let read = item.attributes().unwrap();
    assert_eq!(read.get("model.kind.family").and_then(AttrValue::as_text), Some("cnn"));
    assert_eq!(read.get("when").and_then(AttrValue::as_datetime), Some(when));
    assert_eq!(read.get("clean").and_then(AttrValue::as_bool), Some(true));
    assert_eq!(read.get("ratio").and_then(AttrValue::as_float), Some(0.5));

    item.set_attributes(&Attributes::new().with("rows", 11).with("extra", "x")).unwrap();
    assert_eq!(item.remove_attribute("model").unwrap(), 2);
    let read = item.attributes().unwrap();
    assert_eq!(read.get("rows"), Some(&AttrValue::Int(11)));
    assert_eq!(read.get("extra"), Some(&AttrValue::from("x")));
    assert!(read.get("model").is_none());
    assert_eq!(read.get("name"), Some(&AttrValue::from("survey")));

    let bad = registry.create("u", &json!({}), &NewItem::new().attr("a.b", 1)).unwrap_err();
    assert_eq!(bad.kind(), ErrorKind::InvalidInput);
}

fn search_fixture() -> (tempfile::TempDir, Registry) {
    let (dir, registry) = registry();
    let base = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
    for (n, source) in [(1i32, "survey"), (2, "census"), (3, "survey"), (4, "census-b"), (5, "other")] {
        let options = NewItem::new()
            .label(if n % 2 == 0 { "even" } else { "odd" })
            .attr("n", n)
            .attr("score", f64::from(n) / 2.0)
            .attr("source", source)
            .attr("big", n > 3)
            .attr("at", base + Duration::from_secs(n.unsigned_abs().into()))
            .attr("meta", Attributes::new().with("depth", n * 10));
        let params = json!({"n": n});
        if n == 5 {
            registry.create(&format!("https://h/{n}"), &params, &options).unwrap();
        } else {
            ready(&registry, &format!("https://h/{n}"), &params, &options, b"x");
        }
    }
    (dir, registry)
}

fn ns(registry: &Registry, query: impl Into<Query>) -> Vec<i64> {
    let mut found: Vec<i64> = registry
        .search(query)
        .unwrap()
        .iter()
        .map(|item| item.attributes().unwrap().get("n").and_then(AttrValue::as_int).unwrap())
        .collect();
    found.sort_unstable();
    found
}

#[test]
fn search_compares_attributes_with_every_operator() {
    let (_dir, registry) = search_fixture();
    assert_eq!(ns(&registry, Filter::attr("n").eq(3)), [3]);
    assert_eq!(ns(&registry, Filter::attr("n").ne(3)), [1, 2, 4, 5]);
    assert_eq!(ns(&registry, Filter::attr("n").lt(3)), [1, 2]);
    assert_eq!(ns(&registry, Filter::attr("n").le(3)), [1, 2, 3]);
    assert_eq!(ns(&registry, Filter::attr("n").gt(3)), [4, 5]);
    assert_eq!(ns(&registry, Filter::attr("n").ge(3)), [3, 4, 5]);
    assert_eq!(ns(&registry, Filter::attr("n").gt(2.5)), [3, 4, 5], "ints compare with floats");
    assert_eq!(ns(&registry, Filter::attr("score").ge(2)), [4, 5], "floats compare with ints");
    assert_eq!(ns(&registry, Filter::attr("n").is_in([1, 4, 9])), [1, 4]);
    assert_eq!(ns(&registry, Filter::attr("source").is_in(["survey", "other"])), [1, 3, 5]);
    assert!(ns(&registry, Filter::attr("n").is_in(Vec::<i64>::new())).is_empty());
    assert_eq!(ns(&registry, Filter::attr("source").like("census%")), [2, 4]);
    assert_eq!(ns(&registry, Filter::attr("source").like("CENSUS")), [2], "LIKE ignores ASCII case");
    assert_eq!(ns(&registry, Filter::attr("big").eq(true)), [4, 5]);
    assert_eq!(ns(&registry, Filter::attr("meta.depth").ge(30)), [3, 4, 5]);
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_003);
    assert_eq!(ns(&registry, Filter::attr("at").lt(at)), [1, 2]);
    assert!(ns(&registry, Filter::attr("n").eq("3")).is_empty(), "text never equals a number");
    assert!(ns(&registry, Filter::attr("missing").ne(1)).is_empty());
    assert_eq!(ns(&registry, Filter::attr("meta.depth").exists()), [1, 2, 3, 4, 5]);
}

#[test]
fn search_combines_record_and_attribute_conditions() {
    let (_dir, registry) = search_fixture();
    let ready = Filter::status(Status::Ready);
    assert_eq!(ns(&registry, ready.clone()), [1, 2, 3, 4]);
    assert_eq!(ns(&registry, Filter::status(Status::Uninitialized)), [5]);
    assert_eq!(ns(&registry, Filter::label("even")), [2, 4]);
    assert_eq!(ns(&registry, Filter::uri("https://h/3")), [3]);
    assert_eq!(ns(&registry, Filter::uri_like("https://h/%")), [1, 2, 3, 4, 5]);
    assert_eq!(ns(&registry, Filter::params(&json!({"n": 2})).unwrap()), [2]);
    assert_eq!(ns(&registry, Filter::item("https://h/4", &json!({"n": 4})).unwrap()), [4]);
    assert_eq!(
        ns(&registry, ready.clone().and(Filter::attr("n").gt(1).and(Filter::attr("source").like("census%")))),
        [2, 4]
    );
    assert_eq!(ns(&registry, Filter::attr("n").eq(1).or(Filter::attr("n").eq(5)).and(ready.clone())), [1]);
    assert_eq!(ns(&registry, Filter::not(Filter::label("odd"))), [2, 4]);
    assert_eq!(ns(&registry, Filter::all()), [1, 2, 3, 4, 5]);

    let now = SystemTime::now();
    assert_eq!(
        ns(&registry, Filter::created_between(now - Duration::from_secs(60), now + Duration::from_secs(60))).len(),
        5
    );
    assert!(ns(&registry, Filter::created_before(now - Duration::from_secs(60))).is_empty());
    assert!(ns(&registry, Filter::last_read_after(now - Duration::from_secs(60))).is_empty());

    let newest = registry.search(Query::new(Filter::all()).limit(2)).unwrap();
    assert_eq!(newest.iter().map(|item| item.uri().to_owned()).collect::<Vec<_>>(), ["https://h/5", "https://h/4"]);
    let oldest = registry.search(Query::new(Filter::all()).order(Order::OldestFirst).limit(1)).unwrap();
    assert_eq!(oldest[0].uri(), "https://h/1");

    assert!(registry.search(Filter::attr("n").like("1")).unwrap().is_empty(), "like never matches a number");
    let map_error = registry.search(Filter::attr("meta").eq(Attributes::new())).unwrap_err();
    assert_eq!(map_error.kind(), ErrorKind::InvalidInput);
}

#[test]
fn a_hostile_attribute_name_is_just_a_name() {
    let (_dir, registry) = registry();
    let hostile = "x'; DROP TABLE items; --";
    let item = ready(&registry, "u", &json!({}), &NewItem::new().attr(hostile, hostile).label(hostile), b"x");
    assert_eq!(item.attributes().unwrap().get(hostile), Some(&AttrValue::from(hostile)));
    let found = registry.search(Filter::attr(hostile).eq(hostile).and(Filter::label(hostile))).unwrap();
    assert_eq!(found.len(), 1);
    assert!(registry.search(Filter::attr(hostile).eq("x")).unwrap().is_empty());
    assert!(registry.search(Filter::attr("x").exists()).unwrap().is_empty());
    assert!(registry.best("u", &json!({})).unwrap().is_some(), "the items table is still there");
    let params_hostile = json!({ hostile: hostile });
    ready(&registry, hostile, &params_hostile, &NewItem::new(), b"y");
    assert_eq!(registry.best(hostile, &params_hostile).unwrap().unwrap().uri(), hostile);
}

#[test]
fn a_file_deleted_behind_the_registry_is_reported_not_a_crash() {
    let (_dir, registry) = registry();
    let item = ready(&registry, "u", &json!({}), &NewItem::new().ext("bin"), b"bytes");
    std::fs::remove_file(item.path()).unwrap();
    let error = item.open().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::FileMissing);
    assert!(error.to_string().contains("missing"));
    assert_eq!(item.open_member("a").unwrap_err().kind(), ErrorKind::FileMissing);

    let dry = registry.cleanup(&Cleanup::new().dry_run(true)).unwrap();
    assert_eq!(dry.removed.len(), 1);
    assert_eq!(dry.removed[0].reason, Reason::FileMissing);
    assert!(registry.get(item.key(), 1).unwrap().is_some(), "a dry run changes nothing");
    let report = registry.cleanup(&Cleanup::new()).unwrap();
    assert_eq!(report.removed[0].reason, Reason::FileMissing);
    assert!(registry.get(item.key(), 1).unwrap().is_none());
}

// ---- reading every format ----

const TEXT: &[u8] = b"line one\nline two\n";

fn stored(registry: &Registry, ext: &str, bytes: &[u8]) -> Item {
    ready(registry, &format!("https://h/file.{ext}"), &json!({"ext": ext}), &NewItem::new().ext(ext), bytes)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn bzip2(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn xz(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = lzma_rust2::XzWriter::new(Vec::new(), lzma_rust2::XzOptions::with_preset(6)).unwrap();
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn tar(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    builder.append_dir("dir", ".").unwrap();
    for (name, data) in members {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        builder.append_data(&mut header, name, *data).unwrap();
    }
    builder.into_inner().unwrap()
}

fn zip(members: &[(&str, &[u8])], method: zip::CompressionMethod) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    writer.add_directory("dir/", zip::write::SimpleFileOptions::default()).unwrap();
    for (name, data) in members {
        writer.start_file(*name, zip::write::SimpleFileOptions::default().compression_method(method)).unwrap();
        writer.write_all(data).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

#[test]
fn open_decodes_plain_gzip_bzip2_and_xz() {
    let (_dir, registry) = registry();
    assert_eq!(read_all(stored(&registry, "txt", TEXT).open().unwrap()), TEXT);
    assert_eq!(read_all(stored(&registry, "csv.gz", &gzip(TEXT)).open().unwrap()), TEXT);
    assert_eq!(read_all(stored(&registry, "csv.bz2", &bzip2(TEXT)).open().unwrap()), TEXT);
    assert_eq!(read_all(stored(&registry, "csv.xz", &xz(TEXT)).open().unwrap()), TEXT);
    let two_streams = [gzip(b"first "), gzip(b"second")].concat();
    assert_eq!(read_all(stored(&registry, "gz", &two_streams).open().unwrap()), b"first second");
    let raw = stored(&registry, "bin.gz", &gzip(TEXT));
    assert_eq!(read_all(raw.open_raw().unwrap()), gzip(TEXT));
}

#[test]
fn without_an_extension_the_format_is_sniffed() {
    let (_dir, registry) = registry();
    for (index, bytes) in [gzip(TEXT), bzip2(TEXT), xz(TEXT), TEXT.to_vec()].into_iter().enumerate() {
        let item = ready(&registry, "https://h/download", &json!(index), &NewItem::new(), &bytes);
        assert_eq!(item.ext(), "");
        assert_eq!(read_all(item.open().unwrap()), TEXT);
    }
}

#[test]
fn corrupt_compressed_data_is_an_io_error_not_a_panic() {
    let (_dir, registry) = registry();
    let mut truncated = gzip(&TEXT.repeat(100));
    truncated.truncate(truncated.len() / 2);
    let mut out = Vec::new();
    assert!(stored(&registry, "gz", &truncated).open().unwrap().read_to_end(&mut out).is_err());
    let mut garbage = Vec::new();
    assert!(stored(&registry, "xz", b"not xz at all").open().unwrap().read_to_end(&mut garbage).is_err());
    let not_tar = stored(&registry, "tar", &[7u8; 1024]);
    assert_eq!(not_tar.open_member("a").unwrap_err().kind(), ErrorKind::Corrupt);
    let not_zip = stored(&registry, "zip", b"PK\x03\x04 broken");
    assert_eq!(not_zip.open_member("a").unwrap_err().kind(), ErrorKind::Corrupt);
}

#[test]
fn tar_members_read_from_plain_and_compressed_tars() {
    let (_dir, registry) = registry();
    let long_name = format!("{}/deep.csv", "nested-directory-name".repeat(8));
    let big: Vec<u8> = (0..30_000u32).flat_map(u32::to_le_bytes).collect();
    let archive = tar(&[("a.txt", b"alpha"), (&long_name, TEXT), ("big.bin", &big), ("empty", b"")]);
    for (ext, bytes) in
        [("tar", archive.clone()), ("tar.gz", gzip(&archive)), ("tar.bz2", bzip2(&archive)), ("tar.xz", xz(&archive))]
    {
        let item = stored(&registry, ext, &bytes);
        assert_eq!(item.members().unwrap(), ["a.txt", long_name.as_str(), "big.bin", "empty"], "{ext}");
        assert_eq!(read_all(item.open_member("a.txt").unwrap()), b"alpha", "{ext}");
        assert_eq!(read_all(item.open_member(&format!("./{long_name}")).unwrap()), TEXT, "{ext}");
        assert_eq!(read_all(item.open_member("big.bin").unwrap()), big, "{ext}");
        assert_eq!(read_all(item.open_member("empty").unwrap()), b"", "{ext}");
        assert_eq!(
            item.open_member("dir").unwrap_err().kind(),
            ErrorKind::NotFound,
            "{ext}: directories are not files"
        );
        assert_eq!(item.open_member("nope").unwrap_err().kind(), ErrorKind::NotFound, "{ext}");
    }
}

#[test]
fn a_truncated_tar_member_is_an_error_when_read() {
    let (_dir, registry) = registry();
    let big = vec![9u8; 10_000];
    let mut archive = tar(&[("big.bin", &big)]);
    archive.truncate(512 + 4_000);
    let mut reader = stored(&registry, "tar", &archive).open_member("big.bin").unwrap();
    let mut out = Vec::new();
    assert_eq!(reader.read_to_end(&mut out).unwrap_err().kind(), std::io::ErrorKind::UnexpectedEof);
}

#[test]
fn zip_members_read_stored_and_deflated_and_counted() {
    let (_dir, registry) = registry();
    let big = TEXT.repeat(5_000);
    for method in [zip::CompressionMethod::Stored, zip::CompressionMethod::Deflated] {
        let item = stored(&registry, "zip", &zip(&[("a.txt", b"alpha"), ("dir/b.csv", &big)], method));
        assert_eq!(item.members().unwrap(), ["a.txt", "dir/b.csv"]);
        assert_eq!(read_all(item.open_member("dir/b.csv").unwrap()), big);
        assert_eq!(read_all(item.open_member("a.txt").unwrap()), b"alpha");
        assert_eq!(item.open_member("missing").unwrap_err().kind(), ErrorKind::NotFound);
        assert_eq!(item.open().unwrap_err().kind(), ErrorKind::InvalidInput, "two files: open_member says which");
        let mut refreshed = item.clone();
        refreshed.refresh().unwrap();
        assert_eq!(refreshed.read_count(), 2);
    }
    let single = stored(&registry, "zip", &zip(&[("only.txt", TEXT)], zip::CompressionMethod::Deflated));
    assert_eq!(read_all(single.open().unwrap()), TEXT);
}

#[test]
fn a_zip_member_with_a_wrong_checksum_fails_when_read() {
    let (_dir, registry) = registry();
    let mut bytes = zip(&[("a.txt", b"alpha beta gamma")], zip::CompressionMethod::Stored);
    let at = bytes.windows(5).position(|window| window == b"alpha").unwrap();
    bytes[at] = b'A';
    let mut out = Vec::new();
    let error = stored(&registry, "zip", &bytes).open_member("a.txt").unwrap().read_to_end(&mut out).unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
}

// ---- cleanup ----

#[test]
fn cleanup_removes_failed_trash_orphans_and_old_versions_and_counts_bytes() {
    let (_dir, registry) = registry();
    let params = json!({"k": 1});
    for content in [&b"v1"[..], b"v2-", b"v3--"] {
        ready(&registry, "kept", &params, &NewItem::new(), content);
    }
    let mut trashed = ready(&registry, "trashed", &params, &NewItem::new(), b"12345");
    trashed.trash().unwrap();
    let failed = registry.create("failed", &params, &NewItem::new()).unwrap();
    drop(failed.write().unwrap());
    let waiting = registry.create("waiting", &params, &NewItem::new()).unwrap();
    let orphan = registry.dir().join(cache_registry::FILES_DIR).join("stray.bin");
    std::fs::write(&orphan, b"0123456789").unwrap();

    let plan = Cleanup::new().keep_newest(1);
    let dry = registry.cleanup(&plan.clone().dry_run(true)).unwrap();
    assert!(dry.dry_run);
    assert_eq!(dry.bytes_freed, 2 + 3 + 5 + 10);
    assert!(orphan.exists());
    assert_eq!(registry.versions("kept", &params).unwrap().len(), 3);

    let report = registry.cleanup(&plan).unwrap();
    let mut reasons: Vec<(String, u64, Reason)> =
        report.removed.iter().map(|removed| (removed.uri.clone(), removed.version, removed.reason)).collect();
    reasons.sort_by(|left, right| (&left.0, left.1).cmp(&(&right.0, right.1)));
    assert_eq!(
        reasons,
        [
            ("failed".to_owned(), 1, Reason::Failed),
            ("kept".to_owned(), 1, Reason::Superseded),
            ("kept".to_owned(), 2, Reason::Superseded),
            ("trashed".to_owned(), 1, Reason::Trash),
        ]
    );
    assert_eq!(report.orphan_files, std::slice::from_ref(&orphan));
    assert_eq!(report.bytes_freed, dry.bytes_freed);
    assert!(!orphan.exists());
    assert!(!trashed.path().exists());
    let best = registry.best("kept", &params).unwrap().unwrap();
    assert_eq!(best.version(), 3);
    assert_eq!(read_all(best.open().unwrap()), b"v3--");
    assert_eq!(registry.get(waiting.key(), 1).unwrap().unwrap().status(), Status::Uninitialized);

    let again = registry.cleanup(&plan).unwrap();
    assert!(again.removed.is_empty() && again.orphan_files.is_empty() && again.bytes_freed == 0);
    let stale = registry.cleanup(&Cleanup::new().stale_after(Duration::ZERO)).unwrap();
    assert_eq!(stale.removed.len(), 1);
    assert_eq!(stale.removed[0].reason, Reason::Stale);
}

#[test]
fn versions_are_never_reused_after_cleanup_and_old_handles_never_see_new_content() {
    let (_dir, registry) = registry();
    let mut old = ready(&registry, "u", &json!({}), &NewItem::new(), b"old");
    let stale_handle = old.clone();
    old.trash().unwrap();
    assert_eq!(registry.cleanup(&Cleanup::new()).unwrap().removed.len(), 1);

    let new = ready(&registry, "u", &json!({}), &NewItem::new(), b"new");
    assert_eq!(new.version(), 2, "one more than the highest version this key has had");
    assert_ne!(new.file_name(), stale_handle.file_name());
    assert_eq!(stale_handle.open().unwrap_err().kind(), ErrorKind::FileMissing);
    let mut refreshed = stale_handle.clone();
    assert_eq!(refreshed.refresh().unwrap_err().kind(), ErrorKind::NotFound, "the old row is gone");
    assert_eq!(stale_handle.clone().trash().unwrap_err().kind(), ErrorKind::NotFound, "never the new row");
    assert_eq!(registry.best("u", &json!({})).unwrap().unwrap().status(), Status::Ready);

    // The same after every version of the key went, and for a version that never got a file.
    let mut newest = registry.best("u", &json!({})).unwrap().unwrap();
    newest.trash().unwrap();
    registry.create("u", &json!({}), &NewItem::new()).unwrap().trash().unwrap();
    registry.cleanup(&Cleanup::new()).unwrap();
    assert!(registry.versions("u", &json!({})).unwrap().is_empty());
    assert_eq!(registry.create("u", &json!({}), &NewItem::new()).unwrap().version(), 4);
}

#[test]
fn a_writers_partial_file_is_not_an_orphan_while_it_writes() {
    let (_dir, registry) = registry();
    let item = registry.create("u", &json!(1), &NewItem::new()).unwrap();
    let mut writer = item.write().unwrap();
    writer.write_all(b"in progress").unwrap();
    writer.flush().unwrap();
    let report = registry.cleanup(&Cleanup::new()).unwrap();
    assert!(report.orphan_files.is_empty() && report.removed.is_empty());
    assert_eq!(writer.commit().unwrap().size(), Some(11));
}

// ---- opening ----

#[test]
fn reopening_keeps_everything_and_a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let registry = Registry::open(dir.path()).unwrap();
        ready(&registry, "u", &json!({}), &NewItem::new(), b"kept");
    }
    let registry = Registry::builder(dir.path()).busy_timeout(Duration::from_secs(5)).sync_files(true).open().unwrap();
    assert_eq!(read_all(registry.best("u", &json!({})).unwrap().unwrap().open().unwrap()), b"kept");
    ready(&registry, "u", &json!({}), &NewItem::new(), b"synced");
    drop(registry);

    set_schema_version(dir.path(), 99);
    let error = Registry::open(dir.path()).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::IncompatibleSchema);
}

/// Writes `version` as the database's `user_version`, as a newer release of the crate would,
/// by editing the header: the test has no SQL access of its own.
fn set_schema_version(dir: &std::path::Path, version: u32) {
    use std::io::{Seek, SeekFrom};
    // Fold the WAL into the main file first so the header edit is the whole truth.
    let wal = dir.join(format!("{}-wal", cache_registry::DATABASE_FILE));
    assert!(!wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0, "the last handle checkpoints on close");
    let mut file =
        std::fs::OpenOptions::new().read(true).write(true).open(dir.join(cache_registry::DATABASE_FILE)).unwrap();
    // The user_version is the big-endian u32 at byte 60 of the database header.
    file.seek(SeekFrom::Start(60)).unwrap();
    file.write_all(&version.to_be_bytes()).unwrap();
}

#[test]
fn a_file_that_is_not_a_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(cache_registry::DATABASE_FILE), vec![b'x'; 4096]).unwrap();
    let error = Registry::open(dir.path()).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::IncompatibleSchema);
}

#[test]
fn app_names_that_are_not_one_directory_are_refused() {
    for bad in ["", ".", "..", "a/b", "a\\b"] {
        assert_eq!(Registry::app_dir(bad).unwrap_err().kind(), ErrorKind::InvalidConfig, "{bad:?}");
    }
    if let Ok(dir) = Registry::app_dir("cache-registry-test") {
        assert!(dir.ends_with("cache-registry-test"));
    }
}

#[test]
fn params_that_are_not_json_are_invalid_input() {
    let (_dir, registry) = registry();
    let mut map = std::collections::HashMap::new();
    map.insert((1, 2), 3);
    assert_eq!(registry.create("u", &map, &NewItem::new()).unwrap_err().kind(), ErrorKind::InvalidInput);
    assert_eq!(registry.best("u", &map).unwrap_err().kind(), ErrorKind::InvalidInput);
    assert_eq!(
        registry.create("u", &json!({}), &NewItem::new().ext("../../etc/passwd")).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
}

#[test]
fn threads_share_one_handle() {
    let (_dir, registry) = registry();
    std::thread::scope(|scope| {
        for thread in 0..4 {
            let registry = registry.clone();
            scope.spawn(move || {
                for n in 0..25 {
                    ready(
                        &registry,
                        "shared",
                        &json!({}),
                        &NewItem::new().attr("thread", thread),
                        format!("{thread}-{n}").as_bytes(),
                    );
                }
            });
        }
    });
    let versions = registry.versions("shared", &json!({})).unwrap();
    assert_eq!(versions.iter().map(Item::version).collect::<Vec<_>>(), (1..=100).collect::<Vec<u64>>());
    assert!(versions.iter().all(|item| item.status() == Status::Ready));
    for thread in 0..4 {
        assert_eq!(registry.search(Filter::attr("thread").eq(thread)).unwrap().len(), 25);
    }
}

// ---- hardening ----

#[cfg(unix)]
#[test]
fn the_writer_never_follows_a_planted_symlink_and_creates_its_file_0600() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, registry) = registry();
    let item = registry.create("u", &json!(1), &NewItem::new().ext("bin")).unwrap();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    let partial = item.path().with_file_name(format!("{}.part", item.file_name()));
    std::os::unix::fs::symlink(&victim, &partial).unwrap();
    let error = item.write().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Io, "{error}");
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious", "the symlink's target is untouched");
    assert_eq!(registry.get(item.key(), 1).unwrap().unwrap().status(), Status::Failed);

    let committed = ready(&registry, "v", &json!(1), &NewItem::new(), b"secret");
    let mode = std::fs::metadata(committed.path()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
}

/// Rewrites the uncompressed size of the only member of `zip`, in its local header and in the
/// central directory.
fn declare_zip_size(zip: &mut [u8], size: u32) {
    assert_eq!(&zip[..4], b"PK\x03\x04");
    zip[22..26].copy_from_slice(&size.to_le_bytes());
    let central = zip.windows(4).position(|window| window == b"PK\x01\x02").unwrap();
    zip[central + 24..central + 28].copy_from_slice(&size.to_le_bytes());
}

#[test]
fn a_zip_member_fails_as_soon_as_it_streams_past_its_declared_size() {
    let (_dir, registry) = registry();
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    writer.start_file("bomb.bin", options).unwrap();
    writer.write_all(&vec![0u8; 4 << 20]).unwrap();
    let mut bytes = writer.finish().unwrap().into_inner();
    declare_zip_size(&mut bytes, 10);
    let mut reader = stored(&registry, "zip", &bytes).open_member("bomb.bin").unwrap();
    let mut delivered = 0usize;
    let mut buf = vec![0u8; 64 * 1024];
    let error = loop {
        match reader.read(&mut buf) {
            Ok(0) => panic!("the oversize member read to its end"),
            Ok(read) => delivered += read,
            Err(error) => break error,
        }
    };
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
    assert!(delivered <= 10, "{delivered} bytes delivered past a declared size of 10");
}

#[test]

fn xz_decoder_memory_is_capped_by_a_setting_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    // Preset 6 declares an 8 MiB dictionary.
    let bytes = xz(TEXT);
    let capped = Registry::builder(dir.path()).xz_memory_limit(1 << 20).open().unwrap();
    let item = stored(&capped, "xz", &bytes);
    let error = item.open().unwrap().read_to_end(&mut Vec::new()).unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::OutOfMemory);
    assert!(error.to_string().contains("xz_memory_limit"), "{error}");
    let archive = stored(&capped, "tar.xz", &xz(&tar(&[("a.txt", b"alpha")])));
    let error = archive.open_member("a.txt").unwrap_err();
    assert_eq!(error.kind(), ErrorKind::LimitExceeded, "{error}");

    let default = Registry::open(dir.path()).unwrap();
    let item = default.get(item.key(), 1).unwrap().unwrap();
    assert_eq!(read_all(item.open().unwrap()), TEXT, "the default limit reads every xz preset");
}

/// One raw tar header block with a correct checksum.
fn tar_header(name: &str, kind: tar::EntryType, size_field: &[u8; 12]) -> [u8; 512] {
    let mut header = tar::Header::new_ustar();
    header.set_path(name).unwrap();
    header.set_entry_type(kind);
    header.set_mode(0o644);
    header.set_size(0);
    let mut block = [0u8; 512];
    block.copy_from_slice(header.as_bytes());
    block[124..136].copy_from_slice(size_field);
    block[148..156].copy_from_slice(b"        ");
    let sum: u32 = block.iter().map(|&byte| u32::from(byte)).sum();
    block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    block
}

fn padded_to_block(data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    out.resize(data.len().div_ceil(512) * 512, 0);
    out
}

#[test]
fn tar_pax_size_records_are_honoured() {
    let (_dir, registry) = registry();
    // As GNU tar and Python write members of 8 GiB or more: the header's size field says 0
    // and a pax `size` record holds the real size.
    let content = b"pax sized content";
    let record = pax_record("size", &content.len().to_string());
    let mut archive = Vec::new();
    archive.extend(tar_header("PaxHeader", tar::EntryType::XHeader, &octal12(record.len())));
    archive.extend(padded_to_block(record.as_bytes()));
    archive.extend(tar_header("big.bin", tar::EntryType::Regular, &octal12(0)));
    archive.extend(padded_to_block(content));
    archive.extend(tar_header("after.txt", tar::EntryType::Regular, &octal12(5)));
    archive.extend(padded_to_block(b"after"));
    archive.extend([0u8; 1024]);
    let item = stored(&registry, "tar", &archive);
    assert_eq!(item.members().unwrap(), ["big.bin", "after.txt"]);
    assert_eq!(read_all(item.open_member("big.bin").unwrap()), content);
    assert_eq!(read_all(item.open_member("after.txt").unwrap()), b"after");
}

/// `"<len> <key>=<value>\n"`, where `<len>` counts the whole record, its own digits too.
fn pax_record(key: &str, value: &str) -> String {
    let body = format!(" {key}={value}\n");
    let mut len = body.len();
    while len.to_string().len() + body.len() != len {
        len = len.to_string().len() + body.len();
    }
    format!("{len}{body}")
}

fn octal12(value: usize) -> [u8; 12] {
    let mut field = [0u8; 12];
    field[..11].copy_from_slice(format!("{value:011o}").as_bytes());
    field
}

#[test]
fn a_tar_base_256_size_near_u64_max_is_corrupt_not_a_panic() {
    let (_dir, registry) = registry();
    let mut size = [0xffu8; 12];
    size[..4].copy_from_slice(&[0x80, 0, 0, 0]);
    let mut archive = tar_header("huge.bin", tar::EntryType::Regular, &size).to_vec();
    archive.extend([0u8; 1024]);
    let item = stored(&registry, "tar", &archive);
    assert_eq!(item.members().unwrap_err().kind(), ErrorKind::Corrupt);
    assert_eq!(item.open_member("other").unwrap_err().kind(), ErrorKind::Corrupt);
}

#[test]
fn not_is_the_exact_complement_over_missing_labels_and_never_read_items() {
    let (_dir, registry) = registry();
    for (n, label) in [(1, Some("nightly")), (2, Some("weekly")), (3, None)] {
        let options = match label {
            Some(label) => NewItem::new().label(label),
            None => NewItem::new(),
        };
        ready(&registry, "u", &json!(n), &options.attr("n", n), b"x");
    }
    assert_eq!(ns(&registry, Filter::label("nightly")), [1]);
    assert_eq!(ns(&registry, Filter::not(Filter::label("nightly"))), [2, 3]);
    registry.best("u", &json!(1)).unwrap().unwrap().open().unwrap();
    let hour_ago = SystemTime::now() - Duration::from_secs(3600);
    assert_eq!(ns(&registry, Filter::last_read_after(hour_ago)), [1]);
    assert_eq!(ns(&registry, Filter::not(Filter::last_read_after(hour_ago))), [2, 3]);
    assert_eq!(ns(&registry, Filter::not(Filter::last_read_before(hour_ago))), [1, 2, 3]);
}

#[test]
fn an_attribute_cannot_be_a_value_and_a_namespace_at_once() {
    let (_dir, registry) = registry();
    let item = registry
        .create("u", &json!({}), &NewItem::new().attr("model", Attributes::new().with("layers", 3)).attr("size", 1))
        .unwrap();
    let before = item.attributes().unwrap();

    let error = item.set_attributes(&Attributes::new().with("model", 3)).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput);
    assert!(error.to_string().contains("model.layers"), "{error}");
    let error = item.set_attributes(&Attributes::new().with("size", Attributes::new().with("bytes", 10))).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput);
    assert!(error.to_string().contains("size"), "{error}");
    assert_eq!(item.attributes().unwrap(), before, "a refused change changes nothing");
    assert_eq!(registry.search(Filter::attr("model").exists()).unwrap().len(), 0);

    // Same-kind updates and removing first both work.
    item.set_attributes(&Attributes::new().with("model", Attributes::new().with("layers", 4))).unwrap();
    item.remove_attribute("model").unwrap();
    item.set_attributes(&Attributes::new().with("model", 3)).unwrap();
    assert_eq!(item.attributes().unwrap().get("model"), Some(&AttrValue::Int(3)));
}
