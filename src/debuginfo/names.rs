//! C type names as pahole spells them: `struct list_head[4]`,
//! `void (*)(struct task_struct *)`.

use super::types::{truncate, DepthGuard, Qualifier, Type, TypeId};
use super::KernelDebugInfo;

impl KernelDebugInfo {
    /// The C name of a type, spelled as pahole spells it, with array
    /// dimensions appended (`char[16]`, `struct list_head[4]`).
    pub fn type_name(&self, id: Option<TypeId>) -> String {
        let mut name = self.tag_name(id, usize::MAX);
        let mut id = id;
        // Dimensions of arrays, through typedef-free array chains.
        while let Some(i) = id {
            match self.ty(i).as_deref() {
                Ok(Type::Array { elem, dims, .. }) => {
                    for d in dims {
                        name.push_str(&format!("[{d}]"));
                    }
                    id = *elem;
                }
                _ => break,
            }
        }
        name
    }

    /// pahole's `__tag__name`, including its fixed-size buffers: the result
    /// is cut to `len - 1` bytes, as `snprintf` would.
    pub(crate) fn tag_name(&self, id: Option<TypeId>, len: usize) -> String {
        let Ok(_guard) = DepthGuard::enter() else {
            return truncate("<ERROR: type loop>".into(), len);
        };
        let Some(id) = id else {
            return truncate("void".into(), len);
        };
        let t = match self.ty(id) {
            Ok(t) => t,
            Err(_) => return truncate(format!("<ERROR: type {:#x} not found>", id.0), len),
        };
        let s = match &*t {
            Type::Base { name, .. } => name.clone().unwrap_or_else(|| "nameless base type!".into()),
            Type::Pointer { target } => return self.ptr_name(*target, len, "*"),
            Type::Reference { target } => return self.ptr_name(*target, len, "&"),
            Type::Qualified { qualifier, target } => {
                let inner = self.tag_name(*target, 128);
                match qualifier {
                    Qualifier::Const => format!("const {inner} "),
                    Qualifier::Volatile => format!("volatile {inner} "),
                    Qualifier::Restrict => format!("{inner} restrict "),
                    Qualifier::Atomic => String::new(),
                }
            }
            Type::Unspecified { .. } => {
                // pahole groups it with the qualifiers, with no prefix.
                "void ".to_string()
            }
            Type::Array { elem, .. } => return self.tag_name(*elem, len),
            Type::Subroutine { .. } => self.ftype_string(id, None, false, false, 0, true),
            Type::Struct(a) => format!("struct {}", a.name.as_deref().unwrap_or("")),
            Type::Union(a) => format!("union {}", a.name.as_deref().unwrap_or("")),
            Type::Enum(e) => format!("enum {}", e.name.as_deref().unwrap_or("")),
            Type::Typedef { name, .. } | Type::Other { name, .. } => {
                name.clone().unwrap_or_default()
            }
        };
        truncate(s, len)
    }

    fn ptr_name(&self, target: Option<TypeId>, len: usize, suffix: &str) -> String {
        let Some(mut t) = target else {
            return truncate(format!("void {suffix}"), len);
        };
        let mut const_pointer = "";
        if let Ok(ty) = self.ty(t) {
            if let Type::Qualified {
                qualifier: Qualifier::Const,
                target: Some(next),
            } = &*ty
            {
                if matches!(self.ty(*next).as_deref(), Ok(Type::Pointer { .. })) {
                    const_pointer = "const ";
                    t = *next;
                }
            }
        }
        let inner = self.tag_name(Some(t), 1024);
        truncate(format!("{inner} {const_pointer}{suffix}"), len)
    }

    /// pahole's `ftype__fprintf` of a subroutine type: `ret (*name)(params)`.
    pub(crate) fn ftype_string(
        &self,
        id: TypeId,
        name: Option<&str>,
        inlined: bool,
        is_pointer: bool,
        type_spacing: i32,
        is_prototype: bool,
    ) -> String {
        let Ok(t) = self.ty(id) else {
            return String::new();
        };
        let Type::Subroutine {
            ret,
            params,
            variadic,
        } = &*t
        else {
            return String::new();
        };
        let stype = self.tag_name(*ret, 128);
        let mut s = format!(
            "{}{:<w$} {}{}{}{}",
            if inlined { "inline " } else { "" },
            stype,
            if is_prototype { "(" } else { "" },
            if is_pointer { "*" } else { "" },
            name.unwrap_or(""),
            if is_prototype { ")" } else { "" },
            w = type_spacing.unsigned_abs() as usize
        );
        s.push('(');
        let mut first = true;
        for p in params {
            if !first {
                s.push_str(", ");
            }
            first = false;
            let Some(pid) = p else {
                s.push_str("void");
                continue;
            };
            let pt = match self.ty(*pid) {
                Ok(pt) => pt,
                Err(_) => {
                    s.push_str(&format!("<ERROR: type {} not found>", pid.0));
                    continue;
                }
            };
            match &*pt {
                Type::Pointer {
                    target: Some(inner),
                } if matches!(self.ty(*inner).as_deref(), Ok(Type::Subroutine { .. })) => {
                    s.push_str(&self.ftype_string(*inner, None, false, true, 0, true));
                }
                Type::Subroutine { .. } => {
                    s.push_str(&self.ftype_string(*pid, None, true, false, 0, false));
                }
                _ => s.push_str(&self.tag_name(Some(*pid), 128)),
            }
        }
        if first {
            s.push_str("void)");
        } else if *variadic {
            s.push_str(", ...)");
        } else {
            s.push(')');
        }
        s
    }
}
