//! Code addresses to source lines, with inlined functions (addr2line).

use std::cell::RefCell;
use std::collections::HashMap;

use gimli::{EndianSlice, LittleEndian};
use serde::Serialize;

use super::{KernelDebugInfo, R};
use crate::addr::LinkAddr;
use crate::error::{Error, Result};

/// One source-level frame at a code address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SourceFrame {
    /// The function (for an inlined frame, the inlined function).
    pub function: Option<String>,
    /// The file, relative to the kernel's source tree when it is inside it.
    pub file: Option<String>,
    /// The line.
    pub line: Option<u32>,
    /// Whether this function was inlined into the next frame's.
    pub inlined: bool,
}

/// Source lines of one vmlinux. Building it is cheap; each compilation
/// unit's line program is decoded the first time an address in it is
/// asked for, and answers are cached.
pub struct Lines<'a> {
    context: addr2line::Context<R<'a>>,
    /// The build directory of the first unit, stripped from file names.
    root: Option<String>,
    cache: RefCell<HashMap<u64, Vec<SourceFrame>>>,
}

impl KernelDebugInfo {
    /// Source lines (`.debug_line`, `.debug_info`, ranges) of this image.
    pub fn lines(&self) -> Result<Lines<'_>> {
        let section = |id: gimli::SectionId| -> std::result::Result<R<'_>, gimli::Error> {
            let data = self.section(id.name()).map_or(&[][..], |(_, d)| d);
            Ok(EndianSlice::new(data, LittleEndian))
        };
        let dwarf = gimli::Dwarf::load(section).map_err(|e| Error::BadDwarf {
            what: e.to_string(),
        })?;
        let root = first_comp_dir(&dwarf);
        let context = addr2line::Context::from_dwarf(dwarf).map_err(|e| Error::BadDwarf {
            what: format!("line tables: {e}"),
        })?;
        Ok(Lines {
            context,
            root,
            cache: RefCell::new(HashMap::new()),
        })
    }
}

fn first_comp_dir(dwarf: &gimli::Dwarf<R<'_>>) -> Option<String> {
    let header = dwarf.units().next().ok()??;
    let unit = dwarf.unit(header).ok()?;
    let dir = unit.comp_dir?;
    let dir = String::from_utf8_lossy(dir.slice()).into_owned();
    (!dir.is_empty()).then(|| format!("{}/", dir.trim_end_matches('/')))
}

impl Lines<'_> {
    /// The source frames at a link-time address, innermost (most deeply
    /// inlined) first, the containing function last. Empty when the
    /// address has no line information.
    pub fn frames(&self, addr: LinkAddr) -> Vec<SourceFrame> {
        if let Some(hit) = self.cache.borrow().get(&addr.get()) {
            return hit.clone();
        }
        let found = self.lookup(addr.get()).unwrap_or_default();
        self.cache.borrow_mut().insert(addr.get(), found.clone());
        found
    }

    fn lookup(&self, addr: u64) -> std::result::Result<Vec<SourceFrame>, gimli::Error> {
        let mut iter = self.context.find_frames(addr).skip_all_loads()?;
        let mut out = Vec::new();
        while let Some(frame) = iter.next()? {
            let function = frame
                .function
                .as_ref()
                .and_then(|f| f.raw_name().ok())
                .map(|n| n.into_owned());
            let (file, line) = match &frame.location {
                Some(l) => (l.file.map(|f| self.relative(f)), l.line),
                None => (None, None),
            };
            out.push(SourceFrame {
                function,
                file,
                line,
                inlined: true,
            });
            if out.len() > 64 {
                break;
            }
        }
        if let Some(last) = out.last_mut() {
            last.inlined = false;
        }
        Ok(out)
    }

    fn relative(&self, file: &str) -> String {
        let file = match &self.root {
            Some(root) => file.strip_prefix(root.as_str()).unwrap_or(file),
            None => file,
        };
        file.strip_prefix("./").unwrap_or(file).to_owned()
    }
}
