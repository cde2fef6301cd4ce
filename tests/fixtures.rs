//! The fixtures prove themselves before any of kpeek's readers touch them:
//! the vmlinux's `linux_banner` must be in each dump at the physical address
//! the guest's own `/proc/iomem` and `/proc/kallsyms` imply.

mod common;

use common::{Boot, Fixture};
use object::read::elf::{ElfFile64, ProgramHeader};
use object::{Object, ObjectSection, ObjectSymbol};

/// The banner's link address and bytes (up to and including the NUL).
fn vmlinux_banner(fixture: &Fixture) -> (u64, Vec<u8>) {
    let data = std::fs::read(fixture.vmlinux()).expect("vmlinux");
    let elf = ElfFile64::<object::Endianness>::parse(&*data).expect("vmlinux is ELF64");
    let sym = elf
        .symbols()
        .find(|s| s.name() == Ok("linux_banner"))
        .expect("linux_banner in .symtab");
    let section = elf
        .section_by_index(sym.section_index().expect("section"))
        .expect("section");
    let bytes = section.data().expect("section data");
    let start = (sym.address() - section.address()) as usize;
    let end = bytes[start..]
        .iter()
        .position(|&b| b == 0)
        .expect("NUL-terminated")
        + start
        + 1;
    (sym.address(), bytes[start..end].to_vec())
}

/// Read physical memory from an ELF dump by its PT_LOAD p_paddr ranges.
fn elf_read_phys(dump: &[u8], paddr: u64, len: usize) -> Option<Vec<u8>> {
    let elf = ElfFile64::<object::Endianness>::parse(dump).ok()?;
    let endian = elf.endian();
    for ph in elf.elf_program_headers() {
        if ph.p_type(endian) != object::elf::PT_LOAD {
            continue;
        }
        let (start, filesz) = (ph.p_paddr(endian), ph.p_filesz(endian));
        if paddr >= start && paddr + len as u64 <= start + filesz {
            let off = (ph.p_offset(endian) + (paddr - start)) as usize;
            return dump.get(off..off + len).map(<[u8]>::to_vec);
        }
    }
    None
}

fn check_boot(fixture: &Fixture, boot: &Boot, banner_link: u64, banner: &[u8]) -> usize {
    let truth = boot.truth();
    let text = truth
        .kallsyms("_text")
        .expect("_text in the guest's kallsyms");
    let banner_rt = truth
        .kallsyms("linux_banner")
        .expect("linux_banner in the guest's kallsyms");
    // The guest's KASLR offset applies to every non-per-CPU symbol alike.
    assert_eq!(
        banner_rt - text,
        banner_link - fixture.vmlinux_text(),
        "{}/{}",
        fixture.name,
        boot.name
    );
    assert_eq!(
        text - fixture.vmlinux_text(),
        boot.kaslr_offset(),
        "manifest KASLR offset"
    );
    let phys = truth
        .kernel_code_phys()
        .expect("Kernel code in the guest's /proc/iomem")
        + (banner_rt - text);
    let release = truth.files["/proc/version"]
        .split_whitespace()
        .nth(2)
        .expect("release")
        .to_owned();
    assert!(banner.starts_with(format!("Linux version {release} ").as_bytes()));

    let mut checked = 0;
    for (path, format) in boot.dumps() {
        if !format.starts_with("qemu-elf") {
            // kdump-compressed dumps need kpeek's own reader: tests/dump.rs.
            continue;
        }
        let dump = std::fs::read(&path).expect("dump");
        let got = elf_read_phys(&dump, phys, banner.len()).unwrap_or_else(|| {
            panic!(
                "{}: physical {phys:#x} is not in any PT_LOAD",
                path.display()
            )
        });
        assert_eq!(
            got,
            banner,
            "{}: banner at physical {phys:#x}",
            path.display()
        );
        checked += 1;
    }
    checked
}

#[test]
fn every_elf_dump_holds_the_vmlinux_banner_where_the_guest_put_it() {
    let mut checked = 0;
    for fixture in Fixture::all() {
        let (banner_link, banner) = vmlinux_banner(&fixture);
        for name in fixture.boot_names() {
            checked += check_boot(&fixture, &fixture.boot(&name), banner_link, &banner);
        }
    }
    // Two kernels, three QEMU ELF dumps each.
    assert!(checked >= 6, "only {checked} ELF dumps checked");
}

#[test]
fn the_truth_describes_the_workload() {
    for fixture in Fixture::all() {
        for name in fixture.boot_names() {
            let truth = fixture.boot(&name).truth();
            let comms: Vec<&str> = truth.tasks.iter().map(|t| t.comm.as_str()).collect();
            for want in [
                "kpw-mt",
                "kpw-alpha",
                "kpw-fifteen-chr",
                "kpw-truncated-n",
                "kpw-zombie",
                "kpeek_fixture",
            ] {
                assert!(
                    comms.contains(&want),
                    "{}/{name}: no {want} in the truth",
                    fixture.name
                );
            }
            let threads = truth
                .tasks
                .iter()
                .filter(|t| t.comm.starts_with("kpw-w"))
                .count();
            assert_eq!(
                threads, 300,
                "{}/{name}: named threads of kpw-mt",
                fixture.name
            );
            let state = |comm: &str| {
                truth
                    .tasks
                    .iter()
                    .find(|t| t.comm == comm)
                    .map(|t| t.state())
            };
            assert_eq!(state("kpw-zombie"), Some('Z'));
            assert_eq!(state("kpw-stopped"), Some('T'));
            assert_eq!(state("kpw-tracee"), Some('t'));
            assert_eq!(state("kpw-vforker"), Some('D'));
            assert_eq!(state("kpw-spin"), Some('R'));
            assert!(truth
                .tasks
                .iter()
                .all(|t| !truth.capturers.contains(&t.tid)));
        }
    }
}
