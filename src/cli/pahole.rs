//! `kpeek pahole`.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use kpeek::render::pahole::{render_pahole, render_pahole_all, PaholeOptions};
use kpeek::report::pahole::{all_layouts, check_names, layouts, TypeFile};
use kpeek::Error;

use super::output::write_json;
use super::{Format, Via};

/// `kpeek pahole` options.
#[derive(Args, Debug)]
pub struct PaholeArgs {
    /// The kernel image with debug info (vmlinux).
    /// Inside GDB (kpeek.py) without one: the running kernel's own BTF.
    #[arg(long, value_name = "FILE")]
    vmlinux: Option<PathBuf>,
    /// Read the types from BTF instead: a vmlinux with a .BTF section,
    /// or a raw BTF file like /sys/kernel/btf/vmlinux (like `pahole -F btf`).
    #[arg(long, value_name = "FILE", conflicts_with = "vmlinux")]
    btf: Option<PathBuf>,
    /// Struct, union, typedef or enum names, comma-separated (like pahole's -C).
    #[arg(
        short = 'C',
        long = "class-name",
        value_name = "NAMES",
        value_delimiter = ','
    )]
    class_name: Vec<String>,
    /// Struct, union, typedef or enum names (also comma-separated).
    #[arg(required_unless_present_any = ["class_name", "all"], value_delimiter = ',')]
    names: Vec<String>,
    /// Every struct and union, as `pahole` with no -C prints them.
    #[arg(long, conflicts_with_all = ["class_name", "names"])]
    all: bool,
    /// Offsets and sizes in hexadecimal.
    #[arg(long)]
    hex: bool,
    /// Expand named member types inline.
    #[arg(short = 'E', long)]
    expand_types: bool,
    /// Cacheline size for the boundary markers.
    #[arg(long, value_name = "BYTES", default_value_t = 64)]
    cacheline_size: u32,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

pub fn run(args: PaholeArgs, out: &mut dyn Write, via: Via<'_>) -> kpeek::Result<()> {
    let names: Vec<String> = args.class_name.into_iter().chain(args.names).collect();
    let opts = PaholeOptions {
        hex: args.hex,
        expand_types: args.expand_types,
        cacheline_size: args.cacheline_size,
    };
    let file = match (&args.btf, &args.vmlinux, via) {
        (Some(b), _, _) => TypeFile::Btf(b),
        // kpeek rpc: the vmlinux it keeps open.
        (None, Some(v), Via::Gdb(gdb)) if Some(v.as_path()) == gdb.vmlinux => {
            TypeFile::Opened(gdb.debug)
        }
        // kpeek rpc with no vmlinux: the kernel's own BTF.
        (None, None, Via::Gdb(gdb)) => TypeFile::Opened(gdb.debug),
        (None, Some(v), _) => TypeFile::Dwarf(v),
        (None, None, _) => return Err(Error::Usage("--vmlinux or --btf is required".into())),
    };
    let mut slot = None;
    let di = file.open(args.cacheline_size, &mut slot)?;
    match (args.format, args.all) {
        (Format::Json, true) => write_json(out, &all_layouts(di, args.cacheline_size)?),
        (Format::Json, false) => write_json(out, &layouts(di, &names, args.cacheline_size)?),
        (Format::Human, true) => render_pahole_all(di, &opts, out),
        (Format::Human, false) => {
            check_names(di, &names)?;
            render_pahole(di, &names, &opts, out)
        }
    }
}
