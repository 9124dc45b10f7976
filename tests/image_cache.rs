//! The image cache on real qcow2 files (made with qemu-img) and a small HTTP/1.1 server of
//! the test's own on 127.0.0.1. Each test has its own cache root: no environment variables.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use lab::cache::qemu_img::standalone_qcow2;
use lab::cache::{Cache, CacheError, Timeouts, sha256_file};
use lab::image::{Catalogue, Format, Image, Profile};
use lab::model::units::ByteSize;
use lab::names;
use lab::progress::{Action, Event, Progress, Work};

const GIB: u64 = 1 << 30;

fn image(name: &str, url: Option<&str>, sha256: Option<&str>, virtual_size: u64) -> Image {
    Image {
        name: name.to_string(),
        description: format!("test image {name}"),
        url: url.map(str::to_string),
        sha256: sha256.map(str::to_string),
        format: Format::Qcow2,
        profile: Profile::Debian12,
        virtual_size: ByteSize(virtual_size),
    }
}

fn cache(root: &Path, images: Vec<Image>) -> Cache {
    Cache::new(root, Catalogue { images })
}

/// `qemu-img create -f FORMAT PATH SIZE [extra args]`.
fn qemu_img(dir: &Path, file: &str, format: &str, size: &str, extra: &[&str]) -> PathBuf {
    common::require_tool("qemu-img", "qemu-utils");
    let path = dir.join(file);
    let (code, _, err) = common::run(
        Command::new("qemu-img")
            .args(["create", "-q", "-f", format])
            .args(extra)
            .arg(&path)
            .arg(size),
    );
    assert_eq!(code, 0, "qemu-img create {file}: {err}");
    path
}

