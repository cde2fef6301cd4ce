//! The command line's side of finding a vmlinux (src/locate/): a
//! progress bar on stderr while debuginfod downloads (none when stderr is
//! not a terminal), and the search's notes.

use std::io::IsTerminal;
use std::path::Path;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use kpeek::locate::{debuginfod::Progress, Opened, Origin, Search};

/// What to open without a vmlinux.
#[derive(Clone, Copy)]
pub enum Unnamed<'a> {
    /// A dump file.
    Dump(&'a Path),
    /// The running kernel's `/proc/kcore` (or a file in its place).
    Kcore(&'a Path),
}

/// [`kpeek::locate::open_dump`] or [`kpeek::locate::open_kcore`], drawing
/// the download and printing what was skipped.
pub fn open_unnamed(
    what: Unnamed<'_>,
    options: &kpeek::kernel::OpenOptions,
    search: &Search,
) -> kpeek::Result<Opened> {
    let terminal = std::io::stderr().is_terminal();
    let mut bar: Option<ProgressBar> = None;
    let mut progress = |p: Progress<'_>| match p {
        Progress::Start { url, total } => {
            eprintln!("kpeek: downloading {url}");
            if terminal {
                let b = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
                let style = if total.is_some() {
                    "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} {eta}"
                } else {
                    "{spinner} {bytes} {bytes_per_sec}"
                };
                if let Ok(style) = ProgressStyle::with_template(style) {
                    b.set_style(style);
                }
                bar = Some(b);
            }
        }
        Progress::Bytes(n) => {
            if let Some(b) = &bar {
                b.set_position(n);
            }
        }
        Progress::Done => {
            if let Some(b) = bar.take() {
                b.finish_and_clear();
            }
        }
    };
    let opened = match what {
        Unnamed::Dump(core) => kpeek::locate::open_dump(core, options, search, &mut progress)?,
        Unnamed::Kcore(path) => kpeek::locate::open_kcore(path, options, search, &mut progress)?,
    };
    for note in &opened.notes {
        eprintln!("kpeek: note: {}", kpeek::render::escape(note));
    }
    if opened.origin == Origin::None && !opened.notes.is_empty() {
        eprintln!("kpeek: note: no matching vmlinux: using the kernel's own kallsyms and BTF");
    }
    Ok(opened)
}
