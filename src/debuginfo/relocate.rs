//! Applying `.rela.debug_*` to the debug sections of a relocatable object.
//!
//! Only `ET_REL` files need this (see the parent module's notes on
//! relocations); in them a reference from one debug section into another is
//! stored as zero plus a relocation against the target section's symbol.

use object::read::elf::ElfFile64;
use object::{Object, ObjectSection, ObjectSymbol, RelocationTarget};

/// Applies the relocations for the debug section `name` to `data`, a copy of
/// its (decompressed) contents.
pub(crate) fn apply(file: &[u8], name: &str, data: &mut [u8]) -> Result<(), String> {
    let elf = ElfFile64::<object::LittleEndian>::parse(file).map_err(|e| e.to_string())?;
    let Some(section) = elf.section_by_name(name) else {
        return Ok(());
    };
    for (offset, reloc) in section.relocations() {
        let RelocationTarget::Symbol(index) = reloc.target() else {
            continue;
        };
        let size = usize::from(reloc.size() / 8);
        if size == 0 || size > 8 {
            continue; // R_X86_64_NONE, or nothing a debug section holds
        }
        let symbol = elf
            .symbol_by_index(index)
            .map_err(|e| format!("{name}: relocation at {offset:#x}: {e}"))?;
        let value = symbol.address().wrapping_add(reloc.addend() as u64);
        let start = usize::try_from(offset).map_err(|e| e.to_string())?;
        let bytes = value.to_le_bytes();
        let Some(dst) = start
            .checked_add(size)
            .and_then(|end| data.get_mut(start..end))
        else {
            return Err(format!(
                "{name}: relocation at {offset:#x} is out of bounds"
            ));
        };
        dst.copy_from_slice(&bytes[..size]);
    }
    Ok(())
}
