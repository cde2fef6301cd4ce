//! The layers point one way: no module of the library names a module of a
//! layer above its own (docs/ARCHITECTURE.md has the picture). Checked on
//! the source text: every `crate::...` path outside comments and test
//! modules, resolved to the longest layer prefix below.

use std::path::{Path, PathBuf};

/// Path prefixes under `src/` and their layer, lowest first. The longest
/// prefix that matches a file (or a `crate::` path) decides.
const LAYERS: &[(&str, u8)] = &[
    ("addr", 0),
    ("error", 0),
    ("bytes", 0),
    ("text", 0),
    ("memory", 1),
    ("arch/x86_64/regs", 1),
    ("notes", 2),
    ("debuginfo", 2),
    ("dump", 3),
    ("live", 3),
    ("arch", 3),
    ("kernel", 4),
    ("report", 5),
    ("locate", 5),
    ("render", 6),
    ("gdbserver", 7),
    ("rpc", 7),
    ("cli", 8),
];

fn layer_of(path: &str) -> Option<(&'static str, u8)> {
    LAYERS
        .iter()
        .filter(|(prefix, _)| {
            path == *prefix
                || path.starts_with(&format!("{prefix}/"))
                || path.starts_with(&format!("{prefix}."))
        })
        .max_by_key(|(prefix, _)| prefix.len())
        .copied()
}

/// The `crate::` paths a file's code names, as `a/b/c` (test modules and
/// comments left out).
fn crate_paths(text: &str) -> Vec<String> {
    let code = text.split("#[cfg(test)]").next().unwrap_or("");
    let mut out = Vec::new();
    for line in code.lines() {
        let line = line.split("//").next().unwrap_or("");
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                // `crate::{a, b::c}`: each first segment.
                let inner = group.split('}').next().unwrap_or("");
                for item in inner.split(',') {
                    out.push(item.trim().replace("::", "/"));
                }
                continue;
            }
            let path: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            let segments: Vec<&str> = path
                .split("::")
                .take_while(|s| s.chars().next().is_some_and(|c| c.is_ascii_lowercase()))
                .collect();
            out.push(segments.join("/"));
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every violation in `src/`: (file, its layer, the path it names, that
/// path's layer).
fn violations(src: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut found = Vec::new();
    for file in files {
        let rel = file
            .strip_prefix(src)
            .expect("under src/")
            .to_string_lossy()
            .trim_end_matches(".rs")
            .trim_end_matches("/mod")
            .to_owned();
        let Some((_, mine)) = layer_of(&rel) else {
            assert!(
                rel == "lib" || rel == "main",
                "src/{rel}.rs is in no layer: add it to LAYERS"
            );
            continue;
        };
        let text = std::fs::read_to_string(&file).expect("readable");
        for path in crate_paths(&text) {
            // `crate::Error`, `crate::VERSION`: the crate root's own items.
            let Some((prefix, theirs)) = layer_of(&path) else {
                continue;
            };
            if theirs > mine {
                found.push(format!(
                    "src/{rel}.rs (layer {mine}) names crate::{} (`{prefix}`, layer {theirs})",
                    path.replace('/', "::")
                ));
            }
        }
    }
    found
}

#[test]
fn no_module_names_a_layer_above_its_own() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found = violations(&src);
    assert!(
        found.is_empty(),
        "upward dependencies:\n{}",
        found.join("\n")
    );
}

/// The check finds what it is for: an upward `use`, a braced group, a
/// path in an expression; and leaves comments and tests alone.
#[test]
fn the_check_sees_upward_paths() {
    let text = "use crate::kernel::Program;\nuse crate::{addr::VirtAddr, report};\n\
                let x = crate::render::ps::table(); // crate::cli\n#[cfg(test)]\nuse crate::cli;";
    assert_eq!(
        crate_paths(text),
        ["kernel", "addr/VirtAddr", "report", "render/ps/table"]
    );
    assert_eq!(layer_of("arch/x86_64/regs"), Some(("arch/x86_64/regs", 1)));
    assert_eq!(layer_of("arch/x86_64/paging"), Some(("arch", 3)));
    assert_eq!(layer_of("debuginfo/types"), Some(("debuginfo", 2)));
}