/// Files of the cache's images directory (none left over after a refusal).
fn cache_files(root: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(root.join(names::cache::IMAGES_DIR))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn import_accepts_a_standalone_qcow2_and_lists_it_verified() {
    let tmp = tempfile::tempdir().unwrap();
    let file = qemu_img(tmp.path(), "base.qcow2", "qcow2", "8G", &[]);
    let root = tmp.path().join("cache");
    let c = cache(
        &root,
        vec![image("base", Some("http://127.0.0.1:9/x"), None, 8 * GIB)],
    );

    let path = c.import("base", &file).unwrap();
    assert_eq!(path, root.join("images/base.qcow2"));
    assert_eq!(std::fs::read(&path).unwrap(), std::fs::read(&file).unwrap());
    assert_eq!(
        cache_files(&root),
        ["base.qcow2", "base.qcow2.sha256.json"],
        "no temporary file is left"
    );
    let record = std::fs::read_to_string(root.join(names::cache::record("base"))).unwrap();
    assert!(record.contains(&sha256_file(&file).unwrap()), "{record}");

    let list = c.list().unwrap();
    assert_eq!(list.len(), 1);
    let e = &list[0];
    assert!(e.cached && e.verified && e.downloadable, "{e:?}");
    assert_eq!(
        e.size_on_disk,
        Some(std::fs::metadata(&file).unwrap().len())
    );
    assert_eq!(e.virtual_size, 8 * GIB);
    assert_eq!(e.file_virtual_size, Some(8 * GIB));
    let json = serde_json::to_value(&list).unwrap();
    assert_eq!(json[0]["verified"], true);
    assert_eq!(json[0]["path"], path.to_str().unwrap());
    assert_eq!(c.path_for("base").unwrap(), path);
}

#[test]
fn import_refuses_a_backing_file_a_raw_file_and_a_wrong_virtual_size() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let base = qemu_img(d, "base.qcow2", "qcow2", "8G", &[]);
    let overlay = qemu_img(
        d,
        "overlay.qcow2",
        "qcow2",
        "8G",
        &["-b", "base.qcow2", "-F", "qcow2"],
    );
    let raw = qemu_img(d, "disk.raw", "raw", "1M", &[]);
    let small = qemu_img(d, "small.qcow2", "qcow2", "4G", &[]);
    let big = qemu_img(d, "big.qcow2", "qcow2", "16G", &[]);
    let root = d.join("cache");
    let c = cache(
        &root,
        vec![
            image("pulled", Some("http://127.0.0.1:9/x"), None, 8 * GIB),
            image("built", None, None, 8 * GIB),
        ],
    );

    let err = c.import("pulled", &overlay).unwrap_err();
    assert!(matches!(err, CacheError::BackingFile { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("backing file") && msg.contains("qemu-img convert -O qcow2"),
        "{msg}"
    );

    let msg = c.import("pulled", &raw).unwrap_err().to_string();
    assert!(
        msg.contains("is not a qcow2 image: convert it with `qemu-img convert -O qcow2"),
        "{msg}"
    );

    let msg = c.import("pulled", &small).unwrap_err().to_string();
    assert!(
        msg.contains(&format!("needs exactly {} bytes", 8 * GIB)),
        "{msg}"
    );
    let msg = c.import("built", &big).unwrap_err().to_string();
    assert!(
        msg.contains(&format!("needs at most {} bytes", 8 * GIB)),
        "{msg}"
    );
    assert!(cache_files(&root).is_empty(), "{:?}", cache_files(&root));

    c.import("built", &small).unwrap();
    c.import("pulled", &base).unwrap();
    assert!(c.list().unwrap().iter().all(|e| e.verified));
    let msg = c.import("nope", &base).unwrap_err().to_string();
    assert!(
        msg.contains("no image \"nope\" in the catalogue: use one of pulled, built"),
        "{msg}"
    );
}

/// `path`'s bytes with `patch` written at `offset`, as a new file `name`.
fn patched(path: &Path, name: &str, offset: usize, patch: &[u8]) -> PathBuf {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset..offset + patch.len()].copy_from_slice(patch);
    let out = path.with_file_name(name);
    std::fs::write(&out, bytes).unwrap();
    out
}

#[test]
fn qcow2_facts_come_from_qemu_img_and_are_refused_for_the_right_reasons() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let v3 = qemu_img(d, "v3.qcow2", "qcow2", "8G", &[]);
    let v2 = qemu_img(d, "v2.qcow2", "qcow2", "5M", &["-o", "compat=0.10"]);
    let overlay = qemu_img(
        d,
        "o.qcow2",
        "qcow2",
        "5M",
        &["-b", "v2.qcow2", "-F", "qcow2"],
    );
    let facts = standalone_qcow2(&v3).unwrap();
    assert_eq!(
        (facts.format.as_str(), facts.virtual_size),
        ("qcow2", 8 * GIB)
    );
    assert_eq!(standalone_qcow2(&v2).unwrap().virtual_size, 5 << 20);
    let version4 = patched(&v3, "v4.qcow2", 4, &4u32.to_be_bytes());
    let msg = standalone_qcow2(&version4).unwrap_err().to_string();
    assert!(msg.contains("Unsupported qcow2 version 4"), "{msg}");
    let err = standalone_qcow2(&overlay).unwrap_err();
    assert!(matches!(err, CacheError::BackingFile { .. }), "{err:?}");
    // Bit 1 of the incompatible features (bytes 72..80) is qcow2's corrupt flag.
    let corrupt = patched(&v3, "corrupt.qcow2", 79, &[2]);
    let err = standalone_qcow2(&corrupt).unwrap_err();
    assert!(matches!(err, CacheError::Corrupt { .. }), "{err:?}");
    let short = d.join("short");
    std::fs::write(&short, &std::fs::read(&v3).unwrap()[..31]).unwrap();
    let err = standalone_qcow2(&short).unwrap_err();
    assert!(matches!(err, CacheError::ImageInfo(_)), "{err:?}");
    let no_magic = patched(&v3, "no-magic", 3, &[0xfa]);
    let zeros = d.join("zeros");
    std::fs::write(&zeros, [0u8; 512]).unwrap();
    for file in [no_magic, zeros] {
        let err = standalone_qcow2(&file).unwrap_err();
        assert!(matches!(err, CacheError::NotQcow2 { .. }), "{err:?}");
    }
}

