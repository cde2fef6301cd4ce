//! A tour of the shipped fixtures: unpack them (once, into target/fixtures),
//! show `kpeek ps` on the genuine kdump of Linux 6.12, then run kpeek on
//! every dump, printing what it finds next to what the guest itself said.
//!
//!     cargo run --release --example tour

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;

use kpeek::arch::{locate, Clues, ImageFacts};
use kpeek::dump::{Dump, Reader};

fn image_facts(vmlinux: &Path) -> ImageFacts {
    let debug = kpeek::debuginfo::KernelDebugInfo::open(vmlinux).expect("vmlinux");
    kpeek::kernel::program::image_facts(&debug).expect("image facts")
}

fn main() {
    let f612 = common::Fixture::load("linux-6.12");
    let kdump = f612.boot("kdump").dir.join("vmcore.kdump");
    println!(
        "$ kpeek ps --vmlinux {} --core {}\n",
        f612.vmlinux().display(),
        kdump.display()
    );
    match kpeek::kernel::Program::open(&f612.vmlinux(), &kdump, &Default::default())
        .and_then(|prog| kpeek::report::ps::ps(&prog, &Default::default()))
    {
        Ok(report) => {
            kpeek::render::ps::table(&mut std::io::stdout().lock(), &report.body.tasks, false)
                .expect("stdout");
        }
        Err(e) => println!("kpeek: {e}"),
    }
    println!();
    for fixture in common::Fixture::all() {
        let facts = image_facts(&fixture.vmlinux());
        println!(
            "{} ({})",
            fixture.name,
            fixture.manifest["release"].as_str().unwrap_or("?")
        );
        for name in fixture.boot_names() {
            let boot = fixture.boot(&name);
            for (path, _) in boot.dumps() {
                let file = path.file_name().and_then(|f| f.to_str()).unwrap_or("?");
                match Dump::open(&path) {
                    Err(e) => println!("  {name}/{file}: {e}"),
                    Ok(dump) => {
                        let virtual_loads = match &dump.reader {
                            Reader::Elf(e) => e.virtual_loads().to_vec(),
                            Reader::Kdump(_) => Vec::new(),
                        };
                        let clues = Clues {
                            notes: dump.notes(),
                            virtual_loads: &virtual_loads,
                            kaslr_override: None,
                            ignore_vmcoreinfo: false,
                            allow_mismatch: false,
                        };
                        let found = match locate(&dump, &facts, &clues) {
                            Ok(l) => format!(
                                "KASLR {:#x} via {}",
                                l.layout.kaslr_offset,
                                l.method.describe()
                            ),
                            Err(e) => format!("{e}"),
                        };
                        println!(
                            "  {name}/{file}: {}; {found}; the guest saw {:#x}",
                            dump.format.describe(),
                            boot.kaslr_offset()
                        );
                    }
                }
            }
        }
    }
}
