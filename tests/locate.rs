//! The vmlinux finds itself (src/debuginfo/): from the places distributions
//! install it, and from a real debuginfod server (elfutils' `debuginfod`,
//! Debian package `debuginfod`) started on loopback, serving a fixture
//! vmlinux. What kpeek prints with the vmlinux it found must equal what it
//! prints with `--vmlinux`; a server or a file holding another build must
//! not be taken.
//!
//! Every child process runs under a deadline; the server is killed when its
//! test ends, pass or fail.

mod common;

use std::ffi::{OsStr, OsString};

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Fixture;
use kpeek::locate::{Origin, Search, Wanted};

const DEADLINE: Duration = Duration::from_secs(180);

/// The GNU build ID of an ELF file.
fn build_id(path: &Path) -> Vec<u8> {
    use object::Object;
    let data = std::fs::read(path).expect("read the vmlinux");
    let elf = object::File::parse(&*data).expect("ELF");
    elf.build_id().expect("notes").expect("a build ID").to_vec()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Arguments of mixed kinds (strings, paths) as one list.
fn argv(parts: &[&dyn AsRef<OsStr>]) -> Vec<OsString> {
    parts.iter().map(|p| p.as_ref().to_owned()).collect()
}

/// Run kpeek with these arguments and environment; (ok, stdout, stderr).
fn kpeek(args: &[OsString], env: &[(&str, &OsStr)]) -> (bool, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kpeek"));
    cmd.args(args)
        .env_remove("DEBUGINFOD_URLS")
        .env_remove("DEBUGINFOD_CACHE_PATH");
    for (k, v) in env {
        cmd.env(k, v);
    }
    common::run_to_end(&mut cmd, DEADLINE)
}

/// A real `debuginfod` serving one directory, killed on drop.
struct Debuginfod {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Debuginfod {
    /// Serve `vmlinux` (hard-linked, or copied, into a fresh directory).
    /// Returns once the server answers for `vmlinux`'s build ID.
    fn serve(vmlinux: &Path) -> Debuginfod {
        let which = Command::new("debuginfod").arg("--version").output();
        assert!(
            which.is_ok_and(|o| o.status.success()),
            "the debuginfod server is not installed (Debian package `debuginfod`; .ci/run installs it)"
        );
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
        let served = dir.path().join("files");
        std::fs::create_dir(&served).expect("mkdir");
        let copy = served.join("vmlinux");
        if std::fs::hard_link(vmlinux, &copy).is_err() {
            std::fs::copy(vmlinux, &copy).expect("copy the vmlinux");
        }
        // A free port: bind to 0, read it, let go (debuginfod binds it next).
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new("debuginfod")
            .arg("-F")
            .args(["-p", &port.to_string()])
            .arg("-d")
            .arg(dir.path().join("db.sqlite"))
            .args(["-t", "0", "-g", "0", "--disable-source-scan"])
            .arg(&served)
            .env_remove("DEBUGINFOD_URLS")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("debuginfod starts");
        let mut server = Debuginfod {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        };
        // Ready when it has scanned the file: its build ID answers 200.
        let path = format!("/buildid/{}/debuginfo", hex(&build_id(vmlinux)));
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("debuginfod exited: {status}");
            }
            if get_status(port, &path) == Some(200) {
                break;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "debuginfod did not index {} within {DEADLINE:?}",
                vmlinux.display()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        eprintln!(
            "debuginfod on port {port} indexed {} in {:?}",
            vmlinux.display(),
            start.elapsed()
        );
        server
    }
}

impl Drop for Debuginfod {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The status of `GET path` on 127.0.0.1:port, if it answers (debuginfod
/// refuses HEAD); the body is left unread.
fn get_status(port: u16, path: &str) -> Option<u16> {
    use std::io::{BufRead, Write};
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut line = String::new();
    std::io::BufReader::new(s).read_line(&mut line).ok()?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// elfutils' own client (`debuginfod-find`) with this cache: the path it
/// prints for a build ID.
fn debuginfod_find(urls: &str, cache: &Path, id: &str) -> String {
    let out = Command::new("debuginfod-find")
        .args(["debuginfo", id])
        .env("DEBUGINFOD_URLS", urls)
        .env("DEBUGINFOD_CACHE_PATH", cache)
        .env("DEBUGINFOD_PROGRESS", "")
        .output()
        .expect("debuginfod-find (Debian package debuginfod)");
    assert!(
        out.status.success(),
        "debuginfod-find: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn row<'a>(info: &'a str, key: &str) -> &'a str {
    info.lines()
        .find_map(|l| l.trim_start().strip_prefix(key)?.strip_prefix(": "))
        .unwrap_or_else(|| panic!("no `{key}` in kpeek info:\n{info}"))
}

/// With `$DEBUGINFOD_URLS` and an empty cache, a dump with no --vmlinux
/// gets its vmlinux from the server; then from the cache, with the server
/// gone; and the listings equal those with --vmlinux.
#[test]
fn debuginfod_serves_the_vmlinux_and_the_cache_keeps_it() {
    let fx = Fixture::load("linux-6.1");
    let vmlinux = fx.vmlinux();
    let core = fx.boot("kdump").dir.join("vmcore.kdump");
    let id = hex(&build_id(&vmlinux));
    let server = Debuginfod::serve(&vmlinux);
    let url = server.url.clone();
    let cache = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("cache dir");
    let env: [(&str, &OsStr); 2] = [
        ("DEBUGINFOD_URLS", url.as_ref()),
        ("DEBUGINFOD_CACHE_PATH", cache.path().as_os_str()),
    ];

    let t = Instant::now();
    let (ok, info, err) = kpeek(&argv(&[&"info", &"--core", &core]), &env);
    assert!(ok, "{err}");
    eprintln!("kpeek info, downloading the vmlinux: {:?}", t.elapsed());
    let cached = cache.path().join(&id).join("debuginfo");
    assert_eq!(
        row(&info, "vmlinux from"),
        format!(
            "debuginfod: {}/buildid/{id}/debuginfo (cached at {})",
            server.url,
            cached.display()
        )
    );
    assert_eq!(row(&info, "symbols"), "ELF .symtab (the vmlinux)");
    assert!(err.contains("kpeek: downloading "), "{err}");
    // The elfutils cache layout, the file whole.
    assert_eq!(
        std::fs::metadata(&cached).expect("cached").len(),
        std::fs::metadata(&vmlinux).expect("vmlinux").len()
    );

    // elfutils' own client finds kpeek's download in the cache (no server:
    // port 9 on loopback refuses).
    assert_eq!(
        debuginfod_find("http://127.0.0.1:9", cache.path(), &id),
        cached.display().to_string()
    );
    // And kpeek finds elfutils' download.
    let theirs = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("cache dir");
    let fetched = debuginfod_find(&server.url, theirs.path(), &id);
    let (ok, info, err) = kpeek(
        &argv(&[&"info", &"--core", &core]),
        &[
            ("DEBUGINFOD_URLS", "http://127.0.0.1:9".as_ref()),
            ("DEBUGINFOD_CACHE_PATH", theirs.path().as_os_str()),
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(
        row(&info, "vmlinux from"),
        format!("debuginfod cache: {fetched}")
    );

    // `ps` (from the cache now) equals `ps --vmlinux`.
    let given = argv(&[&"ps", &"--core", &core, &"--vmlinux", &vmlinux]);
    let (ok, want, err) = kpeek(&given, &[]);
    assert!(ok, "{err}");
    let (ok, have, err) = kpeek(&argv(&[&"ps", &"--core", &core]), &env);
    assert!(ok, "{err}");
    assert!(want.lines().count() > 50, "{want}");
    assert_eq!(have, want, "ps with the downloaded vmlinux");

    // The server gone: the cache alone.
    drop(server);
    let (ok, info, err) = kpeek(&argv(&[&"info", &"--core", &core]), &env);
    assert!(ok, "{err}");
    assert_eq!(
        row(&info, "vmlinux from"),
        format!("debuginfod cache: {}", cached.display())
    );
    let (ok, have, err) = kpeek(&argv(&[&"ps", &"--core", &core]), &env);
    assert!(ok, "{err}");
    assert_eq!(have, want, "ps with the cached vmlinux");
    assert!(!err.contains("downloading"), "{err}");

    // --no-debuginfod: neither server nor cache.
    let (ok, info, err) = kpeek(
        &argv(&[&"info", &"--no-debuginfod", &"--core", &core]),
        &env,
    );
    assert!(ok, "{err}");
    assert_eq!(row(&info, "vmlinux from"), "none: BTF + kallsyms");
}

/// A server holding another kernel's vmlinux (the 6.12 fixture) has nothing
/// for the 6.1 dump's build ID: kpeek says so and falls back to kallsyms
/// and BTF. A wrong file planted in the cache under the dump's build ID is
/// skipped with a note (and evicted), never used.
#[test]
fn debuginfod_with_the_wrong_build_is_not_used() {
    let fx = Fixture::load("linux-6.1");
    let other = Fixture::load("linux-6.12").vmlinux();
    let core = fx.boot("kdump").dir.join("vmcore.kdump");
    let id = hex(&build_id(&fx.vmlinux()));
    let server = Debuginfod::serve(&other);
    let cache = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("cache dir");
    let env: [(&str, &OsStr); 2] = [
        ("DEBUGINFOD_URLS", server.url.as_ref()),
        ("DEBUGINFOD_CACHE_PATH", cache.path().as_os_str()),
    ];
    let args = argv(&[&"info", &"--core", &core]);
    let (ok, info, err) = kpeek(&args, &env);
    assert!(ok, "{err}");
    assert_eq!(row(&info, "vmlinux from"), "none: BTF + kallsyms", "{err}");
    assert!(
        err.contains(&format!(
            "debuginfod has no debug file for build ID {id}: {}/buildid/{id}/debuginfo: HTTP 404",
            server.url
        )),
        "{err}"
    );
    assert!(err.contains("no matching vmlinux"), "{err}");
    // elfutils' negative cache: an empty file.
    let cached = cache.path().join(&id).join("debuginfo");
    assert_eq!(std::fs::metadata(&cached).expect("a miss").len(), 0);

    // The wrong kernel planted in the cache under the dump's build ID.
    std::fs::copy(&other, &cached).expect("plant");
    let (ok, info, err) = kpeek(&args, &env);
    assert!(ok, "{err}");
    assert_eq!(row(&info, "vmlinux from"), "none: BTF + kallsyms");
    let other_id = hex(&build_id(&other));
    assert!(
        err.contains(&format!("build ID {other_id}, not the dump's {id}")),
        "{err}"
    );
    assert!(!cached.exists(), "the wrong file is evicted");
}

/// The distribution paths, under a temporary root: a wrong build at the
/// first place is skipped with a note, the right one further down is
/// taken, by build ID (VMCOREINFO) and, for a dump without VMCOREINFO, by
/// the build ID in the kernel's own `.notes` and its banner.
#[test]
fn distro_paths_under_a_temporary_root() {
    let fx = Fixture::load("linux-6.1");
    let vmlinux = fx.vmlinux();
    let other = Fixture::load("linux-6.12").vmlinux();
    let core = fx.boot("kdump").dir.join("vmcore.kdump");
    let dump = kpeek::dump::Dump::open(&core).expect("dump");
    let release = dump
        .vmcoreinfo()
        .and_then(|v| v.osrelease())
        .expect("OSRELEASE")
        .to_owned();
    let root = tempfile::tempdir().expect("root");
    let place = |rel: &str, file: &Path| -> PathBuf {
        let p = root.path().join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::os::unix::fs::symlink(file, &p).expect("symlink");
        p
    };
    let wrong = place(&format!("usr/lib/debug/boot/vmlinux-{release}"), &other);
    let right = place(&format!("boot/vmlinux-{release}"), &vmlinux);
    let search = Search {
        roots: vec![root.path().to_path_buf()],
        debuginfod: None,
    };

    let id = build_id(&vmlinux);
    let outcome = search.vmlinux(
        &Wanted {
            build_id: Some(&id),
            release: Some(&release),
            banner: None,
        },
        &mut |_| {},
    );
    let (found, origin) = outcome.found.expect("found");
    assert_eq!(found, right);
    assert_eq!(
        origin,
        Origin::Found {
            path: right.display().to_string()
        }
    );
    assert_eq!(outcome.notes.len(), 1, "{:?}", outcome.notes);
    assert!(
        outcome.notes[0].starts_with(&format!("skipped {}: build ID ", wrong.display())),
        "{:?}",
        outcome.notes
    );

    // The dumps themselves: with VMCOREINFO, and without (QEMU's plain dump).
    let options = kpeek::kernel::OpenOptions::default();
    for (boot, file) in [("kdump", "vmcore.kdump"), ("qemu-plain", "vmcore.elf")] {
        let core = fx.boot(boot).dir.join(file);
        let opened =
            kpeek::locate::open_dump(&core, &options, &search, &mut |_| {}).expect("opens");
        assert_eq!(
            opened.origin,
            Origin::Found {
                path: right.display().to_string()
            },
            "{boot}: {:?}",
            opened.notes
        );
        assert_eq!(opened.program.debug.path(), right.as_path());
        assert_eq!(
            opened.program.located.layout.kaslr_offset,
            fx.boot(boot).kaslr_offset(),
            "{boot}"
        );
    }
    // The build ID read from the kernel's memory is the vmlinux's.
    let alone = kpeek::kernel::Program::open_without_vmlinux(
        &fx.boot("qemu-plain").dir.join("vmcore.elf"),
        &options,
    )
    .expect("opens alone");
    assert_eq!(kpeek::locate::image_build_id(&alone), Some(id));

    // A module's debug file, by its build ID: the other kernel's
    // kpeek_fixture.ko under the release is skipped, the build-ID link taken.
    let ko = fx.kernel_file("kpeek_fixture.ko");
    let ko_id = build_id(&ko);
    let other_ko = Fixture::load("linux-6.12").kernel_file("kpeek_fixture.ko");
    place(
        &format!("usr/lib/debug/lib/modules/{release}/kpeek_fixture.ko"),
        &other_ko,
    );
    let by_id = format!(
        "usr/lib/debug/.build-id/{}/{}.debug",
        &hex(&ko_id)[..2],
        &hex(&ko_id)[2..]
    );
    let outcome = search.module("kpeek_fixture", &ko_id, Some(&release), &mut |_| {});
    assert_eq!(outcome.found, None, "nothing at the build-ID link yet");
    assert_eq!(outcome.notes.len(), 1, "{:?}", outcome.notes);
    let linked = place(&by_id, &ko);
    let outcome = search.module("kpeek_fixture", &ko_id, Some(&release), &mut |_| {});
    assert_eq!(outcome.found.map(|f| f.0), Some(linked));

    // Nothing right under the root: no vmlinux, and the wrong one noted.
    std::fs::remove_file(&right).expect("rm");
    let opened = kpeek::locate::open_dump(&core, &options, &search, &mut |_| {}).expect("opens");
    assert_eq!(opened.origin, Origin::None);
    assert!(
        opened
            .notes
            .iter()
            .any(|n| n.contains(&wrong.display().to_string())),
        "{:?}",
        opened.notes
    );
}
