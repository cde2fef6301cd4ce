//! The kernel's compressed kallsyms tables, decoded from every fixture
//! dump, against the guest's own `/proc/kallsyms` recorded at dump time.
//!
//! The core kernel's lines of `/proc/kallsyms` (those without a
//! `[module]`) are the kallsyms table itself, in the same order: every
//! name, address and type letter must match.

mod common;

use kpeek::kernel::kallsyms::{Kallsyms, Location};
use kpeek::kernel::{OpenOptions, Program};

fn decode(prog: &Program, loc: &Location) -> Kallsyms {
    let read = |addr: u64, buf: &mut [u8]| prog.space.read(kpeek::addr::VirtAddr(addr), buf);
    Kallsyms::read(&read, loc).expect("kallsyms decodes")
}

fn compare(what: &str, ks: &Kallsyms, want: &[(u64, char, String)]) {
    let got: Vec<(u64, char, String)> = ks
        .symbols()
        .iter()
        .map(|s| (s.addr, s.kind, s.name.clone()))
        .collect();
    let same = got.iter().zip(want).filter(|(g, w)| g == w).count();
    eprintln!(
        "{what}: {same}/{} symbols identical to /proc/kallsyms (kpeek decoded {})",
        want.len(),
        got.len()
    );
    if let Some((i, (g, w))) = got.iter().zip(want).enumerate().find(|(_, (g, w))| g != w) {
        panic!("{what}: symbol {i}: kpeek {g:x?}, /proc/kallsyms {w:x?}");
    }
    assert_eq!(got.len(), want.len(), "{what}: symbol count");
    assert!(want.len() > 10_000, "{what}: a real table");
}

/// Every dump with VMCOREINFO: the tables are found through its
/// `SYMBOL(kallsyms_*)` lines alone.
#[test]
fn every_vmcoreinfo_dump_decodes_like_proc_kallsyms() {
    let mut checked = 0;
    for fixture in common::Fixture::all() {
        let vmlinux = fixture.vmlinux();
        for boot_name in fixture.boot_names() {
            let boot = fixture.boot(&boot_name);
            let dumps = boot.dumps();
            if dumps.is_empty() {
                continue;
            }
            let want = boot.truth().core_kallsyms();
            for (dump, _) in dumps {
                let prog = Program::open(&vmlinux, &dump, &OpenOptions::default())
                    .unwrap_or_else(|e| panic!("{}: {e}", dump.display()));
                let Some(info) = prog.notes.vmcoreinfo.as_ref() else {
                    continue;
                };
                let loc = Location::from_vmcoreinfo(info).unwrap_or_else(|| {
                    panic!(
                        "{}: VMCOREINFO of a 6.x kernel names the kallsyms tables",
                        dump.display()
                    )
                });
                let ks = decode(&prog, &loc);
                assert!(ks.absolute_percpu, "x86_64 SMP: absolute per-CPU symbols");
                let what = format!("{} {boot_name} {}", fixture.name, dump.display());
                compare(&what, &ks, &want);
                // Lookups by name and by address.
                let text = ks.lookup("_text").expect("_text");
                assert_eq!(Some(text.addr), boot.truth().kallsyms("_text"));
                let (at, off) = ks.at(text.addr + 5).expect("a symbol at _text+5");
                assert_eq!((at.addr, off), (text.addr, 5));
                checked += 1;
            }
        }
    }
    // 2 kernels x (3 qemu-vmcoreinfo + 2 kdump) dumps.
    assert!(checked >= 10, "only {checked} dumps with VMCOREINFO");
}

/// A dump without VMCOREINFO: the tables are found through the vmlinux's
/// symbols and the KASLR offset.
#[test]
fn tables_found_through_the_vmlinux_without_vmcoreinfo() {
    for fixture in common::Fixture::all() {
        let boot = fixture.boot("qemu-plain");
        let (dump, _) = boot.dumps().into_iter().next().expect("a dump");
        let prog =
            Program::open(&fixture.vmlinux(), &dump, &OpenOptions::default()).expect("opens");
        assert!(
            prog.notes.vmcoreinfo.is_none(),
            "qemu-plain has no VMCOREINFO"
        );
        let loc = Location::from_symbols(|n| prog.symbol(n).ok().map(|a| a.0))
            .expect("the vmlinux has the kallsyms symbols");
        let ks = decode(&prog, &loc);
        compare(
            &format!("{} qemu-plain via vmlinux", fixture.name),
            &ks,
            &boot.truth().core_kallsyms(),
        );
    }
}

/// Neither VMCOREINFO nor the vmlinux's symbols: the tables are found by
/// their shape in the kernel image, and decode like /proc/kallsyms (where
/// VMCOREINFO names them, at the very addresses it names).
#[test]
fn tables_found_by_their_shape() {
    for fixture in common::Fixture::all() {
        for boot_name in ["qemu-plain", "kdump"] {
            let boot = fixture.boot(boot_name);
            let truth = boot.truth();
            let (dump, _) = boot.dumps().into_iter().next().expect("a dump");
            let prog =
                Program::open(&fixture.vmlinux(), &dump, &OpenOptions::default()).expect("opens");
            let text = truth.kallsyms("_text").expect("_text");
            let read =
                |addr: u64, buf: &mut [u8]| prog.space.read(kpeek::addr::VirtAddr(addr), buf);
            let start = std::time::Instant::now();
            let loc = Location::find(&read, text, 128 << 20).expect("found by shape");
            eprintln!(
                "{} {boot_name}: found in {:?}",
                fixture.name,
                start.elapsed()
            );
            if let Some(info) = prog.notes.vmcoreinfo.as_ref() {
                assert_eq!(Some(loc), Location::from_vmcoreinfo(info));
            }
            let ks = decode(&prog, &loc);
            compare(
                &format!("{} {boot_name} by shape", fixture.name),
                &ks,
                &truth.core_kallsyms(),
            );
        }
    }
}
