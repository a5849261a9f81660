//! `url:` sources: a file fetched over HTTP(S) once, checked against its pinned SHA-256 and
//! kept in the workspace's download cache under that hash.
//!
//! The transfer goes to `<cache>/sha256/<hex>.partial`; an interrupted transfer (dropped
//! connection, server error, cancelled run) keeps it, and the next attempt asks only for the
//! missing bytes with an HTTP `Range` request. Only a complete file whose hash matches the pin
//! is renamed to `<cache>/sha256/<hex>`, so what the cache holds is always verified; a
//! mismatch deletes the partial file. Later runs (and other stages or pipelines pinning the
//! same hash) use the cached file without any request.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::header::{CONTENT_RANGE, RANGE};
use reqwest::StatusCode;
use sha2::{Digest, Sha256};

use crate::kinds::data::error::DataError;

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// Wait before the second attempt; doubled for each later one.
    pub first_backoff: Duration,
    /// Longest wait for a connection, the response, or any one read.
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            first_backoff: Duration::from_millis(250),
            timeout: Duration::from_secs(60),
        }
    }
}

pub struct Request<'a> {
    pub url: &'a str,
    /// 64 hex digits (validated with the manifest).
    pub sha256: &'a str,
    /// The download cache directory.
    pub cache: &'a Path,
    pub policy: RetryPolicy,
}

/// An attempt's failure: worth another attempt, or not.
enum Failure {
    Retry(String),
    Fatal(DataError),
}

/// The cached file for `req`, downloading it first if the cache lacks it.
pub fn fetch(
    req: &Request,
    progress: &dyn Fn(u64, Option<u64>),
    cancelled: &dyn Fn() -> bool,
) -> Result<PathBuf, DataError> {
    let expected = req.sha256.to_ascii_lowercase();
    let dir = req.cache.join("sha256");
    let done = dir.join(&expected);
    if done.is_file() {
        return Ok(done);
    }
    let io = |what: &str, path: &Path, e: std::io::Error| DataError::Download {
        url: req.url.to_string(),
        message: format!("{what} {}: {e}", path.display()),
    };
    std::fs::create_dir_all(&dir).map_err(|e| io("creating", &dir, e))?;
    let partial = dir.join(format!("{expected}.partial"));
    let client = reqwest::blocking::Client::builder()
        .connect_timeout(req.policy.timeout)
        .timeout(req.policy.timeout)
        .user_agent(concat!("binarylm/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| DataError::Download {
            url: req.url.to_string(),
            message: format!("setting up the HTTP client: {e}"),
        })?;
    let mut attempt = 1;
    loop {
        if cancelled() {
            return Err(DataError::Cancelled);
        }
        match attempt_once(&client, req.url, &partial, progress, cancelled) {
            Ok(()) => break,
            Err(Failure::Fatal(e)) => return Err(e),
            Err(Failure::Retry(message)) => {
                if attempt >= req.policy.attempts {
                    return Err(DataError::Download {
                        url: req.url.to_string(),
                        message: format!(
                            "{message} (gave up after {attempt} attempts; the {} bytes received are kept and the next run resumes from there)",
                            partial.metadata().map_or(0, |m| m.len())
                        ),
                    });
                }
                std::thread::sleep(req.policy.first_backoff * 2u32.pow(attempt - 1));
                attempt += 1;
            }
        }
    }
    let actual = sha256_of(&partial).map_err(|e| io("reading", &partial, e))?;
    if actual != expected {
        // Never keep what does not match: a later run must not trust it, nor resume it.
        let _ = std::fs::remove_file(&partial);
        return Err(DataError::Sha256Mismatch {
            url: req.url.to_string(),
            expected,
            actual,
        });
    }
    std::fs::rename(&partial, &done).map_err(|e| io("renaming", &partial, e))?;
    Ok(done)
}