#[test]
fn import_checks_the_pinned_sha256_and_names_both_sums() {
    let tmp = tempfile::tempdir().unwrap();
    let file = qemu_img(tmp.path(), "base.qcow2", "qcow2", "8G", &[]);
    let sum = sha256_file(&file).unwrap();
    let wrong = "ab".repeat(32);
    let root = tmp.path().join("cache");
    let c = cache(
        &root,
        vec![
            image(
                "good",
                Some("http://127.0.0.1:9/x"),
                Some(&sum.to_uppercase()),
                8 * GIB,
            ),
            image("bad", Some("http://127.0.0.1:9/x"), Some(&wrong), 8 * GIB),
        ],
    );
    let err = c.import("bad", &file).unwrap_err();
    assert!(
        matches!(err, CacheError::ChecksumMismatch { .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains(&wrong) && msg.contains(&sum), "{msg}");
    assert!(msg.contains("lab image pull bad"), "{msg}");
    assert!(cache_files(&root).is_empty(), "{:?}", cache_files(&root));
    c.import("good", &file).unwrap();
    assert!(c.path_for("good").is_ok());
}

#[test]
fn path_for_names_the_command_that_gets_the_image() {
    let tmp = tempfile::tempdir().unwrap();
    let c = cache(
        tmp.path(),
        vec![
            image("pulled", Some("http://127.0.0.1:9/x"), None, GIB),
            image("built", None, None, GIB),
        ],
    );
    let msg = c.path_for("pulled").unwrap_err().to_string();
    assert_eq!(
        msg,
        "image pulled is not cached: run `lab image pull pulled` (or `lab image import pulled FILE`)"
    );
    let msg = c.path_for("built").unwrap_err().to_string();
    assert!(
        msg.contains("build it with `lab image build built`"),
        "{msg}"
    );
    let msg = c.path_for("other").unwrap_err().to_string();
    assert!(msg.contains("use one of pulled, built"), "{msg}");
    let list = c.list().unwrap();
    assert!(
        list.iter()
            .all(|e| !e.cached && !e.verified && e.size_on_disk.is_none())
    );
    assert_eq!(list[0].path, tmp.path().join("images/pulled.qcow2"));
}

#[test]
fn a_touched_image_is_hashed_again_and_a_changed_one_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let file = qemu_img(tmp.path(), "base.qcow2", "qcow2", "8G", &[]);
    let root = tmp.path().join("cache");
    let c = cache(&root, vec![image("base", None, None, 8 * GIB)]);
    let path = c.import("base", &file).unwrap();

    let touch = |secs: u64| {
        let f = std::fs::File::options().write(true).open(&path).unwrap();
        f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
            .unwrap();
    };
    touch(1_000_000);
    assert!(
        !c.list().unwrap()[0].verified,
        "a new mtime voids the record"
    );
    assert_eq!(
        c.path_for("base").unwrap(),
        path,
        "same content: hashed and accepted"
    );
    assert!(c.list().unwrap()[0].verified, "the record was refreshed");

    let mut f = std::fs::File::options().append(true).open(&path).unwrap();
    f.write_all(b"tampered").unwrap();
    drop(f);
    touch(1_000_000);
    assert!(
        !c.list().unwrap()[0].verified,
        "a new size voids the record"
    );
    let err = c.path_for("base").unwrap_err();
    assert!(matches!(err, CacheError::Modified { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("changed since it was cached") && msg.contains("`lab image rm base`"),
        "{msg}"
    );

    std::fs::write(c.partial_path("base"), b"part").unwrap();
    assert!(c.remove("base").unwrap());
    assert!(cache_files(&root).is_empty(), "{:?}", cache_files(&root));
    assert!(!c.remove("base").unwrap(), "nothing left to remove");
    assert!(!c.list().unwrap()[0].cached);
    assert!(c.remove("nope").is_err());
}

/// How the test server answers one request.
#[derive(Clone)]
enum Reply {
    /// Honours `Range`.
    Honest,
    /// Honours `Range`, announces the full length, sends this many body bytes and hangs up.
    CutAfter(usize),
    /// Always sends the whole file with 200.
    IgnoreRange,
    /// Honours `Range` but serves other bytes.
    Content(Vec<u8>),
    /// Says nothing for this long, then hangs up.
    Silent(Duration),
}

/// A bounded HTTP/1.1 server on 127.0.0.1: one connection per reply, then it stops (or
/// after 20 s). Records the head of each request.
struct Server {
    url: String,
    heads: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start(body: Vec<u8>, replies: Vec<Reply>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/x.qcow2", listener.local_addr().unwrap());
        listener.set_nonblocking(true).unwrap();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let seen = heads.clone();
        thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(20);
            for reply in replies {
                let stream = loop {
                    match listener.accept() {
                        Ok((s, _)) => break s,
                        Err(_) if Instant::now() < deadline => {
                            thread::sleep(Duration::from_millis(5))
                        }
                        Err(_) => return,
                    }
                };
                answer(stream, &body, reply, &seen);
            }
        });
        Server { url, heads }
    }

    fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }
}

