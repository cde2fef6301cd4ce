//! Dump reading throughput: every page of a dump through kpeek's reader,
//! against decompressing the same page data with zlib directly (the
//! physical limit), and random 4 KiB kernel virtual reads through the page
//! walk. `cargo bench --bench read_all -- DUMP [VMLINUX]`; benches/compare.sh
//! runs it on the fixtures.

use std::io::Read;
use std::path::Path;
use std::time::Instant;

use kpeek::addr::{PhysAddr, VirtAddr};
use kpeek::dump::{Dump, Reader};
use kpeek::memory::MemorySource;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let Some(path) = args.first() else {
        eprintln!("usage: read_all DUMP [VMLINUX]");
        return;
    };
    let dump = Dump::open(Path::new(path)).expect("open the dump");
    let Reader::Kdump(k) = &dump.reader else {
        eprintln!("read_all measures kdump-compressed dumps");
        return;
    };
    let pages: Vec<u64> = (0..k.max_mapnr)
        .filter(|&p| k.page_location(p).is_some())
        .collect();

    // kpeek: every dumped page, in pfn order.
    let t = Instant::now();
    let mut buf = vec![0u8; 4096];
    let mut sum = 0u64;
    for &pfn in &pages {
        if dump.read_phys(PhysAddr(pfn << 12), &mut buf).is_ok() {
            sum = sum.wrapping_add(u64::from(buf[17]));
        }
    }
    let kpeek_s = t.elapsed().as_secs_f64();

    // The physical limit: zlib-decompress the same stored pages, nothing else.
    let file = std::fs::read(path).expect("read the file");
    let stored: Vec<(usize, usize, u32)> = pages
        .iter()
        .filter_map(|&p| k.page_location(p))
        .map(|(_, off, size, flags)| (off as usize, size as usize, flags))
        .collect();
    let t = Instant::now();
    for &(off, size, flags) in &stored {
        if flags & 1 != 0 {
            let mut out = Vec::with_capacity(4096);
            let _ = flate2::read::ZlibDecoder::new(&file[off..off + size]).read_to_end(&mut out);
            sum = sum.wrapping_add(out.len() as u64);
        }
    }
    let zlib_s = t.elapsed().as_secs_f64();
    let mib = pages.len() as f64 * 4096.0 / (1 << 20) as f64;
    let compressed = stored.iter().filter(|s| s.2 & 1 != 0).count();
    println!(
        "every page: {} pages ({mib:.0} MiB, {compressed} zlib-compressed) in {kpeek_s:.3}s = {:.0} MiB/s; \
         zlib alone on the compressed ones: {zlib_s:.3}s; checksum {sum}",
        pages.len(),
        mib / kpeek_s
    );

    if let Some(vmlinux) = args.get(1) {
        let prog =
            kpeek::kernel::Program::open(Path::new(vmlinux), Path::new(path), &Default::default())
                .expect("open the program");
        let base = prog.located.layout.page_offset_base;
        let mut seed = 7u64;
        let n = 100_000;
        let t = Instant::now();
        let mut ok = 0;
        for _ in 0..n {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let pfn = pages[((seed >> 33) % pages.len() as u64) as usize];
            // Through the page tables, not the direct-map shortcut.
            if prog
                .space
                .walk(prog.located.layout.pgd, VirtAddr(base + (pfn << 12)))
                .is_ok_and(|pa| dump.read_phys(pa, &mut buf).is_ok())
            {
                ok += 1;
            }
        }
        let s = t.elapsed().as_secs_f64();
        println!(
            "random 4 KiB direct-map reads through the page walk: {:.0}/s ({ok} of {n} mapped)",
            n as f64 / s
        );
    }
}
