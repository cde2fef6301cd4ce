//! A debuginfod client: debug files by build ID over HTTP, kept in the
//! cache elfutils' own client (libdebuginfod) uses, so that GDB, drgn,
//! `eu-*`, systemd-coredump and kpeek download each file once.
//!
//! What is shared with elfutils (`debuginfod/debuginfod-client.c`):
//! - `$DEBUGINFOD_URLS`: server URLs separated by spaces; unset or empty
//!   means no server at all (and no cache access either);
//! - the request: `GET <url>/buildid/<lowercase hex>/debuginfo`
//!   (`<url>` without a trailing `/`);
//! - the cache directory: `$DEBUGINFOD_CACHE_PATH` if set and not empty,
//!   else `$HOME/.debuginfod_client_cache` if that exists (the old default),
//!   else `$XDG_CACHE_HOME/debuginfod_client`, else
//!   `$HOME/.cache/debuginfod_client`;
//! - a file is cached at `<cache>/<hex>/debuginfo`, written to a temporary
//!   `debuginfo.XXXXXX` beside it first and renamed, so that a reader never
//!   sees half a file;
//! - an empty `debuginfo` file records a miss (every server said 404): the
//!   servers are not asked again for `cache_miss_s` seconds (the number in
//!   `<cache>/cache_miss_s`, 600 by default).
//!
//! The client never prints: the download reports its progress through a
//! callback, and the caller draws (or not) a progress bar.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How long a miss is remembered when `<cache>/cache_miss_s` does not say.
const CACHE_MISS_DEFAULT_S: u64 = 600;

/// What a download reports as it goes.
#[derive(Clone, Copy, Debug)]
pub enum Progress<'a> {
    /// A server has the file: its URL and, if it said, the size.
    Start {
        /// The file's URL.
        url: &'a str,
        /// `Content-Length`, when the server sent one.
        total: Option<u64>,
    },
    /// This many bytes have arrived so far.
    Bytes(u64),
    /// The download ended (complete or not).
    Done,
}

/// A file the client found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fetched {
    /// Where it is: in the cache.
    pub path: PathBuf,
    /// The URL it was downloaded from; `None` if it was in the cache already.
    pub url: Option<String>,
}

/// A debuginfod client: servers and a cache directory.
#[derive(Clone, Debug)]
pub struct Client {
    urls: Vec<String>,
    cache: PathBuf,
    timeout: Duration,
}

/// The cache directory as elfutils' client chooses it, from these
/// variables (`get` reads one; tests hand in their own).
pub fn cache_dir_from(get: impl Fn(&str) -> Option<String>) -> PathBuf {
    let set = |name: &str| get(name).filter(|v| !v.is_empty());
    if let Some(dir) = set("DEBUGINFOD_CACHE_PATH") {
        return PathBuf::from(dir);
    }
    let home = PathBuf::from(set("HOME").unwrap_or_else(|| "/".into()));
    let old = home.join(".debuginfod_client_cache");
    if old.exists() {
        return old;
    }
    match set("XDG_CACHE_HOME") {
        Some(xdg) => PathBuf::from(xdg).join("debuginfod_client"),
        None => home.join(".cache").join("debuginfod_client"),
    }
}

/// A build ID as the URL and the cache name spell it: lowercase hex.
pub fn hex(build_id: &[u8]) -> String {
    build_id.iter().map(|b| format!("{b:02x}")).collect()
}

impl Client {
    /// The client `$DEBUGINFOD_URLS` describes, with the cache of
    /// [`cache_dir_from`]; `None` when no server is set.
    pub fn from_env() -> Option<Client> {
        let get = |name: &str| std::env::var(name).ok();
        let urls = get("DEBUGINFOD_URLS")?;
        let mut client = Client::new(&urls, cache_dir_from(get))?;
        // DEBUGINFOD_TIMEOUT: seconds without progress before giving up (elfutils: 90).
        if let Some(secs) = get("DEBUGINFOD_TIMEOUT").and_then(|s| s.trim().parse().ok()) {
            client.timeout = Duration::from_secs(secs);
        }
        Some(client)
    }