/// One request: resumes `partial` if it has bytes, appends what arrives. `Ok` once the
/// server's announced length (if any) is all there.
fn attempt_once(
    client: &reqwest::blocking::Client,
    url: &str,
    partial: &Path,
    progress: &dyn Fn(u64, Option<u64>),
    cancelled: &dyn Fn() -> bool,
) -> Result<(), Failure> {
    let fatal_io = |what: &str, e: std::io::Error| {
        Failure::Fatal(DataError::Download {
            url: url.to_string(),
            message: format!("{what} {}: {e}", partial.display()),
        })
    };
    let have = partial.metadata().map_or(0, |m| m.len());
    let mut request = client.get(url);
    if have > 0 {
        request = request.header(RANGE, format!("bytes={have}-"));
    }
    let mut response = request
        .send()
        .map_err(|e| Failure::Retry(format!("request failed: {}", error_chain(&e))))?;
    let status = response.status();
    let start = match status {
        StatusCode::PARTIAL_CONTENT if have > 0 => {
            let from = response
                .headers()
                .get(CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(range_start);
            if from != Some(have) {
                // Not the bytes we asked for: start over rather than splice wrong data.
                let _ = std::fs::remove_file(partial);
                return Err(Failure::Retry(format!(
                    "the server resumed at {from:?}, not at byte {have}; starting over"
                )));
            }
            have
        }
        s if s.is_success() => 0,
        StatusCode::RANGE_NOT_SATISFIABLE => {
            let _ = std::fs::remove_file(partial);
            return Err(Failure::Retry(
                "the server cannot resume the partial download; starting over".to_string(),
            ));
        }
        s if s.is_server_error()
            || s == StatusCode::TOO_MANY_REQUESTS
            || s == StatusCode::REQUEST_TIMEOUT =>
        {
            return Err(Failure::Retry(format!("the server answered {s}")));
        }
        s => {
            return Err(Failure::Fatal(DataError::Download {
                url: url.to_string(),
                message: format!("the server answered {s} (hint: check the address)"),
            }))
        }
    };
    let total = response.content_length().map(|n| n + start);
    let mut file = if start > 0 {
        OpenOptions::new().append(true).open(partial)
    } else {
        File::create(partial)
    }
    .map_err(|e| fatal_io("opening", e))?;
    let mut pos = start;
    let mut buf = vec![0u8; 256 << 10];
    loop {
        if cancelled() {
            let _ = file.flush();
            return Err(Failure::Fatal(DataError::Cancelled));
        }
        let n = match response.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                return Err(Failure::Retry(format!(
                    "the transfer broke off after {pos} bytes: {e}"
                )))
            }
        };
        file.write_all(&buf[..n])
            .map_err(|e| fatal_io("writing", e))?;
        pos += n as u64;
        progress(pos, total);
    }
    file.sync_all().map_err(|e| fatal_io("syncing", e))?;
    if let Some(total) = total.filter(|t| pos < *t) {
        return Err(Failure::Retry(format!(
            "the connection closed after {pos} of {total} bytes"
        )));
    }
    Ok(())
}

/// `bytes 100-199/200` → 100.
fn range_start(v: &str) -> Option<u64> {
    v.strip_prefix("bytes ")?
        .split('-')
        .next()?
        .trim()
        .parse()
        .ok()
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        cur = inner.source();
    }
    s
}

