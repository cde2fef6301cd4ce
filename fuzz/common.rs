//! Lookups shared by the BTF and DWARF targets.

use kpeek::dwarf::DebugInfo;

/// Ask for the types and members kpeek's listings use.
pub fn poke_types(di: &DebugInfo) {
    for name in ["task_struct", "list_head", "int", "char", "mm_struct", "x"] {
        let _ = di.find_type(name);
        let _ = di.type_size(name);
        let _ = di.layout(name, 64);
    }
    let _ = di.member("task_struct", "tasks.next");
    let _ = di.member("task_struct", "comm");
    let _ = di.member("list_head", "next");
    let _ = di.has_member("task_struct", "pid");
    let _ = di.enumerator("TASK_COMM_LEN");
}
