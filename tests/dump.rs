//! The dump readers against the fixtures: every format of every boot, with
//! the guest's own truth as the oracle.

mod common;

use common::{Boot, Fixture};
use kpeek::addr::{PhysAddr, VirtAddr};
use kpeek::arch::KernelSpace;
use kpeek::arch::{locate, Clues, ImageFacts, KaslrMethod};
use kpeek::dump::{Dump, DumpFormat, Reader};
use kpeek::memory::MemorySource;

fn image_facts(fixture: &Fixture) -> ImageFacts {
    let debug = kpeek::debuginfo::KernelDebugInfo::open(&fixture.vmlinux()).expect("vmlinux");
    kpeek::kernel::program::image_facts(&debug).expect("image facts")
}

fn expected_format(name: &str) -> DumpFormat {
    match name {
        "qemu-elf" => DumpFormat::ElfQemu,
        "qemu-elf-paging" => DumpFormat::ElfQemuPaging,
        "qemu-kdump-zlib-flattened" | "kdump-compressed-flattened" => DumpFormat::KdumpFlattened,
        "kdump-compressed" => DumpFormat::KdumpCompressed,
        other => panic!("unknown fixture format {other}"),
    }
}

fn dumps_with_boot() -> Vec<(String, Boot, std::path::PathBuf, String)> {
    let mut all = Vec::new();
    for fixture in Fixture::all() {
        for name in fixture.boot_names() {
            let boot = fixture.boot(&name);
            for (path, format) in boot.dumps() {
                all.push((fixture.name.clone(), fixture.boot(&name), path, format));
            }
        }
    }
    assert!(
        all.len() >= 12,
        "expected every format of both kernels, got {}",
        all.len()
    );
    all
}

#[test]
fn every_dump_opens_in_its_format_and_holds_the_banner() {
    for (fixture, boot, path, format) in dumps_with_boot() {
        let dump = Dump::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(dump.format, expected_format(&format), "{}", path.display());
        let facts = image_facts(&Fixture::load(&fixture));
        let truth = boot.truth();
        let text = truth.kallsyms("_text").expect("_text");
        let phys = truth.kernel_code_phys().expect("iomem") + (facts.linux_banner.0 - facts.text.0);
        let mut got = vec![0u8; facts.banner.len()];
        dump.read_phys(PhysAddr(phys), &mut got)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(got, facts.banner, "{}", path.display());
        assert_eq!(text - fixture_text(&fixture), boot.kaslr_offset());
        // VMCOREINFO is there exactly when the boot had -device vmcoreinfo (or was a kdump).
        let want_vmcoreinfo = boot.facts["vmcoreinfo_in_dump"].as_bool().expect("flag");
        assert_eq!(
            dump.vmcoreinfo().is_some(),
            want_vmcoreinfo,
            "{}",
            path.display()
        );
        if let Some(vi) = dump.vmcoreinfo() {
            let release = truth.files["/proc/version"]
                .split_whitespace()
                .nth(2)
                .expect("release");
            assert_eq!(vi.osrelease(), Some(release), "{}", path.display());
        }
    }
}

fn fixture_text(name: &str) -> u64 {
    Fixture::load(name).vmlinux_text()
}

#[test]
fn kaslr_is_found_in_every_dump_with_and_without_vmcoreinfo() {
    for (fixture, boot, path, format) in dumps_with_boot() {
        let facts = image_facts(&Fixture::load(&fixture));
        let dump = Dump::open(&path).expect("open");
        let virtual_loads = match &dump.reader {
            Reader::Elf(e) => e.virtual_loads().to_vec(),
            Reader::Kdump(_) => Vec::new(),
        };
        for ignore_vmcoreinfo in [false, true] {
            let clues = Clues {
                notes: dump.notes(),
                virtual_loads: &virtual_loads,
                kaslr_override: None,
                ignore_vmcoreinfo,
                allow_mismatch: false,
            };
            let found = locate(&dump, &facts, &clues);
            // A kdump-compressed file of a real crash has neither CPU state
            // with CR3 nor PT_LOADs: without VMCOREINFO there is nothing to go on.
            if ignore_vmcoreinfo && format.starts_with("kdump-compressed") {
                let err = found.expect_err("nothing to locate the kernel with");
                assert_eq!(err.code(), "kaslr", "{err}");
                continue;
            }
            let found = found.unwrap_or_else(|e| {
                panic!(
                    "{} (ignore_vmcoreinfo {ignore_vmcoreinfo}): {e}",
                    path.display()
                )
            });
            assert_eq!(
                found.layout.kaslr_offset,
                boot.kaslr_offset(),
                "{} {format}",
                path.display()
            );
            if dump.vmcoreinfo().is_some() && !ignore_vmcoreinfo {
                assert_eq!(found.method, KaslrMethod::Vmcoreinfo);
            }
            // The kernel's own idea of where init_task is, through the page tables.
            let init_task = boot.truth().kallsyms("init_task").expect("init_task");
            let space = KernelSpace::new(&dump, found.layout);
            let walked = space
                .walk(found.layout.pgd, VirtAddr(init_task))
                .expect("walk to init_task");
            assert_eq!(
                walked,
                space.translate(VirtAddr(init_task)).expect("fast path")
            );
        }
    }
}

/// A small deterministic generator for sampling pages.
fn lcg(seed: &mut u64) -> u64 {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    *seed >> 33
}