fn answer(mut s: TcpStream, body: &[u8], reply: Reply, seen: &Mutex<Vec<String>>) {
    s.set_nonblocking(false).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && s.read(&mut byte).unwrap_or(0) == 1 {
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    seen.lock().unwrap().push(head.clone());
    let range = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("range: bytes=")
                .map(str::to_string)
        })
        .and_then(|r| r.trim_end_matches('-').parse::<usize>().ok());
    let (content, range, cut) = match reply {
        Reply::Honest => (body.to_vec(), range, None),
        Reply::CutAfter(n) => (body.to_vec(), range, Some(n)),
        Reply::IgnoreRange => (body.to_vec(), None, None),
        Reply::Content(other) => (other, range, None),
        Reply::Silent(d) => return thread::sleep(d),
    };
    let len = content.len();
    let (status, extra, part) = match range {
        None => ("200 OK", String::new(), &content[..]),
        Some(n) if n >= len => (
            "416 Range Not Satisfiable",
            format!("Content-Range: bytes */{len}\r\n"),
            &content[..0],
        ),
        Some(n) => (
            "206 Partial Content",
            format!("Content-Range: bytes {n}-{}/{len}\r\n", len - 1),
            &content[n..],
        ),
    };
    let sent = &part[..cut.unwrap_or(part.len()).min(part.len())];
    let _ = write!(
        s,
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n",
        part.len()
    );
    let _ = s.write_all(sent);
    let _ = s.flush();
}

/// Records every progress event of a pull.
#[derive(Default)]
struct Recorder(Mutex<Vec<Event>>);

impl Progress for Recorder {
    fn event(&self, e: Event) {
        self.0.lock().unwrap().push(e);
    }
}

impl Recorder {
    /// The bytes moved, in order: `(done, total)`.
    fn updates(&self) -> Vec<(u64, Option<u64>)> {
        let events = self.0.lock().unwrap();
        let moved = events.iter().filter_map(|e| match e {
            Event::Work(Work {
                kind: "download",
                action: Action::Moved { done, total },
                ..
            }) => Some((*done, *total)),
            _ => None,
        });
        moved.collect()
    }

    fn notes(&self) -> Vec<String> {
        let events = self.0.lock().unwrap();
        let notes = events.iter().filter_map(|e| match e {
            Event::Note(text) => Some(text.clone()),
            _ => None,
        });
        notes.collect()
    }

