//! `monitor` commands (`qRcmd`): kpeek's reports inside GDB.
//!
//! - `monitor ps [-T|--threads]`: the `kpeek ps` table;
//! - `monitor threads`: `kpeek threads` (thrd_showall);
//! - `monitor info`: the `kpeek info` summary (with its hung line);
//! - `monitor hung [--all-blocked]`: `kpeek hung` (blocked tasks by stack,
//!   the locks they wait on, owners, deadlock cycles);
//! - `monitor info version`: kpeek's version. Its being non-empty is what
//!   makes the kernel's GDB scripts (`scripts/gdb/linux/utils.py`,
//!   `get_gdbserver_type`) treat the server like QEMU's gdbstub, where thread
//!   N is CPU N−1;
//! - `monitor sym NAME...`: each symbol's run-time address (a per-CPU
//!   symbol's offset), from the vmlinux or, served without one, the dump's
//!   kallsyms: what a GDB without symbols needs to find things;
//! - `monitor help`.

use gdbstub::target::ext::monitor_cmd::{ConsoleOutput, MonitorCmd};

use super::{Session, Snapshot};
use crate::render;

/// Console output is sent in `O` packets of about this many bytes.
const CHUNK: usize = 2048;

const HELP: &str = "kpeek monitor commands:
  ps [-T|--threads]   the processes (or every thread), like `kpeek ps`
  threads             every thread, like `kpeek threads`
  info                the dump: format, release, KASLR, CPUs, like `kpeek info`
  info version        kpeek's version
  hung [--all-blocked]  tasks in D state by stack, their locks and owners, deadlocks, like `kpeek hung`
  sym NAME...         each symbol's run-time address (per-CPU symbols: their offset)
  help                this text";

impl MonitorCmd for Session<'_, '_> {
    fn handle_monitor_cmd(
        &mut self,
        cmd: &[u8],
        mut out: ConsoleOutput<'_>,
    ) -> Result<(), Self::Error> {
        let text = answer(
            self.snap,
            &String::from_utf8_lossy(cmd),
            "serving a crash dump read-only",
        );
        for chunk in text.chunks(CHUNK) {
            out.write_raw(chunk);
            out.flush();
        }
        Ok(())
    }
}

/// What `monitor CMD` prints over `snap`; `serving` says what the server
/// does (in `info version`).
pub fn answer(snap: &Snapshot<'_>, cmd: &str, serving: &str) -> Vec<u8> {
    use std::io::Write;
    let words: Vec<&str> = cmd.split_whitespace().collect();
    let mut text = Vec::new();
    let written = match words.as_slice() {
        [] | ["help"] => writeln!(text, "{HELP}"),
        ["info", "version"] => writeln!(text, "kpeek {} ({serving})", crate::VERSION),
        ["info"] => {
            // The hung line as `kpeek info` has it: read when asked, not
            // at every snapshot (serve --qemu gathers one at every stop).
            let mut info = snap.info.clone();
            info.hung = crate::report::hung::hung_summary(snap.prog);
            render::info::info(&mut text, &info).and_then(|()| {
                snap.notices
                    .iter()
                    .try_for_each(|n| writeln!(text, "warning: {}", render::escape(n)))
            })
        }
        ["ps", rest @ ..] => {
            let threads = rest.iter().any(|w| *w == "-T" || *w == "--threads");
            let rows = snap.tasks.tasks.iter();
            render::ps::table(
                &mut text,
                rows.filter(|t| threads || t.pid == t.tgid),
                threads,
            )
        }
        ["threads"] => render::ps::thrd_showall(&mut text, &snap.tasks.tasks),
        ["hung", rest @ ..] if rest.iter().all(|w| *w == "--all-blocked") => {
            let query = crate::kernel::hung::HungQuery {
                all_blocked: !rest.is_empty(),
            };
            match crate::report::hung::hung_report(snap.prog, query) {
                Ok(r) => render::hung::hung(&mut text, &r.body),
                Err(e) => writeln!(text, "kpeek: {e}"),
            }
        }
        ["sym", names @ ..] if !names.is_empty() => {
            let prog = snap.prog;
            names.iter().try_for_each(|name| {
                if prog.debug.is_percpu_symbol(name) {
                    let off = prog.debug.symbol(name).map_or(0, |s| s.addr.get());
                    writeln!(text, "{off:#018x} {name} (per-CPU offset)")
                } else {
                    match prog.symbol(name) {
                        Ok(a) => writeln!(text, "{:#018x} {name}", a.0),
                        Err(_) => writeln!(text, "no symbol {name}"),
                    }
                }
            })
        }
        _ => writeln!(
            text,
            "kpeek: unknown monitor command `{}`\n{HELP}",
            render::escape(cmd)
        ),
    };
    if let Err(e) = written {
        let _ = writeln!(text, "kpeek: {e}");
    }
    text
}
