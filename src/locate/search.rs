//! Where a kernel's debug files are: the places distributions install them,
//! then debuginfod.
//!
//! A candidate is accepted only if it is the kernel (or module) wanted: its
//! GNU build ID equals the dump's, or, when either side has none, its
//! `linux_banner` equals the dump's. Anything else is skipped with a note,
//! so a stale `/boot/vmlinux-R` of a rebuilt kernel never answers for it.

use std::path::{Path, PathBuf};

use object::{Object, ObjectSection, ObjectSymbol};

use super::debuginfod::{self, Client};
pub use crate::debuginfo::Origin;

/// What identifies the kernel (or module) whose debug file is wanted.
#[derive(Clone, Copy, Debug, Default)]
pub struct Wanted<'a> {
    /// The GNU build ID (VMCOREINFO `BUILD-ID`, or the image's `.notes`).
    pub build_id: Option<&'a [u8]>,
    /// The release (`uname -r`), which names the files distributions install.
    pub release: Option<&'a str>,
    /// The kernel's banner (`linux_banner`, without the NUL), the proof
    /// when there is no build ID.
    pub banner: Option<&'a [u8]>,
}

/// The result of a search: the file (if any) and what was tried on the way.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// The accepted file and where it came from.
    pub found: Option<(PathBuf, Origin)>,
    /// Candidates skipped and servers that failed, one line each.
    pub notes: Vec<String>,
    /// Whether a debuginfod server was asked (and so a miss is worth telling).
    pub asked_network: bool,
}

/// Where to look: file-system roots (`/` normally; tests use a temporary
/// directory) and, optionally, debuginfod.
#[derive(Clone, Debug)]
pub struct Search {
    /// The roots the distribution paths are taken under.
    pub roots: Vec<PathBuf>,
    /// The debuginfod client, if any server is set and the network allowed.
    pub debuginfod: Option<Client>,
}

impl Search {
    /// The system's search: `/`, and debuginfod from `$DEBUGINFOD_URLS`
    /// unless `network` is false.
    pub fn from_env(network: bool) -> Search {
        Search {
            roots: vec![PathBuf::from("/")],
            debuginfod: network.then(Client::from_env).flatten(),
        }
    }

