//! Frames for people: the kernel's name for each pc (`function+off/size
//! [module]`), source lines and inlined functions, and `/proc/PID/stack`.

use serde::Serialize;

use super::load::ModuleCode;
use super::{FrameKind, Stack, Unwinder, PROC_STACK_DEPTH};
use crate::addr::{LinkAddr, VirtAddr};
use crate::kernel::program::read_kernel;

/// A symbol for a code address, the way the kernel names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CodeSymbol {
    /// The function (kallsyms name).
    pub function: String,
    /// Offset of the address into it.
    pub offset: u64,
    /// Its size, as kallsyms computes it.
    pub size: u64,
    /// The module it belongs to, if not the kernel image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
}

impl CodeSymbol {
    /// `function+0xoff/0xsize [module]`, as `%pB` prints it.
    pub fn display(&self) -> String {
        let mut s = format!("{}+{:#x}/{:#x}", self.function, self.offset, self.size);
        if let Some(m) = &self.module {
            s.push_str(&format!(" [{m}]"));
        }
        s
    }
}

impl Unwinder<'_> {
    pub(super) fn module_of(&self, ip: u64) -> Option<&ModuleCode> {
        self.modules
            .iter()
            .find(|m| m.text.0 <= ip && ip < m.text.1)
    }

    /// `__kernel_text_address()`: the kernel's text or a module's.
    pub fn is_kernel_text(&self, ip: u64) -> bool {
        (self.text.0 <= ip && ip < self.text.1) || self.module_of(ip).is_some()
    }

    /// Kernel text, a module's, or the kernel's init text: where a frame's
    /// pc can be.
    pub(super) fn is_code(&self, ip: u64) -> bool {
        self.is_kernel_text(ip) || self.init_text.is_some_and(|(s, e)| s <= ip && ip < e)
    }

    /// `in_sched_functions()`: scheduler and lock code, which
    /// `/proc/PID/stack` leaves out.
    pub fn in_sched_functions(&self, ip: u64) -> bool {
        self.sched.iter().any(|&(s, e)| s <= ip && ip < e)
    }

    /// The kernel's name for a code address. With `return_address`, the
    /// symbol is looked up for `pc - 1` (the call), as `%pB` does, but the
    /// offset is still that of `pc`.
    pub fn symbolize(&self, pc: u64, return_address: bool) -> Option<CodeSymbol> {
        let look = if return_address {
            pc.wrapping_sub(1)
        } else {
            pc
        };
        if let Some(m) = self.module_of(look) {
            let pos = m.symbols.partition_point(|&(v, _)| v <= look);
            let (value, name_at) = *m.symbols.get(pos.checked_sub(1)?)?;
            let next = m
                .symbols
                .get(pos..)?
                .iter()
                .map(|&(v, _)| v)
                .find(|&v| v > look)
                .unwrap_or(m.text.1);
            let function = self.module_symbol_name(name_at)?;
            return Some(CodeSymbol {
                function,
                offset: pc.wrapping_sub(value),
                size: next.saturating_sub(value),
                module: Some(m.name.clone()),
            });
        }
        let offset = self.prog.located.layout.kaslr_offset;
        let (sym, _) = self
            .prog
            .debug
            .kallsyms_at(LinkAddr(look.wrapping_sub(offset)))?;
        let start = sym.addr.get().wrapping_add(offset);
        Some(CodeSymbol {
            function: sym.name,
            offset: pc.wrapping_sub(start),
            size: sym.size,
            module: None,
        })
    }

    /// The module symbol (function or object, data included) whose extent
    /// holds `addr`: (name, offset into it, module).
    pub fn module_object_at(&self, addr: u64) -> Option<(String, u64, String)> {
        self.modules.iter().find_map(|m| {
            let pos = m.sized.partition_point(|&(v, _, _)| v <= addr);
            let &(value, size, name_at) = m.sized.get(pos.checked_sub(1)?)?;
            let offset = addr - value;
            (offset < size)
                .then(|| Some((self.module_symbol_name(name_at)?, offset, m.name.clone())))?
        })
    }

    /// `THREAD_SIZE`: the size of a task's kernel stack.
    pub fn thread_size(&self) -> u64 {
        self.thread_size
    }

    fn module_symbol_name(&self, at: u64) -> Option<String> {
        if let Ok(cache) = self.module_names.lock() {
            if let Some(n) = cache.get(&at) {
                return Some(n.clone());
            }
        }
        let mut buf = [0u8; 128];
        // The name may end near a page boundary: read less if need be.
        let mut len = buf.len();
        while read_kernel(self.prog, VirtAddr(at), &mut buf[..len]).is_err() {
            len /= 2;
            if len < 8 {
                return None;
            }
        }
        let end = buf[..len].iter().position(|&b| b == 0)?;
        let name = String::from_utf8_lossy(&buf[..end]).into_owned();
        if let Ok(mut cache) = self.module_names.lock() {
            cache.insert(at, name.clone());
        }
        Some(name)
    }

    /// What `/proc/PID/stack` shows for this stack: the frames'
    /// pcs while they are kernel text, without the scheduler's own frames,
    /// at most 64, each as `[<0>] function+0xoff/0xsize`. It ends where the
    /// kernel's unwinder would have stopped (before frames only DWARF CFI
    /// could find).
    pub fn proc_stack(&self, stack: &Stack) -> Vec<String> {
        let mut lines = Vec::new();
        for frame in &stack.frames {
            let pc = frame.pc.0;
            if frame.kind == FrameKind::Cfi || !self.is_kernel_text(pc) {
                break;
            }
            if self.in_sched_functions(pc) {
                continue;
            }
            if lines.len() >= PROC_STACK_DEPTH {
                break;
            }
            let name = self
                .symbolize(pc, true)
                .map_or_else(|| format!("0x{pc:x}"), |s| s.display());
            lines.push(format!("[<0>] {name}"));
        }
        lines
    }
}

