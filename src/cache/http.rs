//! The resumable download of a catalogue image: requests with `Range` after a cut
//! connection, the body streamed into the partial file with progress, the sha256 and the
//! image checked before the file is moved into place.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::error::io;
use super::import::check_image;
use super::resume::{ResumePlan, range_header, resume_plan};
use super::{Cache, CacheError, metadata, remove_file, sha256_file};
use crate::progress::{Action, Event, Progress, Work};

/// How long a download may wait: to connect, and for each read (headers or body).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// To establish the connection (TLS handshake included).
    pub connect: Duration,
    /// For the response headers, and for each read of the body.
    pub read: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(30),
            read: Duration::from_secs(60),
        }
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
}

impl Cache {
    /// Downloads image `name` from its url into the cache, resuming an interrupted download,
    /// checking the sha256 before the file is moved into place (a corrupt download is deleted).
    /// An image already cached and verified is not downloaded again.
    ///
    /// Progress: `download NAME` moved (`done` bytes on disk of `total` when the server tells;
    /// `done` restarts from 0 when a server ignores a resume request), then done or failed;
    /// notes for resumes and restarts.
    pub fn pull(&self, name: &str, progress: &dyn Progress) -> Result<PathBuf, CacheError> {
        let start = Instant::now();
        let pulled = self.pull_verified(name, progress, start);
        let action = if pulled.is_ok() {
            Action::Done
        } else {
            Action::Failed
        };
        progress.event(Work::since(KIND, name, action, start).into());
        pulled
    }

    fn pull_verified(
        &self,
        name: &str,
        progress: &dyn Progress,
        start: Instant,
    ) -> Result<PathBuf, CacheError> {
        let image = self.image(name)?.clone();
        let Some(url) = image.url.clone() else {
            return Err(CacheError::NoUrl {
                name: name.to_string(),
            });
        };
        if let Ok(path) = self.path_for(name) {
            progress.event(Event::Note(format!("{name}: already cached and verified")));
            return Ok(path);
        }
        self.images_dir()?;
        let part = self.partial_path(name);
        let dl = Download {
            name,
            url: &url,
            part: &part,
            agent: agent(&url, self.timeouts),
            progress,
            start,
        };
        dl.run()?;
        let actual = sha256_file(&part)?;
        if let Some(expected) = &image.sha256
            && !expected.eq_ignore_ascii_case(&actual)
        {
            remove_file(&part)?;
            return Err(CacheError::DownloadCorrupt {
                name: name.to_string(),
                url,
                path: part,
                expected: expected.to_ascii_lowercase(),
                actual,
            });
        }
        if let Err(e) = check_image(&image, &part) {
            remove_file(&part)?;
            return Err(e);
        }
        File::open(&part)
            .and_then(|f| f.sync_all())
            .map_err(io("sync", &part))?;
        self.install(name, &actual, |path| {
            fs::rename(&part, path).map_err(io("rename", path))
        })
    }
}

/// The HTTP client: no redirect limit surprises, statuses handled by [`resume_plan`], and
/// never a proxy for a loopback address.
fn agent(url: &str, timeouts: Timeouts) -> ureq::Agent {
    let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
        .iter()
        .any(|p| url.starts_with(p));
    let mut config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(timeouts.connect))
        .timeout_recv_response(Some(timeouts.read))
        .timeout_per_read(Some(timeouts.read));
    if loopback {
        config = config.proxy(None);
    }
    ureq::Agent::new_with_config(config.build())
}

/// How many requests one pull makes while each one brings new bytes.
const ATTEMPTS: usize = 5;

/// The kind of a download's progress events.
const KIND: &str = "download";

/// One download into a partial file.
struct Download<'a> {
    name: &'a str,
    url: &'a str,
    part: &'a Path,
    agent: ureq::Agent,
    progress: &'a dyn Progress,
    /// When the pull began.
    start: Instant,
}

/// Why one request ended early: a transport error may be resumed, a file error may not.
enum Stop {
    Transport(String, u64),
    Fatal(Box<CacheError>),
}