    /// The action of the last event, which ends the download.
    fn last_action(&self) -> Option<Action> {
        match self.0.lock().unwrap().last() {
            Some(Event::Work(w)) => Some(w.action),
            _ => None,
        }
    }
}

/// A real qcow2 file to serve, and a cache whose image "x" points at `url` and pins its sum.
fn served_image(dir: &Path) -> (Vec<u8>, String) {
    let file = qemu_img(dir, "served.qcow2", "qcow2", "8G", &[]);
    let body = std::fs::read(&file).unwrap();
    assert!(body.len() > 100_000, "the test needs a body of some size");
    (body, sha256_file(&file).unwrap())
}

fn range_of(head: &str) -> Option<String> {
    head.lines()
        .find(|l| l.to_ascii_lowercase().starts_with("range:"))
        .map(|l| l[6..].trim().to_string())
}

#[test]
fn pull_resumes_after_a_cut_connection_with_a_range_request() {
    let tmp = tempfile::tempdir().unwrap();
    let (body, sum) = served_image(tmp.path());
    let server = Server::start(body.clone(), vec![Reply::CutAfter(50_000), Reply::Honest]);
    let root = tmp.path().join("cache");
    let c = cache(
        &root,
        vec![image("x", Some(&server.url), Some(&sum), 8 * GIB)],
    );
    let rec = Recorder::default();

    let path = c.pull("x", &rec).unwrap();

    let heads = server.heads();
    assert_eq!(heads.len(), 2, "{heads:?}");
    assert_eq!(range_of(&heads[0]), None);
    assert_eq!(range_of(&heads[1]).as_deref(), Some("bytes=50000-"));
    assert_eq!(std::fs::read(&path).unwrap(), body);
    assert!(!c.partial_path("x").exists());
    assert!(c.list().unwrap()[0].verified);
    let total = body.len() as u64;
    assert!(
        rec.updates().windows(2).all(|w| w[0].0 <= w[1].0),
        "{:?}",
        rec.updates()
    );
    assert!(rec.updates().iter().all(|u| u.1 == Some(total)));
    assert_eq!(rec.updates().last(), Some(&(total, Some(total))));
    assert!(rec.updates().contains(&(50_000, Some(total))));
    assert_eq!(rec.last_action(), Some(Action::Done), "the pull ends done");
}

#[test]
fn pull_resumes_the_partial_file_of_an_earlier_run() {
    let tmp = tempfile::tempdir().unwrap();
    let (body, sum) = served_image(tmp.path());
    let server = Server::start(body.clone(), vec![Reply::Honest]);
    let c = cache(
        tmp.path(),
        vec![image("x", Some(&server.url), Some(&sum), 8 * GIB)],
    );
    std::fs::create_dir_all(tmp.path().join("images")).unwrap();
    std::fs::write(c.partial_path("x"), &body[..1000]).unwrap();
    let rec = Recorder::default();

    c.pull("x", &rec).unwrap();

    let heads = server.heads();
    assert_eq!(heads.len(), 1, "{heads:?}");
    assert_eq!(range_of(&heads[0]).as_deref(), Some("bytes=1000-"));
    assert_eq!(rec.updates().first().map(|u| u.0), Some(1000));
    assert_eq!(std::fs::read(c.path_for("x").unwrap()).unwrap(), body);

    let again = Recorder::default();
    c.pull("x", &again).unwrap();
    assert_eq!(
        server.heads().len(),
        1,
        "a verified image is not downloaded again"
    );
}