/// A frame as shown to people and in JSON: the kernel's name for the pc,
/// and its source line when the debug info has one. An inlined function
/// is a frame of its own, before the frame of the function it was inlined
/// into, with the same pc (as drgn and GDB show them).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FrameView {
    /// The pc.
    pub pc: VirtAddr,
    /// The stack pointer.
    pub sp: VirtAddr,
    /// How the pc was found.
    pub kind: FrameKind,
    /// The function: kallsyms' name, or the inlined function's.
    pub function: Option<String>,
    /// Offset of the pc into the function (not for inlined frames).
    pub offset: Option<u64>,
    /// The function's size as kallsyms has it (not for inlined frames).
    pub size: Option<u64>,
    /// The module, for module code.
    pub module: Option<String>,
    /// The source file.
    pub file: Option<String>,
    /// The source line.
    pub line: Option<u32>,
    /// Whether this is an inlined function's frame.
    pub inlined: bool,
    /// For `regs`/`iret` frames: the `struct pt_regs` the pc came from.
    pub regs: Option<VirtAddr>,
}

impl Unwinder<'_> {
    /// Name every frame, and with `lines`, give source lines and inlined
    /// functions.
    pub fn describe(
        &self,
        stack: &Stack,
        lines: Option<&crate::debuginfo::lines::Lines<'_>>,
    ) -> Vec<FrameView> {
        let offset = self.prog.located.layout.kaslr_offset;
        let mut out = Vec::with_capacity(stack.frames.len());
        for f in &stack.frames {
            let ret = f.is_return_address();
            let sym = self.symbolize(f.pc.0, ret);
            let look = if ret { f.pc.0.wrapping_sub(1) } else { f.pc.0 };
            let in_vmlinux = self.text.0 <= look && look < self.text.1;
            let mut sources = match lines {
                Some(l) if in_vmlinux => l.frames(LinkAddr(look.wrapping_sub(offset))),
                _ => Vec::new(),
            };
            let outer = sources.pop();
            for s in sources {
                out.push(FrameView {
                    pc: f.pc,
                    sp: f.sp,
                    kind: f.kind,
                    function: s.function,
                    offset: None,
                    size: None,
                    module: None,
                    file: s.file,
                    line: s.line,
                    inlined: true,
                    regs: None,
                });
            }
            let (file, line) = outer.map_or((None, None), |s| (s.file, s.line));
            out.push(FrameView {
                pc: f.pc,
                sp: f.sp,
                kind: f.kind,
                function: sym.as_ref().map(|s| s.function.clone()),
                offset: sym.as_ref().map(|s| s.offset),
                size: sym.as_ref().map(|s| s.size),
                module: sym.and_then(|s| s.module),
                file,
                line,
                inlined: false,
                regs: f.regs,
            });
        }
        out
    }
}
