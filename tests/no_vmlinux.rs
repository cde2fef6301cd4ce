//! `kpeek` on a dump with no vmlinux: the kernel's own kallsyms and BTF.
//!
//! The task lists are checked against the guest's /proc in tests/ps.rs
//! (`every_dump_without_a_vmlinux`); here the CLI's output must
//! be the same as with the vmlinux (whose output tests/ps.rs checks against
//! the same truth and drgn), and `info` must say which sources it used.

mod common;

use std::path::Path;
use std::sync::Arc;

use kpeek::kernel::{OpenOptions, Program};

/// `kpeek ARGS --core C [--vmlinux V]`: its standard output; it must succeed.
fn kpeek_stdout(args: &[&str], core: &Path, vmlinux: Option<&Path>) -> String {
    let mut cmd = common::kpeek_command();
    // No vmlinux means none: no debuginfod server from the environment.
    cmd.args(args)
        .arg("--core")
        .arg(core)
        .env_remove("DEBUGINFOD_URLS");
    if let Some(v) = vmlinux {
        cmd.arg("--vmlinux").arg(v);
    }
    let out = cmd.output().expect("kpeek runs");
    assert!(
        out.status.success(),
        "kpeek {args:?} {}: {}",
        core.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// `ps --threads --format json` prints the same with and without the
/// vmlinux, on every dump (with VMCOREINFO or not); so does
/// `info`, but for the fields that name the sources.
#[test]
fn ps_and_info_equal_the_vmlinux_output() {
    let mut dumps = 0;
    for fixture in common::Fixture::all() {
        let vmlinux = fixture.vmlinux();
        for boot in fixture.boot_names() {
            for (core, _) in fixture.boot(&boot).dumps() {
                // (`threads` and the other listings render the same task
                // list: tests/ps.rs checks them with the vmlinux.)
                let args = ["ps", "--threads", "--format", "json"];
                let with = kpeek_stdout(&args, &core, Some(&vmlinux));
                let without = kpeek_stdout(&args, &core, None);
                assert!(
                    with == without,
                    "{}: ps differs without the vmlinux",
                    core.display()
                );
                let info: serde_json::Value =
                    serde_json::from_str(&kpeek_stdout(&["info", "--format", "json"], &core, None))
                        .expect("JSON");
                assert_eq!(info["types"], "btf", "{}", core.display());
                assert_eq!(info["symbols"], "kallsyms");
                assert!(info["vmlinux"].is_null());
                let with: serde_json::Value = serde_json::from_str(&kpeek_stdout(
                    &["info", "--format", "json"],
                    &core,
                    Some(&vmlinux),
                ))
                .expect("JSON");
                assert_eq!(with["types"], "dwarf");
                assert_eq!(with["symbols"], "elf");
                assert_eq!(info["vmlinux_origin"]["kind"], "none");
                assert_eq!(with["vmlinux_origin"]["kind"], "given");
                let mut info = info;
                let mut with = with;
                for k in ["vmlinux", "vmlinux_origin", "types", "symbols"] {
                    info[k] = serde_json::Value::Null;
                    with[k] = serde_json::Value::Null;
                }
                assert_eq!(info, with, "{}: info", core.display());
                dumps += 1;
            }
        }
    }
    // Every dump the manifests list (15: six of 6.1, nine of 6.12).
    let listed: usize = common::Fixture::all()
        .iter()
        .flat_map(|f| {
            f.boot_names()
                .into_iter()
                .map(move |b| f.boot(&b).dumps().len())
        })
        .sum();
    assert_eq!(dumps, listed);
    assert!(dumps >= 15, "{dumps} dumps");
}

/// The per-CPU and symbol answers the walks use agree with the guest's
/// own /proc/kallsyms.
#[test]
fn symbols_come_from_kallsyms() {
    for fixture in common::Fixture::all() {
        let boot = fixture.boot("kdump");
        let truth = boot.truth();
        let (core, _) = boot.dumps().into_iter().next().expect("a dump");
        let prog = Program::open_without_vmlinux(&core, &OpenOptions::default()).expect("opens");
        for name in ["init_task", "_text", "linux_banner", "__per_cpu_offset"] {
            assert_eq!(
                prog.symbol(name).ok().map(|a| a.0),
                truth.kallsyms(name),
                "{} {name}",
                fixture.name
            );
        }
        assert!(prog.debug.is_percpu_symbol("runqueues"));
        assert!(!prog.debug.is_percpu_symbol("init_task"));
    }
}

/// A VMCOREINFO whose kallsyms addresses are wrong gives an error, not a
/// panic or a wrong listing.
#[test]
fn damaged_kallsyms_location_is_an_error() {
    let fixture = common::Fixture::load("linux-6.12");
    let boot = fixture.boot("kdump");
    let (core, _) = boot
        .dumps()
        .into_iter()
        .find(|(p, _)| p.extension().is_some_and(|e| e == "kdump"))
        .expect("a kdump file");
    let bytes = std::fs::read(&core).expect("reads");
    let dump = kpeek::dump::Dump::open(&core).expect("opens");
    let info = dump.vmcoreinfo().expect("VMCOREINFO");
    let key = |name: &str| {
        format!(
            "SYMBOL({name})={}",
            info.get(&format!("SYMBOL({name})"))
                .expect("a kallsyms symbol")
        )
    };
    // Point one table at another's address (same length, so the rest of
    // the file stays in place).
    for (victim, donor) in [
        ("kallsyms_num_syms", "kallsyms_relative_base"),
        ("kallsyms_names", "kallsyms_offsets"),
        ("kallsyms_token_index", "kallsyms_names"),
        ("kallsyms_offsets", "kallsyms_token_table"),
    ] {
        let (from, to) = (key(victim), key(donor));
        let value = to.split_once('=').expect("=").1;
        let to = format!("SYMBOL({victim})={value}");
        assert_eq!(from.len(), to.len());
        let pos = bytes
            .windows(from.len())
            .position(|w| w == from.as_bytes())
            .expect("the line is in the file");
        let mut damaged = bytes.clone();
        damaged[pos..pos + to.len()].copy_from_slice(to.as_bytes());
        let dump = Arc::new(kpeek::dump::Dump::from_bytes(&core, damaged).expect("still opens"));
        match Program::from_dump_alone(dump, &OpenOptions::default()) {
            Err(e) => eprintln!("{victim} -> {donor}: {e}"),
            Ok(prog) => {
                // Whatever decoded must not pass for the kernel's table.
                let text = prog.symbol("_text").ok().map(|a| a.0);
                assert_ne!(text, boot.truth().kallsyms("_text"), "{victim} -> {donor}");
            }
        }
    }
}

/// Kernel virtual memory as a debugger gives it (what `kpeek rpc` reads
/// through GDB): a dump read through its vmlinux-located address space.
struct Virtual(Program);

impl kpeek::memory::MemorySource for Virtual {
    fn read_phys(&self, addr: kpeek::addr::PhysAddr, buf: &mut [u8]) -> kpeek::Result<()> {
        self.0.read(kpeek::addr::VirtAddr(addr.0), buf)
    }
}

/// `kpeek rpc` with nothing loaded in GDB: from one kernel-text program
/// counter, the KASLR offset and the symbols equal the guest's own
/// (its /proc/kallsyms and the offset it saw); a pc outside the kernel's
/// text is a clear error.
#[test]
fn debug_info_from_virtual_memory_and_a_pc() {
    use kpeek::kernel::program::debug_from_virtual;
    for fixture in common::Fixture::all() {
        let boot = fixture.boot("qemu-vmcoreinfo");
        let truth = boot.truth();
        let (core, _) = boot.dumps().into_iter().next().expect("a dump");
        let prog =
            Program::open(&fixture.vmlinux(), &core, &OpenOptions::default()).expect("opens");
        let memory = Virtual(prog);
        let pc = truth.kallsyms("schedule").expect("schedule") + 0x10;
        let (debug, offset) = debug_from_virtual(&memory, &[0x401000, pc]).expect("found");
        assert_eq!(offset, boot.kaslr_offset(), "{}", fixture.name);
        for name in ["init_task", "linux_banner", "_text", "schedule"] {
            let sym = debug.symbol(name).expect("symbol");
            assert_eq!(
                Some(sym.addr.get().wrapping_add(offset)),
                truth.kallsyms(name),
                "{} {name}",
                fixture.name
            );
        }
        assert!(debug.type_size("task_struct").is_ok(), "{}", fixture.name);
        let Err(err) = debug_from_virtual(&memory, &[0x401000]) else {
            panic!("{}: found a kernel from a user-mode pc", fixture.name)
        };
        assert!(
            err.to_string().contains("no CPU is in the kernel's text"),
            "{err}"
        );
    }
}