    /// A client of these servers (space-separated, as in
    /// `$DEBUGINFOD_URLS`) and this cache; `None` if `urls` names none.
    pub fn new(urls: &str, cache: PathBuf) -> Option<Client> {
        let mut list: Vec<String> = Vec::new();
        for url in urls.split_whitespace() {
            let url = url.trim_end_matches('/').to_owned();
            if !list.contains(&url) {
                list.push(url);
            }
        }
        if list.is_empty() {
            return None;
        }
        Some(Client {
            urls: list,
            cache,
            timeout: Duration::from_secs(90),
        })
    }

    /// The servers, in the order they are asked.
    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// The cache directory.
    pub fn cache(&self) -> &Path {
        &self.cache
    }

    /// Where the debug file of this build ID is (or would be) cached.
    pub fn cached_path(&self, build_id: &[u8]) -> PathBuf {
        self.cache.join(hex(build_id)).join("debuginfo")
    }

    /// The debug file with this build ID: from the cache, else from the
    /// first server that has it (downloaded into the cache). `Err` says
    /// why not, server by server.
    pub fn find_debuginfo(
        &self,
        build_id: &[u8],
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<Fetched, String> {
        if build_id.is_empty() {
            return Err("no build ID to ask for".into());
        }
        let target = self.cached_path(build_id);
        if let Some(hit) = self.cached(&target)? {
            return Ok(hit);
        }
        let id = hex(build_id);
        let mut why = Vec::new();
        let mut all_missing = true;
        for server in &self.urls {
            let url = format!("{server}/buildid/{id}/debuginfo");
            match self.download(&url, &target, progress) {
                Ok(()) => {
                    return Ok(Fetched {
                        path: target,
                        url: Some(url),
                    })
                }
                Err((missing, e)) => {
                    all_missing &= missing;
                    why.push(format!("{url}: {e}"));
                }
            }
        }
        if all_missing {
            // Remember the miss, as elfutils does (an empty file).
            if let Some(dir) = target.parent() {
                let _ = fs::create_dir_all(dir);
                let _ = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&target);
            }
        }
        Err(why.join("; "))
    }

    /// Forget a cached file (one that turned out not to be what was asked).
    pub fn evict(&self, build_id: &[u8]) {
        let _ = fs::remove_file(self.cached_path(build_id));
    }