#[test]
fn every_format_of_one_boot_gives_the_same_bytes() {
    for fixture in Fixture::all() {
        for name in fixture.boot_names() {
            let boot = fixture.boot(&name);
            // QEMU's paging ELF only describes pages that some page table
            // maps: it may lack pages the others have, never the reverse.
            let mut dumps: Vec<Dump> = boot
                .dumps()
                .iter()
                .map(|(p, _)| Dump::open(p).expect("open"))
                .collect();
            dumps.sort_by_key(|d| d.format == DumpFormat::ElfQemuPaging);
            if dumps.len() < 2 {
                continue;
            }
            let (first, rest) = dumps.split_first().expect("two dumps");
            let mut seed = 42u64;
            let (mut same, mut missing_everywhere, mut partial) = (0, 0, 0);
            // Every page of the kdump (384 MiB guest, most pages filtered
            // out by -d 31); 3000 random pages of the 128 MiB QEMU boots.
            // (Every page of a makedumpfile dump: kdump-compressed.)
            let makedumpfile = dumps
                .iter()
                .any(|d| d.format == DumpFormat::KdumpCompressed);
            let mib = common::guest_mib(&boot);
            let pfns: Vec<u64> = if makedumpfile {
                (0..mib << 8).collect()
            } else {
                (0..3000).map(|_| lcg(&mut seed) % (mib << 8)).collect()
            };
            for pfn in pfns {
                let mut a = vec![0u8; 4096];
                let ok_a = first.read_phys(PhysAddr(pfn << 12), &mut a).is_ok();
                for other in rest {
                    let mut b = vec![0u8; 4096];
                    let ok_b = other.read_phys(PhysAddr(pfn << 12), &mut b).is_ok();
                    match (ok_a, ok_b) {
                        (true, true) => {
                            assert_eq!(a, b, "{}/{name}: page {pfn:#x} differs", fixture.name);
                            same += 1;
                        }
                        (false, false) => missing_everywhere += 1,
                        (true, false) if other.format == DumpFormat::ElfQemuPaging => partial += 1,
                        // The same boot, the same page selection.
                        _ => panic!(
                            "{}/{name}: page {pfn:#x} readable in one format only",
                            fixture.name
                        ),
                    }
                }
            }
            // makedumpfile -d 31 leaves out free, cache, user and zero pages:
            // most of a small guest. QEMU dumps every page.
            let want = if makedumpfile { 5000 } else { 2500 };
            assert!(
                same > want,
                "{}/{name}: only {same} pages compared ({missing_everywhere} missing, {partial} not in the paging dump)",
                fixture.name
            );
        }
    }
}

#[test]
fn corrupt_and_truncated_dumps_fail_cleanly() {
    let fixture = Fixture::all().into_iter().next().expect("a fixture");
    let boot = fixture.boot("kdump");
    for (path, _) in boot.dumps() {
        let bytes = std::fs::read(&path).expect("read");
        for cut in [
            0usize,
            7,
            100,
            463,
            4096,
            4200,
            8192,
            20000,
            bytes.len() / 2,
            bytes.len() - 1,
        ] {
            let r = Dump::from_bytes(&path, bytes[..cut.min(bytes.len())].to_vec());
            if let Ok(dump) = r {
                // Opening may succeed on a prefix; reading must then fault, not panic.
                let mut buf = [0u8; 4096];
                let _ = dump.read_phys(PhysAddr(0x100_0000), &mut buf);
            }
        }
    }
}

#[test]
fn a_bad_page_faults_and_the_rest_still_reads() {
    use kpeek::dump::Reader;
    // The 6.12 genuine kdump: zlib pages, as makedumpfile -c wrote them.
    let fixture = Fixture::load("linux-6.12");
    let boot = fixture.boot("kdump");
    let path = boot.dir.join("vmcore.kdump");
    let original = std::fs::read(&path).expect("dump");
    let truth = boot.truth();
    let text = truth.kernel_code_phys().expect("iomem");
    let banner = text
        + (truth.kallsyms("linux_banner").expect("banner")
            - truth.kallsyms("_text").expect("_text"));
    let dump = Dump::open(&path).expect("open");
    let Reader::Kdump(k) = &dump.reader else {
        panic!("not kdump-compressed")
    };
    // Two dumped, compressed pages: the banner's, and another kernel-image page.
    let pages: Vec<u64> = [banner >> 12, (text >> 12) + 7]
        .into_iter()
        .filter(|&p| {
            k.page_location(p)
                .is_some_and(|(_, _, size, flags)| flags != 0 && size < 4096)
        })
        .collect();
    assert_eq!(pages.len(), 2, "both pages are dumped and compressed");
    let (bad, good) = (pages[0], pages[1]);
    let (desc, data, size, _) = k.page_location(bad).expect("location");

    // 1. Garble the compressed bytes of one page.
    let mut garbled = original.clone();
    for b in &mut garbled[(data + 2) as usize..(data + u64::from(size) - 4) as usize] {
        *b ^= 0x5a;
    }
    // 2. Point its descriptor past the end of the file.
    let mut past_end = original.clone();
    past_end[desc as usize..desc as usize + 8]
        .copy_from_slice(&(original.len() as u64 + 4096).to_le_bytes());
    // 3. An absurd stored size.
    let mut too_big = original.clone();
    too_big[desc as usize + 8..desc as usize + 12].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());

    for (name, bytes, why) in [
        ("garbled", garbled, "zlib"),
        ("past-end", past_end, "past the end"),
        ("too-big", too_big, "bytes for a 4096-byte page"),
    ] {
        let dump = Dump::from_bytes(&path, bytes).expect("the dump still opens");
        let mut page = vec![0u8; 4096];
        let err = dump
            .read_phys(PhysAddr(bad << 12), &mut page)
            .expect_err(name);
        assert_eq!(err.code(), "fault", "{name}: {err}");
        assert!(err.to_string().contains(why), "{name}: {err}");
        dump.read_phys(PhysAddr(good << 12), &mut page)
            .unwrap_or_else(|e| panic!("{name}: other pages read: {e}"));
    }
}