fn fatal(e: CacheError) -> Stop {
    Stop::Fatal(Box::new(e))
}

impl Download<'_> {
    fn note(&self, text: &str) {
        let note = format!("{}: {text}", self.name);
        self.progress.event(Event::Note(note));
    }

    fn moved(&self, done: u64, total: Option<u64>) {
        let moved = Action::Moved { done, total };
        let work = Work::since(KIND, self.name, moved, self.start);
        self.progress.event(work.into());
    }

    /// Requests until the partial file is complete; retries while each attempt made progress.
    fn run(&self) -> Result<(), CacheError> {
        let mut detail = String::new();
        for _ in 0..ATTEMPTS {
            match self.once(true) {
                Ok(()) => return Ok(()),
                Err(Stop::Fatal(e)) => return Err(*e),
                Err(Stop::Transport(d, received)) => {
                    detail = d;
                    if received == 0 {
                        break;
                    }
                    self.note("connection lost; resuming");
                }
            }
        }
        Err(CacheError::Download {
            name: self.name.to_string(),
            url: self.url.to_string(),
            detail,
        })
    }

    /// One request, from the end of the partial file.
    fn once(&self, may_start_over: bool) -> Result<(), Stop> {
        let offset = metadata(self.part).map_err(fatal)?.map_or(0, |m| m.len());
        let mut request = self.agent.get(self.url);
        if offset > 0 {
            request = request.header("Range", range_header(offset));
            self.note(&format!("resuming after {}", mib(offset)));
        }
        let response = request
            .call()
            .map_err(|e| Stop::Transport(e.to_string(), 0))?;
        let content_range = response
            .headers()
            .get("content-range")
            .and_then(|v| v.to_str().ok());
        let length = response.body().content_length();
        let plan = resume_plan(offset, response.status().as_u16(), content_range, length);
        let (append, total) = match plan {
            ResumePlan::Append { total } => (true, total),
            ResumePlan::Restart { total } => (false, total),
            ResumePlan::Complete => return Ok(()),
            ResumePlan::StartOver if may_start_over => {
                remove_file(self.part).map_err(fatal)?;
                self.note("the server refused the resume; starting over");
                return self.once(false);
            }
            ResumePlan::StartOver | ResumePlan::Fail(_) => {
                let status = response.status().as_u16();
                return Err(fatal(CacheError::Http {
                    name: self.name.to_string(),
                    url: self.url.to_string(),
                    status,
                }));
            }
        };
        if !append && offset > 0 {
            self.note("the server ignored the resume request; starting over");
        }
        let start = if append { offset } else { 0 };
        let body = response.into_body().into_reader();
        self.write(body, start, total)
    }

    /// Streams `body` into the partial file (appending after `start` bytes, or from 0).
    fn write(&self, mut body: impl Read, start: u64, total: Option<u64>) -> Result<(), Stop> {
        let fatal = |a| move |e| Stop::Fatal(Box::new(io(a, self.part)(e)));
        let mut file = OpenOptions::new()
            .create(true)
            .write(true)
            .append(start > 0)
            .truncate(start == 0)
            .open(self.part)
            .map_err(fatal("open"))?;
        let mut done = start;
        self.moved(done, total);
        let mut buf = vec![0u8; 256 << 10];
        loop {
            if crate::interrupt::interrupted() {
                let _ = file.sync_all();
                return Err(Stop::Fatal(Box::new(CacheError::Interrupted(format!(
                    "the download stopped after {done} bytes; `lab image pull` resumes it"
                )))));
            }
            let n = match body.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Stop::Transport(e.to_string(), done - start)),
            };
            file.write_all(&buf[..n]).map_err(fatal("write"))?;
            done += n as u64;
            self.moved(done, total);
        }
        match total {
            Some(t) if t != done => Err(Stop::Transport(
                format!("the server sent {done} of {t} bytes"),
                done - start,
            )),
            _ => file.sync_all().map_err(fatal("sync")),
        }
    }
}
