//! `kpeek read`: a hexdump of kernel memory, or its bytes as JSON.

use std::io::Write;

use clap::Args;
use kpeek::Error;

use super::output::emit;
use super::{Target, Via};

/// `kpeek read` options.
#[derive(Args, Debug)]
pub struct ReadArgs {
    #[command(flatten)]
    target: Target,
    /// A kernel virtual address (hex), a symbol, or with --phys a physical address.
    address: String,
    /// How many bytes (decimal, or hex with 0x).
    #[arg(default_value_t = 64, value_parser = parse_len)]
    len: usize,
    /// The address is physical.
    #[arg(long)]
    phys: bool,
}

fn parse_len(s: &str) -> Result<usize, String> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => usize::from_str_radix(hex, 16),
        None => s.parse(),
    }
    .map_err(|e| format!("{s}: {e}"))
}

pub fn run(args: ReadArgs, out: &mut dyn Write, via: Via<'_>) -> kpeek::Result<()> {
    if args.len > 1 << 24 {
        return Err(Error::Usage(format!(
            "{} bytes is more than kpeek read shows (16 MiB)",
            args.len
        )));
    }
    let prog = args.target.open(via)?;
    let addr = match u64::from_str_radix(args.address.trim_start_matches("0x"), 16) {
        Ok(a) => a,
        Err(_) if !args.phys => prog.symbol(&args.address)?.get(),
        Err(e) => return Err(Error::Usage(format!("{}: {e}", args.address))),
    };
    let report = kpeek::report::read::read(&prog, addr, args.len, args.phys)?;
    emit(out, args.target.format, &report, |out, b| {
        kpeek::render::info::hexdump(out, addr, &b.bytes)
    })
}
