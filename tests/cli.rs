//! The `kpeek` binary end to end: `info`, `read`, and what it does with bad
//! input (a clear message and a non-zero exit, never a panic).

mod common;

use std::process::Output;

use common::{run_kpeek, Fixture};

fn os(s: &str) -> &std::ffi::OsStr {
    s.as_ref()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn info_reports_what_the_guest_saw_for_every_dump() {
    for fixture in Fixture::all() {
        let vmlinux = fixture.vmlinux();
        for name in fixture.boot_names() {
            let boot = fixture.boot(&name);
            let truth = boot.truth();
            let release = truth.files["/proc/version"]
                .split_whitespace()
                .nth(2)
                .expect("release")
                .to_owned();
            for (path, _) in boot.dumps() {
                let out = run_kpeek([
                    os("info"),
                    os("--format"),
                    os("json"),
                    os("--vmlinux"),
                    vmlinux.as_os_str(),
                    os("--core"),
                    path.as_os_str(),
                ]);
                assert!(out.status.success(), "{}: {}", path.display(), stderr(&out));
                let info: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
                let what = path.display();
                assert_eq!(info["release"], release.as_str(), "{what}");
                assert_eq!(
                    info["kaslr_offset"],
                    format!("{:#x}", boot.kaslr_offset()).as_str(),
                    "{what}"
                );
                assert_eq!(info["cpus"].as_array().expect("cpus").len(), 2, "{what}");
                assert!(info["phys_base"].is_string(), "{what}");
                if let Some((_, console_pid)) = common::console_panic(&boot) {
                    // A genuine crash: CRASHTIME, and the CPU that ran the panic
                    // is in the crash code, running the task the console says
                    // panicked (for the sysrq kdump, the shell that wrote to
                    // sysrq-trigger).
                    assert!(info["crash_time"].is_i64(), "{what}");
                    let cpu = info["panic_cpu"].as_u64().expect("panic cpu") as usize;
                    let panicking = &info["cpus"][cpu];
                    let pc = panicking["pc_symbol"].as_str().expect("pc symbol");
                    assert!(pc.contains("crash"), "{what}: panicking pc {pc}");
                    assert_eq!(
                        panicking["current"][0].as_i64(),
                        Some(console_pid),
                        "{what}"
                    );
                    if name == "kdump" {
                        assert_eq!(console_pid, truth.capturers[1], "{what}");
                    }
                } else {
                    assert!(
                        info["crash_time"].is_null() && info["panic_cpu"].is_null(),
                        "{what}"
                    );
                }
            }
        }
    }
}

#[test]
fn read_shows_the_banner_by_symbol_and_by_physical_address() {
    let fixture = Fixture::load("linux-6.1");
    let boot = fixture.boot("qemu-plain");
    let core = boot.dir.join("vmcore.elf");
    let vmlinux = fixture.vmlinux();
    let out = run_kpeek([
        os("read"),
        os("--vmlinux"),
        vmlinux.as_os_str(),
        os("--core"),
        core.as_os_str(),
        os("linux_banner"),
        os("32"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .next()
            .expect("line")
            .ends_with("Linux version 6."),
        "{text}"
    );
    let truth = boot.truth();
    let phys = truth.kernel_code_phys().expect("iomem")
        + (truth.kallsyms("linux_banner").expect("banner")
            - truth.kallsyms("_text").expect("_text"));
    let out = run_kpeek([
        os("read"),
        os("--phys"),
        os("--vmlinux"),
        vmlinux.as_os_str(),
        os("--core"),
        core.as_os_str(),
        os(&format!("{phys:#x}")),
        os("16"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Linux version 6."));

    // JSON (it was a hexdump): the bytes of /proc/version, at the run-time
    // address of linux_banner in the guest's /proc/kallsyms.
    let version = truth.files["/proc/version"].as_bytes();
    let out = run_kpeek([
        os("read"),
        os("--format"),
        os("json"),
        os("--vmlinux"),
        vmlinux.as_os_str(),
        os("--core"),
        core.as_os_str(),
        os("linux_banner"),
        os(&version.len().to_string()),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("read --format json is JSON");
    let hex: String = version.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["space"], "virtual");
    assert_eq!(v["data"], hex.as_str());
    assert_eq!(
        v["address"],
        format!("{:#x}", truth.kallsyms("linux_banner").expect("banner")).as_str()
    );
}

#[test]
fn a_vmlinux_from_another_kernel_is_refused() {
    let (f61, f612) = (Fixture::load("linux-6.1"), Fixture::load("linux-6.12"));
    for (vmlinux, boot) in [
        (f61.vmlinux(), f612.boot("qemu-vmcoreinfo")),
        (f612.vmlinux(), f61.boot("qemu-plain")),
    ] {
        let core = boot.dir.join("vmcore.elf");
        let out = run_kpeek([
            os("ps"),
            os("--vmlinux"),
            vmlinux.as_os_str(),
            os("--core"),
            core.as_os_str(),
        ]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(out.stdout.is_empty());
        let err = stderr(&out);
        assert!(
            err.contains("does not match") || err.contains("cannot locate the kernel"),
            "{err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn bad_inputs_get_a_clear_error_and_no_panic() {
    let fixture = Fixture::load("linux-6.12");
    let vmlinux = fixture.vmlinux();
    let dir = std::env::temp_dir().join(format!("kpeek-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let kdump = std::fs::read(fixture.boot("kdump").dir.join("vmcore.kdump")).expect("dump");
    let elf = std::fs::read(fixture.boot("qemu-plain").dir.join("vmcore.elf")).expect("dump");
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("text", b"this is not a crash dump\n".to_vec()),
        ("kdump-header-only", kdump[..4096].to_vec()),
        ("kdump-half", kdump[..kdump.len() / 2].to_vec()),
        ("elf-headers-only", elf[..8192].to_vec()),
        ("elf-half", elf[..elf.len() / 2].to_vec()),
    ];
    let mut flipped = kdump.clone();
    flipped[436..440].copy_from_slice(&u32::MAX.to_le_bytes()); // absurd bitmap_blocks
    cases.push(("kdump-absurd-bitmap", flipped));
    let mut flipped = elf.clone();
    flipped[56..58].copy_from_slice(&0xfff0u16.to_le_bytes()); // e_phnum past the file
    cases.push(("elf-absurd-phnum", flipped));
    for (name, bytes) in cases {
        let path = dir.join(name);
        std::fs::write(&path, bytes).expect("write");
        let out = run_kpeek([
            os("ps"),
            os("--vmlinux"),
            vmlinux.as_os_str(),
            os("--core"),
            path.as_os_str(),
        ]);
        let err = stderr(&out);
        assert!(!err.contains("panicked"), "{name}: {err}");
        // A damaged dump either fails with an error, or lists what it can
        // and says what is wrong: never a silent success.
        assert!(err.starts_with("kpeek: "), "{name}: {err}");
        if out.status.success() {
            assert!(
                err.contains("warning") && err.contains("truncated"),
                "{name}: {err}"
            );
            assert!(!out.stdout.is_empty(), "{name}");
        }
    }
    let not_elf = dir.join("not-a-vmlinux");
    std::fs::write(&not_elf, b"nope").expect("write");
    let core = fixture.boot("qemu-plain").dir.join("vmcore.elf");
    let out = run_kpeek([
        os("ps"),
        os("--vmlinux"),
        not_elf.as_os_str(),
        os("--core"),
        core.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!stderr(&out).contains("panicked"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every subcommand's `--help` ends with examples, and every example
/// names that subcommand.
#[test]
fn every_subcommand_has_examples_in_its_help() {
    let top = run_kpeek(["--help"]);
    let text = String::from_utf8_lossy(&top.stdout).into_owned();
    let commands: Vec<String> = text
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        // A name at column 2; a wrapped description is indented further.
        .filter(|l| !l[2..].starts_with(' '))
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .filter(|c| c != "help" && c != "rpc")
        .collect();
    assert!(commands.len() >= 14, "{commands:?}");
    for c in &commands {
        let out = run_kpeek([c.as_str(), "--help"]);
        assert!(out.status.success(), "{c}: {}", stderr(&out));
        let help = String::from_utf8_lossy(&out.stdout).into_owned();
        // (A long comment may wrap onto a line of its own.)
        let examples: Vec<&str> = help
            .lines()
            .skip_while(|l| *l != "Examples:")
            .skip(1)
            .filter(|l| l.starts_with("  kpeek "))
            .collect();
        assert!(
            !examples.is_empty(),
            "kpeek {c} --help has no examples:\n{help}"
        );
        for e in examples {
            assert!(
                e.trim_start().starts_with(&format!("kpeek {c}")),
                "{c}: {e}"
            );
        }
    }
}

/// A style a command does not have is refused by name, listing the ones
/// it has.
#[test]
fn a_style_a_command_lacks_is_refused_with_the_ones_it_has() {
    let out = run_kpeek(["dmesg", "--style", "proc", "--core", "/nonexistent"]);
    assert_eq!(out.status.code(), Some(2), "clap's usage error");
    let err = stderr(&out);
    assert!(
        err.contains("'proc'") && err.contains("kpeek") && err.contains("lx"),
        "{err}"
    );
}

/// The completions load in a real bash, and the manual page renders in
/// real groff with every subcommand in it.
#[test]
fn completions_load_in_bash_and_the_man_page_renders() {
    let script = run_kpeek(["completions", "bash"]);
    assert!(script.status.success());
    let path = std::env::temp_dir().join(format!("kpeek-completion-{}", std::process::id()));
    std::fs::write(&path, &script.stdout).expect("write");
    let bash = std::process::Command::new(common::require_tool("bash"))
        .arg("-c")
        .arg(format!("source {}; complete -p kpeek", path.display()))
        .output()
        .expect("bash");
    let _ = std::fs::remove_file(&path);
    let registered = String::from_utf8_lossy(&bash.stdout);
    assert!(
        bash.status.success() && registered.contains("_kpeek") && registered.ends_with("kpeek\n"),
        "{registered} {}",
        String::from_utf8_lossy(&bash.stderr)
    );

    let man = run_kpeek(["man"]);
    assert!(man.status.success());
    let mut groff = std::process::Command::new(common::require_tool("groff"))
        .args(["-man", "-Tutf8"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("groff");
    use std::io::Write;
    groff
        .stdin
        .take()
        .expect("stdin")
        .write_all(&man.stdout)
        .expect("feed groff");
    let page = groff.wait_with_output().expect("groff");
    let text = String::from_utf8_lossy(&page.stdout);
    assert!(
        page.status.success() && page.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&page.stderr)
    );
    for c in ["ps", "bt", "dmesg", "pahole", "serve", "gdb"] {
        assert!(
            text.contains(&format!("kpeek-{c}")) || text.contains(c),
            "{c} missing"
        );
    }
    assert!(text.contains("Exit status"), "{text}");
}