#[test]
fn pull_starts_over_when_the_server_ignores_range() {
    let tmp = tempfile::tempdir().unwrap();
    let (body, sum) = served_image(tmp.path());
    let server = Server::start(body.clone(), vec![Reply::IgnoreRange]);
    let c = cache(
        tmp.path(),
        vec![image("x", Some(&server.url), Some(&sum), 8 * GIB)],
    );
    std::fs::create_dir_all(tmp.path().join("images")).unwrap();
    std::fs::write(c.partial_path("x"), vec![0xee; 1000]).unwrap();
    let rec = Recorder::default();

    let path = c.pull("x", &rec).unwrap();

    let heads = server.heads();
    assert_eq!(range_of(&heads[0]).as_deref(), Some("bytes=1000-"));
    assert_eq!(
        std::fs::read(path).unwrap(),
        body,
        "the junk prefix was dropped"
    );
    assert!(
        rec.notes().iter().any(|n| n.contains("ignored the resume")),
        "{:?}",
        rec.notes()
    );
    assert_eq!(rec.updates().first().map(|u| u.0), Some(0));
}

#[test]
fn pull_deletes_a_corrupt_download_and_names_both_sums() {
    let tmp = tempfile::tempdir().unwrap();
    let (body, sum) = served_image(tmp.path());
    let mut other = body.clone();
    other[1000] ^= 1;
    let other_sum = {
        let p = tmp.path().join("other");
        std::fs::write(&p, &other).unwrap();
        sha256_file(&p).unwrap()
    };
    let server = Server::start(body, vec![Reply::Content(other)]);
    let c = cache(
        tmp.path(),
        vec![image("x", Some(&server.url), Some(&sum), 8 * GIB)],
    );

    let rec = Recorder::default();
    let err = c.pull("x", &rec).unwrap_err();

    assert!(matches!(err, CacheError::DownloadCorrupt { .. }), "{err:?}");
    assert_eq!(
        rec.last_action(),
        Some(Action::Failed),
        "the pull ends failed"
    );
    let msg = err.to_string();
    assert!(msg.contains(&sum) && msg.contains(&other_sum), "{msg}");
    assert!(msg.contains("deleted") && msg.contains(".part"), "{msg}");
    assert!(!c.partial_path("x").exists());
    assert!(
        cache_files(tmp.path()).is_empty(),
        "{:?}",
        cache_files(tmp.path())
    );
}

#[test]
fn pull_errors_say_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    let c = cache(tmp.path(), vec![image("built", None, None, GIB)]);
    let msg = c
        .pull("built", &Recorder::default())
        .unwrap_err()
        .to_string();
    assert_eq!(
        msg,
        "image built has no download url: build it with `lab image build built`"
    );

    let server = Server::start(Vec::new(), vec![Reply::Silent(Duration::from_secs(3))]);
    let mut c = cache(tmp.path(), vec![image("x", Some(&server.url), None, GIB)]);
    c.timeouts = Timeouts {
        connect: Duration::from_secs(2),
        read: Duration::from_millis(500),
    };
    let started = Instant::now();
    let err = c.pull("x", &Recorder::default()).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the read timeout applies"
    );
    assert!(matches!(err, CacheError::Download { .. }), "{err:?}");
    assert!(
        err.to_string().contains("run `lab image pull x` again"),
        "{err}"
    );
}

#[test]
fn pull_accepts_a_partial_file_that_is_already_complete() {
    let tmp = tempfile::tempdir().unwrap();
    let (body, sum) = served_image(tmp.path());
    let server = Server::start(body.clone(), vec![Reply::Honest]);
    let c = cache(
        tmp.path(),
        vec![image("x", Some(&server.url), Some(&sum), 8 * GIB)],
    );
    std::fs::create_dir_all(tmp.path().join("images")).unwrap();
    std::fs::write(c.partial_path("x"), &body).unwrap();

    let path = c.pull("x", &Recorder::default()).unwrap();

    let heads = server.heads();
    assert_eq!(heads.len(), 1, "{heads:?}");
    let want = format!("bytes={}-", body.len());
    assert_eq!(
        range_of(&heads[0]),
        Some(want),
        "answered 416: nothing left"
    );
    assert_eq!(std::fs::read(path).unwrap(), body);
}