    /// Find the vmlinux of the kernel `wanted` describes.
    pub fn vmlinux(
        &self,
        wanted: &Wanted<'_>,
        progress: &mut dyn FnMut(debuginfod::Progress<'_>),
    ) -> Outcome {
        let mut paths = Vec::new();
        for root in &self.roots {
            paths.extend(vmlinux_paths(root, wanted.release, wanted.build_id));
        }
        self.search(&paths, wanted, progress)
    }

    /// Find the debug file of a module (`name.ko`, with its build ID,
    /// from the module's `.note.gnu.build-id` in memory).
    pub fn module(
        &self,
        name: &str,
        build_id: &[u8],
        release: Option<&str>,
        progress: &mut dyn FnMut(debuginfod::Progress<'_>),
    ) -> Outcome {
        let mut paths = Vec::new();
        for root in &self.roots {
            paths.extend(module_paths(root, release, name, Some(build_id)));
        }
        let wanted = Wanted {
            build_id: Some(build_id),
            release,
            banner: None,
        };
        self.search(&paths, &wanted, progress)
    }

    fn search(
        &self,
        paths: &[PathBuf],
        wanted: &Wanted<'_>,
        progress: &mut dyn FnMut(debuginfod::Progress<'_>),
    ) -> Outcome {
        let mut out = Outcome::default();
        for path in paths {
            if !path.is_file() {
                continue;
            }
            match check(path, wanted) {
                Ok(()) => {
                    out.found = Some((
                        path.clone(),
                        Origin::Found {
                            path: path.display().to_string(),
                        },
                    ));
                    return out;
                }
                Err(why) => out.notes.push(format!("skipped {}: {why}", path.display())),
            }
        }
        let (Some(client), Some(id)) = (&self.debuginfod, wanted.build_id) else {
            return out;
        };
        out.asked_network = true;
        match client.find_debuginfo(id, progress) {
            Ok(fetched) => match check(&fetched.path, wanted) {
                Ok(()) => {
                    let path = fetched.path.display().to_string();
                    let origin = match fetched.url {
                        Some(url) => Origin::Debuginfod { url, path },
                        None => Origin::DebuginfodCache { path },
                    };
                    out.found = Some((fetched.path, origin));
                }
                Err(why) => {
                    out.notes.push(format!(
                        "skipped {} (debuginfod{}): {why}",
                        fetched.path.display(),
                        fetched
                            .url
                            .map_or(" cache".into(), |u| format!(", from {u}"))
                    ));
                    // Not what was asked: the next run asks again.
                    client.evict(id);
                }
            },
            Err(why) => out.notes.push(format!(
                "debuginfod has no debug file for build ID {}: {why}",
                debuginfod::hex(id)
            )),
        }
        out
    }
}

/// Where distributions put a kernel's vmlinux, under `root`:
/// Debian and Ubuntu `/usr/lib/debug/boot/vmlinux-R`, Fedora and SUSE
/// `/usr/lib/debug/lib/modules/R/vmlinux`, a kernel built in place
/// `/lib/modules/R/build/vmlinux`, `/boot/vmlinux-R`, and the build-ID
/// link `/usr/lib/debug/.build-id/xx/yyyy.debug` every distribution makes.
pub fn vmlinux_paths(root: &Path, release: Option<&str>, build_id: Option<&[u8]>) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    if let Some(id) = build_id {
        paths.extend(build_id_path(root, id));
    }
    if let Some(r) = release.filter(|r| is_plain_name(r)) {
        paths.push(root.join(format!("usr/lib/debug/boot/vmlinux-{r}")));
        paths.push(root.join(format!("usr/lib/debug/lib/modules/{r}/vmlinux")));
        paths.push(root.join(format!("lib/modules/{r}/build/vmlinux")));
        paths.push(root.join(format!("boot/vmlinux-{r}")));
    }
    paths
}

/// Where distributions put a module's debug file, under `root`: the
/// build-ID link, then `/usr/lib/debug/lib/modules/R/NAME.ko` and
/// `/lib/modules/R/build/NAME.ko` (a tree built in place, top level only).
pub fn module_paths(
    root: &Path,
    release: Option<&str>,
    name: &str,
    build_id: Option<&[u8]>,
) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    if let Some(id) = build_id {
        paths.extend(build_id_path(root, id));
    }
    if let Some(r) = release.filter(|r| is_plain_name(r)) {
        if is_plain_name(name) {
            paths.push(root.join(format!("usr/lib/debug/lib/modules/{r}/{name}.ko")));
            paths.push(root.join(format!("lib/modules/{r}/build/{name}.ko")));
        }
    }
    paths
}

/// `/usr/lib/debug/.build-id/xx/yyyy.debug`.
fn build_id_path(root: &Path, id: &[u8]) -> Option<PathBuf> {
    let hex = debuginfod::hex(id);
    (hex.len() > 2).then(|| {
        root.join("usr/lib/debug/.build-id")
            .join(&hex[..2])
            .join(format!("{}.debug", &hex[2..]))
    })
}

/// A release or module name read from a dump is only used as one path
/// component: no `/`, no `..`, nothing odd.
fn is_plain_name(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-+~".contains(&b))
}

/// Whether the ELF file at `path` is the one wanted: equal build IDs, or
/// (when either has none) equal banners. `Err` says why not.
pub fn check(path: &Path, wanted: &Wanted<'_>) -> Result<(), String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    // SAFETY: read-only private map of a file we only read; a file
    // truncated under us can fault, as with any mmap-based reader.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| e.to_string())?;
    let elf = object::File::parse(&*map).map_err(|e| format!("not an ELF file: {e}"))?;
    let have = elf.build_id().ok().flatten();
    if let (Some(want), Some(have)) = (wanted.build_id, have) {
        return if want == have {
            Ok(())
        } else {
            Err(format!(
                "build ID {}, not the dump's {}",
                debuginfod::hex(have),
                debuginfod::hex(want)
            ))
        };
    }
    let Some(want) = wanted.banner else {
        return Err(match (wanted.build_id, have) {
            (Some(_), None) => "it has no build ID, and the dump's banner is unknown".into(),
            _ => "the dump's build ID and banner are unknown: nothing to check it against".into(),
        });
    };
    let want = trim_banner(want);
    match banner(&elf) {
        Some(have) if trim_banner(have) == want => Ok(()),
        Some(have) => Err(format!(
            "banner {:?}, not the dump's {:?}",
            String::from_utf8_lossy(trim_banner(have)),
            String::from_utf8_lossy(want)
        )),
        None => Err("no build ID and no linux_banner to check".into()),
    }
}

fn trim_banner(b: &[u8]) -> &[u8] {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    b[..end].trim_ascii_end()
}

/// `linux_banner`'s bytes in the file.
fn banner<'a>(elf: &object::File<'a>) -> Option<&'a [u8]> {
    let sym = elf
        .symbols()
        .find(|s| s.name().is_ok_and(|n| n == "linux_banner"))?;
    let section = elf.section_by_index(sym.section_index()?).ok()?;
    let data = section.data().ok()?;
    let start = usize::try_from(sym.address().checked_sub(section.address())?).ok()?;
    let rest = data.get(start..)?;
    let len = rest.iter().position(|&c| c == 0).unwrap_or(rest.len());
    Some(&rest[..len])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distro_paths_by_build_id_then_release() {
        let root = Path::new("/r");
        let paths = vmlinux_paths(root, Some("6.1.0-13-amd64"), Some(&[0xab, 0xcd, 0xef]));
        let paths: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        assert_eq!(
            paths,
            [
                "/r/usr/lib/debug/.build-id/ab/cdef.debug",
                "/r/usr/lib/debug/boot/vmlinux-6.1.0-13-amd64",
                "/r/usr/lib/debug/lib/modules/6.1.0-13-amd64/vmlinux",
                "/r/lib/modules/6.1.0-13-amd64/build/vmlinux",
                "/r/boot/vmlinux-6.1.0-13-amd64",
            ]
        );
        // A release from a damaged dump never walks out of the root.
        assert!(vmlinux_paths(root, Some("../../etc"), None).is_empty());
        assert!(vmlinux_paths(root, Some(".."), None).is_empty());
        assert_eq!(
            module_paths(root, Some("6.1"), "ext4", None),
            [
                PathBuf::from("/r/usr/lib/debug/lib/modules/6.1/ext4.ko"),
                PathBuf::from("/r/lib/modules/6.1/build/ext4.ko"),
            ]
        );
    }

    #[test]
    fn origins_read_as_info_prints_them() {
        assert_eq!(Origin::None.to_string(), "none: BTF + kallsyms");
        assert_eq!(
            Origin::Found {
                path: "/boot/vmlinux-6.1".into()
            }
            .to_string(),
            "found at /boot/vmlinux-6.1"
        );
    }
}
