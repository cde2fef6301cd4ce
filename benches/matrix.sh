#!/usr/bin/env bash
# The distro-kernel matrix (issue 16): one Debian kernel, booted with the
# fixture workload, dumped, with the guest's truth.
#
#   benches/matrix.sh ABI            e.g. 7.2.13+deb14-amd64, 5.10.0-32-amd64
#   benches/matrix.sh --latest SERIES   the newest ABI of SERIES in the suites
#                                        (e.g. --latest 7, --latest 5.10)
#   benches/matrix.sh ABI --dir         only print ABI's cache directory
#   benches/matrix.sh --latest SERIES --resolve   only print the ABI
#
# For ABI it downloads, with an apt configuration of its own (suites
# bullseye, bookworm, bookworm-security and sid; never the machine's lists):
#   linux-image-ABI (or, in newer Debian, linux-binary-ABI and
#   linux-modules-ABI) and linux-image-ABI-dbg (about 1 GB: one at a time),
# keeps only vmlinuz, the -dbg vmlinux and qemu_fw_cfg.ko, and boots the
# kernel under QEMU twice with the 6.1 fixture's initramfs (the workload
# and the truth recorder): once with `-device vmcoreinfo`, once without,
# dumping each with QMP dump-guest-memory (ELF). Debian builds qemu_fw_cfg
# (which hands QEMU the VMCOREINFO address) as a module: it is put into an
# extra initramfs layer as the file the fixture's /init loads
# (/lib/modules/kpeek_fixture.ko), so the guest's /proc/modules lists it.
#
# Everything is cached outside the clone, keyed by ABI:
#   ${KPEEK_MATRIX_CACHE:-${XDG_CACHE_HOME:-~/.cache}/kpeek-matrix}/ABI/
#     vmlinux  vmlinuz  qemu_fw_cfg.ko  release
#     vmcoreinfo/{vmcore.elf,truth.jsonl,console.log}
#     plain/{vmcore.elf,truth.jsonl,console.log}
# A second run reuses what is there (FORCE=1 boots again). tests/matrix.rs
# checks whatever ABIs are cached.
#
# The Debian mirror is KPEEK_DEBIAN_MIRROR if set, else the first Debian
# archive this machine's own apt sources name (read at run time); the
# security suite comes from KPEEK_DEBIAN_SECURITY_MIRROR, else the machine's
# security source, else the mirror's URL with "-security".
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

cache_root=${KPEEK_MATRIX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kpeek-matrix}
mkdir -p "$cache_root"

# --- apt, on its own lists ---------------------------------------------------
machine_uris() {
    # Every URI the machine's apt sources name (deb822 and one-line forms).
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
        awk '/^URIs:/ { for (i = 2; i <= NF; i++) print $i }
             /^deb / { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; break } }' || true
}
uris=$(machine_uris)
mirror=${KPEEK_DEBIAN_MIRROR:-$(grep -v -- '-security' <<<"$uris" | grep -m1 '/debian/*$' || true)}
[ -n "$mirror" ] || { echo "matrix: set KPEEK_DEBIAN_MIRROR to a Debian archive URL" >&2; exit 1; }
mirror=${mirror%/}
security=${KPEEK_DEBIAN_SECURITY_MIRROR:-$(grep -m1 -- '-security/*$' <<<"$uris" || echo "$mirror-security")}
security=${security%/}
apt_dir=$cache_root/apt
mkdir -p "$apt_dir"/lists/partial "$apt_dir"/cache/archives/partial "$apt_dir"/parts
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
{
    for suite in bullseye bookworm sid; do
        echo "deb [signed-by=$keyring] $mirror $suite main"
    done
    echo "deb [signed-by=$keyring] $security bookworm-security main"
} > "$apt_dir/sources.list"
APT=(-o "Dir::Etc::sourcelist=$apt_dir/sources.list" -o "Dir::Etc::sourceparts=$apt_dir/parts"
     -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache" -o Debug::NoLocking=1
     -o APT::Sandbox::User=root)
# The suites' lists, refreshed once a day.
if [ -z "$(find "$apt_dir/lists" -name '*_Packages*' -mtime -1 2>/dev/null | head -1)" ]; then
    apt-get "${APT[@]}" -q update >&2
fi
have() { apt-cache "${APT[@]}" show "$1" >/dev/null 2>&1; }

abi=${1:?usage: benches/matrix.sh ABI [--dir] | --latest SERIES [--resolve]}
if [ "$abi" = --latest ]; then
    series=${2:?--latest needs a series, e.g. 7 or 5.10}
    abi=$(apt-cache "${APT[@]}" search --names-only "^linux-image-${series//./\\.}([.][0-9]+)*[-+][0-9a-z.+]*-amd64-dbg\$" |
        cut -d' ' -f1 | sed -e 's/^linux-image-//' -e 's/-dbg$//' | grep -v -- '-rt-\|-cloud-' | sort -V | tail -1)
    [ -n "$abi" ] || { echo "matrix: no amd64 -dbg kernel of series $series in the suites" >&2; exit 1; }
    # --resolve: only name the ABI.
    if [ "${3:-}" = --resolve ]; then echo "$abi"; exit 0; fi
fi
dest=$cache_root/$abi
# --dir: only name the cache directory.
if [ "${2:-}" = --dir ]; then echo "$dest"; exit 0; fi
mkdir -p "$dest"
echo "matrix: $abi -> $dest" >&2