    /// A cache hit; `Err` for a recent recorded miss; `None` to ask the servers.
    fn cached(&self, target: &Path) -> Result<Option<Fetched>, String> {
        let Ok(meta) = fs::metadata(target) else {
            return Ok(None);
        };
        if meta.len() > 0 {
            return Ok(Some(Fetched {
                path: target.to_path_buf(),
                url: None,
            }));
        }
        let miss_s = fs::read_to_string(self.cache.join("cache_miss_s"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(CACHE_MISS_DEFAULT_S);
        let age = meta
            .modified()
            .ok()
            .and_then(|m| SystemTime::now().duration_since(m).ok())
            .unwrap_or(Duration::MAX);
        if age.as_secs() <= miss_s {
            return Err(format!(
                "not found (a miss recorded {}s ago in {}; the servers are asked again after {miss_s}s)",
                age.as_secs(),
                target.display()
            ));
        }
        let _ = fs::remove_file(target);
        Ok(None)
    }

    /// Download `url` into `target`. `Err((true, _))`: the server does not
    /// have it (404); `Err((false, _))`: anything else.
    fn download(
        &self,
        url: &str,
        target: &Path,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<(), (bool, String)> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_recv_response(Some(self.timeout))
            .http_status_as_error(false)
            .build()
            .into();
        let response = agent.get(url).call().map_err(|e| (false, e.to_string()))?;
        let status = response.status().as_u16();
        if status != 200 {
            return Err((status == 404, format!("HTTP {status}")));
        }
        let total = response
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let dir = target.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(|e| (false, format!("{}: {e}", dir.display())))?;
        let tmp = dir.join(format!(
            "debuginfo.{}{:06}",
            std::process::id(),
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_micros())
        ));
        progress(Progress::Start { url, total });
        let copied = copy_body(response.into_body(), &tmp, progress);
        progress(Progress::Done);
        let result = copied.and_then(|n| match total {
            Some(t) if t != n => Err(format!("{n} bytes of {t}")),
            _ if n == 0 => Err("an empty file".into()),
            _ => fs::rename(&tmp, target).map_err(|e| format!("{}: {e}", target.display())),
        });
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result.map_err(|e| (false, e))
    }
}

/// Copy a response body to a new file; how many bytes.
fn copy_body(
    body: ureq::Body,
    to: &Path,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<u64, String> {
    let mut file = fs::File::create(to).map_err(|e| format!("{}: {e}", to.display()))?;
    let mut reader = body.into_with_config().limit(u64::MAX).reader();
    let mut buf = vec![0u8; 1 << 16];
    let mut done = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.to_string()),
        };
        file.write_all(&buf[..n])
            .map_err(|e| format!("{}: {e}", to.display()))?;
        done += n as u64;
        progress(Progress::Bytes(done));
    }
    file.sync_all()
        .map_err(|e| format!("{}: {e}", to.display()))?;
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn the_cache_directory_is_chosen_as_elfutils_chooses_it() {
        let home = tempfile::tempdir().expect("tempdir");
        let h = home.path().to_str().expect("utf-8");
        assert_eq!(
            cache_dir_from(env(&[("DEBUGINFOD_CACHE_PATH", "/c"), ("HOME", h)])),
            PathBuf::from("/c")
        );
        // An empty variable counts as unset.
        assert_eq!(
            cache_dir_from(env(&[
                ("DEBUGINFOD_CACHE_PATH", ""),
                ("XDG_CACHE_HOME", "/x"),
                ("HOME", h)
            ])),
            PathBuf::from("/x/debuginfod_client")
        );
        assert_eq!(
            cache_dir_from(env(&[("HOME", h)])),
            home.path().join(".cache/debuginfod_client")
        );
        // The old default, when it exists, wins over XDG.
        fs::create_dir(home.path().join(".debuginfod_client_cache")).expect("mkdir");
        assert_eq!(
            cache_dir_from(env(&[("XDG_CACHE_HOME", "/x"), ("HOME", h)])),
            home.path().join(".debuginfod_client_cache")
        );
    }

    #[test]
    fn urls_are_split_on_spaces_deduplicated_and_trimmed() {
        let c = Client::new(" http://a/  http://b:8002/ http://a ", "/c".into()).expect("urls");
        assert_eq!(c.urls(), ["http://a", "http://b:8002"]);
        assert!(Client::new("   ", "/c".into()).is_none());
        assert_eq!(
            c.cached_path(&[0xab, 0x01]),
            PathBuf::from("/c/ab01/debuginfo")
        );
    }

    #[test]
    fn a_recorded_miss_is_not_asked_again_and_an_old_one_is() {
        let cache = tempfile::tempdir().expect("tempdir");
        // A server that cannot be reached: port 9 on loopback (discard),
        // refused at once on a machine without it.
        let c = Client::new("http://127.0.0.1:9", cache.path().to_path_buf()).expect("url");
        let id = [1u8, 2, 3];
        let target = c.cached_path(&id);
        fs::create_dir_all(target.parent().expect("dir")).expect("mkdir");
        fs::File::create(&target).expect("empty file");
        let err = c.find_debuginfo(&id, &mut |_| {}).expect_err("a miss");
        assert!(err.contains("a miss recorded"), "{err}");
        // cache_miss_s 0: the miss has expired, the server is asked (and refuses).
        fs::write(cache.path().join("cache_miss_s"), "0").expect("write");
        std::thread::sleep(Duration::from_millis(1100));
        let err = c.find_debuginfo(&id, &mut |_| {}).expect_err("refused");
        assert!(
            err.contains("http://127.0.0.1:9/buildid/010203/debuginfo"),
            "{err}"
        );
        // A hit is a non-empty file, whatever the servers say.
        fs::write(&target, b"\x7fELF").expect("write");
        let hit = c.find_debuginfo(&id, &mut |_| {}).expect("hit");
        assert_eq!(
            hit,
            Fetched {
                path: target,
                url: None
            }
        );
    }
}
