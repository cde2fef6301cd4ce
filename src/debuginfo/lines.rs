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

/// Source lines of one vmlinux. Building it is cheap: `.debug_aranges`
/// says which compilation unit holds an address, and an addr2line context
/// over that one unit is made the first time an address in it is asked
/// for (a context over all of a distro vmlinux's ~3,000 units holds every
/// unit's abbreviations, about 85 MB; a backtrace of every task touches a
/// few dozen units). Addresses that `.debug_aranges` does not place go to
/// a context over the whole image, made only then. Answers are cached.
pub struct Lines<'a> {
    debug: &'a KernelDebugInfo,
    /// (start, end, unit offset in `.debug_info`), sorted by start.
    aranges: Vec<(u64, u64, u64)>,
    /// Per unit offset: its context (`None`: it did not parse).
    units: RefCell<HashMap<u64, Option<Box<addr2line::Context<R<'a>>>>>>,
    /// The whole image's context, when one was needed.
    whole: RefCell<Option<Option<Box<addr2line::Context<R<'a>>>>>>,
    /// The build directory of the first unit, stripped from file names.
    root: Option<String>,
    cache: RefCell<HashMap<u64, Vec<SourceFrame>>>,
}

impl KernelDebugInfo {
    /// Source lines (`.debug_line`, `.debug_info`, ranges) of this image.
    pub fn lines(&self) -> Result<Lines<'_>> {
        let dwarf = self.gimli_dwarf(None).map_err(|e| Error::BadDwarf {
            what: e.to_string(),
        })?;
        let root = first_comp_dir(&dwarf);
        let mut aranges = Vec::new();
        let mut headers = dwarf.debug_aranges.headers();
        while let Ok(Some(header)) = headers.next() {
            let unit = header.debug_info_offset().0 as u64;
            let mut entries = header.entries();
            while let Ok(Some(entry)) = entries.next() {
                let range = entry.range();
                if range.begin < range.end {
                    aranges.push((range.begin, range.end, unit));
                }
            }
        }
        aranges.sort_unstable();
        Ok(Lines {
            debug: self,
            aranges,
            units: RefCell::new(HashMap::new()),
            whole: RefCell::new(None),
            root,
            cache: RefCell::new(HashMap::new()),
        })
    }

    /// The DWARF sections for gimli; with `unit`, `.debug_info` cut down to
    /// that unit's bytes (unit-relative references stay right) and no
    /// `.debug_aranges`.
    fn gimli_dwarf(
        &self,
        unit: Option<(u64, u64)>,
    ) -> std::result::Result<gimli::Dwarf<R<'_>>, gimli::Error> {
        let section = |id: gimli::SectionId| -> std::result::Result<R<'_>, gimli::Error> {
            let mut data = self.section(id.name()).map_or(&[][..], |(_, d)| d);
            match (id, unit) {
                (gimli::SectionId::DebugInfo, Some((start, end))) => {
                    data = usize::try_from(start)
                        .ok()
                        .zip(usize::try_from(end).ok())
                        .and_then(|(s, e)| data.get(s..e))
                        .unwrap_or(&[]);
                }
                // Its offsets are of the whole .debug_info: addr2line then
                // takes the unit's ranges from the unit itself.
                (gimli::SectionId::DebugAranges, Some(_)) => data = &[],
                _ => {}
            }
            Ok(EndianSlice::new(data, LittleEndian))
        };
        gimli::Dwarf::load(section)
    }

    /// An addr2line context over one unit, or over the whole image.
    fn context(&self, unit: Option<(u64, u64)>) -> Option<Box<addr2line::Context<R<'_>>>> {
        let dwarf = self.gimli_dwarf(unit).ok()?;
        addr2line::Context::from_dwarf(dwarf).ok().map(Box::new)
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

    /// The unit `.debug_aranges` places `addr` in: its bounds.
    fn unit_at(&self, addr: u64) -> Option<(u64, u64)> {
        let pos = self.aranges.partition_point(|r| r.0 <= addr);
        let &(_, end, unit) = self.aranges.get(pos.checked_sub(1)?)?;
        if addr >= end {
            return None;
        }
        let info = self.debug.unit_of(unit).ok()?;
        (info.offset == unit).then_some((info.offset, info.end))
    }

    fn lookup(&self, addr: u64) -> std::result::Result<Vec<SourceFrame>, gimli::Error> {
        if let Some(unit) = self.unit_at(addr) {
            let mut units = self.units.borrow_mut();
            let context = units
                .entry(unit.0)
                .or_insert_with(|| self.debug.context(Some(unit)));
            // The unit .debug_aranges names holds the address: what it
            // says (maybe nothing, as for code without line information)
            // is the answer.
            return match context {
                Some(context) => self.frames_in(context, addr),
                None => Ok(Vec::new()),
            };
        }
        let mut whole = self.whole.borrow_mut();
        match whole.get_or_insert_with(|| self.debug.context(None)) {
            Some(context) => self.frames_in(context, addr),
            None => Ok(Vec::new()),
        }
    }

    fn frames_in(
        &self,
        context: &addr2line::Context<R<'_>>,
        addr: u64,
    ) -> std::result::Result<Vec<SourceFrame>, gimli::Error> {
        let mut iter = context.find_frames(addr).skip_all_loads()?;
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