# --- the kernel, its vmlinux and qemu_fw_cfg ----------------------------------
fetch() { # packages not already downloaded into $dest
    local p
    for p in "$@"; do
        ls "$dest/${p}"_*.deb >/dev/null 2>&1 || (cd "$dest" && apt-get "${APT[@]}" -q download "$p" >&2)
    done
}
if [ ! -f "$dest/vmlinuz" ] || [ ! -f "$dest/modules.ok" ]; then
    if have "linux-binary-$abi"; then
        pkgs=("linux-binary-$abi" "linux-modules-$abi")
    else
        pkgs=("linux-image-$abi")
    fi
    fetch "${pkgs[@]}"
    tmp=$dest/x && rm -rf "$tmp" && mkdir -p "$tmp"
    for p in "${pkgs[@]}"; do
        dpkg-deb -x "$dest/${p}"_*.deb "$tmp"
    done
    # boot/vmlinuz-ABI, or (newer) usr/lib/modules/ABI/vmlinuz.
    for f in "$tmp/boot/vmlinuz-$abi" "$tmp/usr/lib/modules/$abi/vmlinuz"; do
        [ -f "$f" ] && cp "$f" "$dest/vmlinuz" && break
    done
    [ -f "$dest/vmlinuz" ] || { echo "matrix: no vmlinuz in ${pkgs[*]}" >&2; exit 1; }
    fw=$(find "$tmp/lib/modules/$abi" "$tmp/usr/lib/modules/$abi" -name 'qemu_fw_cfg.ko*' 2>/dev/null | head -1 || true)
    rm -f "$dest/qemu_fw_cfg.ko"
    case "$fw" in
        *.xz) xz -dc "$fw" > "$dest/qemu_fw_cfg.ko" ;;
        *.zst) zstd -qdc "$fw" > "$dest/qemu_fw_cfg.ko" ;;
        *.gz) gzip -dc "$fw" > "$dest/qemu_fw_cfg.ko" ;;
        ?*) cp "$fw" "$dest/qemu_fw_cfg.ko" ;;
        *) echo "matrix: no qemu_fw_cfg module (built in?)" >&2 ;;
    esac
    rm -rf "$tmp" "$dest"/*.deb
    touch "$dest/modules.ok"
fi
if [ ! -f "$dest/vmlinux" ]; then
    fetch "linux-image-$abi-dbg"
    # The vmlinux is under usr/lib/debug/lib/modules/ABI/ (newer) or
    # usr/lib/debug/boot/ (older); the other path may be a symlink.
    dpkg-deb --fsys-tarfile "$dest"/linux-image-"$abi"-dbg_*.deb |
        tar -x -C "$dest" --wildcards "./usr/lib/debug/lib/modules/$abi/vmlinux" "./usr/lib/debug/boot/vmlinux-$abi" 2>/dev/null || true
    for f in "$dest/usr/lib/debug/lib/modules/$abi/vmlinux" "$dest/usr/lib/debug/boot/vmlinux-$abi"; do
        if [ -f "$f" ] && [ ! -L "$f" ]; then
            mv "$f" "$dest/vmlinux"
            break
        fi
    done
    rm -rf "$dest/usr" "$dest"/*.deb
    [ -f "$dest/vmlinux" ] || { echo "matrix: no vmlinux in linux-image-$abi-dbg" >&2; exit 1; }
fi
echo "$abi" > "$dest/release"

# --- the guest's initramfs: the fixture's, plus qemu_fw_cfg --------------------
initrd=$repo/target/fixtures/linux-6.1/kernel/initramfs/main.cpio.gz
if [ ! -f "$initrd" ]; then
    mkdir -p "$repo/target/fixtures/linux-6.1/kernel"
    zstd --long=31 -qdc vmlinux-fixtures/linux-6.1/kernel.tar.zst |
        tar -x -C "$repo/target/fixtures/linux-6.1/kernel" initramfs/main.cpio.gz
fi
guest=$dest/guest.cpio.gz
cp "$initrd" "$guest"
if [ -f "$dest/qemu_fw_cfg.ko" ]; then
    # A newc cpio layer (the kernel unpacks concatenated archives in turn).
    python3 - "$dest/qemu_fw_cfg.ko" <<'PY' | gzip -1 >> "$guest"
import sys
def entry(name, mode, data=b""):
    name = name.encode() + b"\0"
    head = b"070701" + b"".join(b"%08X" % v for v in (
        0, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name), 0))
    out = head + name
    out += b"\0" * (-len(out) % 4) + data
    return out + b"\0" * (-len(out) % 4)
ko = open(sys.argv[1], "rb").read()
sys.stdout.buffer.write(entry("lib", 0o40755) + entry("lib/modules", 0o40755)
    + entry("lib/modules/kpeek_fixture.ko", 0o100644, ko) + entry("TRAILER!!!", 0))
PY
fi

# --- two boots, one QEMU at a time -----------------------------------------------
boot() { # name, extra run_guest.py flags...
    local name=$1 out=$dest/$1
    shift
    if [ -f "$out/vmcore.elf" ] && [ -z "${FORCE:-}" ]; then
        return
    fi
    rm -rf "$out"
    python3 vmlinux-fixtures/scripts/run_guest.py --kernel "$dest/vmlinuz" --initrd "$guest" \
        --out "$out" --mem 512M --timeout 600 "$@" dump:elf >&2
}
boot vmcoreinfo --vmcoreinfo
boot plain
ls -la "$dest"/vmlinux "$dest"/*/vmcore.elf