/// Lowercase hex SHA-256 of a file.
pub fn sha256_of(path: &Path) -> std::io::Result<String> {
    let mut f = File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::kinds::data::testing::{sha256_hex, Behaviour, Server};

    fn request<'a>(url: &'a str, sha: &'a str, cache: &'a Path) -> Request<'a> {
        Request {
            url,
            sha256: sha,
            cache,
            policy: RetryPolicy {
                attempts: 3,
                first_backoff: Duration::from_millis(10),
                timeout: Duration::from_secs(10),
            },
        }
    }

    fn body() -> Vec<u8> {
        (0..200_000u32)
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .collect()
    }

    #[test]
    fn downloads_once_then_serves_from_the_cache() {
        let data = body();
        let server = Server::start(data.clone(), Behaviour::Normal);
        let cache = tempfile::tempdir().expect("tmp");
        let sha = sha256_hex(&data);
        let url = server.url("/corpus.txt");
        let seen = std::cell::Cell::new(0u64);
        let got = fetch(
            &request(&url, &sha, cache.path()),
            &|n, _| seen.set(n),
            &|| false,
        )
        .expect("fetch");
        assert_eq!(std::fs::read(&got).expect("read"), data);
        assert_eq!(got, cache.path().join("sha256").join(&sha));
        assert_eq!(seen.get(), data.len() as u64, "progress reached the end");
        assert_eq!(server.requests(), 1);
        let again =
            fetch(&request(&url, &sha, cache.path()), &|_, _| {}, &|| false).expect("cached");
        assert_eq!(again, got);
        assert_eq!(server.requests(), 1, "the second fetch made no request");
    }

    #[test]
    fn a_wrong_hash_is_an_error_and_nothing_is_kept() {
        let data = body();
        let server = Server::start(data, Behaviour::Normal);
        let cache = tempfile::tempdir().expect("tmp");
        let wrong = "0".repeat(64);
        let url = server.url("/corpus.txt");
        let err = fetch(&request(&url, &wrong, cache.path()), &|_, _| {}, &|| false)
            .expect_err("mismatch");
        assert!(matches!(err, DataError::Sha256Mismatch { .. }), "{err}");
        assert!(err.to_string().contains(&wrong));
        let left: Vec<_> = std::fs::read_dir(cache.path().join("sha256"))
            .expect("dir")
            .collect();
        assert!(left.is_empty(), "kept {left:?}");
    }

    #[test]
    fn a_truncated_transfer_resumes_with_a_range_request() {
        let data = body();
        let server = Server::start(data.clone(), Behaviour::TruncateFirst(100_000));
        let cache = tempfile::tempdir().expect("tmp");
        let sha = sha256_hex(&data);
        let url = server.url("/corpus.txt");
        let got = fetch(&request(&url, &sha, cache.path()), &|_, _| {}, &|| false).expect("fetch");
        assert_eq!(std::fs::read(got).expect("read"), data);
        assert_eq!(server.requests(), 2);
        assert_eq!(server.ranges(), [None, Some(100_000)]);
    }

    #[test]
    fn server_errors_are_retried_then_reported() {
        let data = body();
        let sha = sha256_hex(&data);
        let cache = tempfile::tempdir().expect("tmp");
        // Two failures, then success: retried.
        let flaky = Server::start(data.clone(), Behaviour::FailFirst(2));
        let url = flaky.url("/corpus.txt");
        fetch(&request(&url, &sha, cache.path()), &|_, _| {}, &|| false).expect("third try");
        assert_eq!(flaky.requests(), 3);
        // Always failing: a clear error after the allowed attempts.
        let cache = tempfile::tempdir().expect("tmp");
        let down = Server::start(data, Behaviour::FailFirst(usize::MAX));
        let url = down.url("/corpus.txt");
        let err = fetch(&request(&url, &sha, cache.path()), &|_, _| {}, &|| false)
            .expect_err("gives up")
            .to_string();
        assert!(err.contains("500") && err.contains("3 attempts"), "{err}");
        assert_eq!(down.requests(), 3);
        // Not found is not retried.
        let missing = Server::start(Vec::new(), Behaviour::NotFound);
        let url = missing.url("/nothing");
        let err = fetch(&request(&url, &sha, cache.path()), &|_, _| {}, &|| false)
            .expect_err("404")
            .to_string();
        assert!(err.contains("404"), "{err}");
        assert_eq!(missing.requests(), 1);
    }

    #[test]
    fn content_range_start_is_parsed() {
        assert_eq!(range_start("bytes 100-199/200"), Some(100));
        assert_eq!(range_start("bytes */200"), None);
    }
}
