#!/usr/bin/env bash
# Build one fixture kernel from Debian's linux-source-X.Y package.
#   build-kernel.sh VERSION DWARF_FRAG WORKDIR
# Produces WORKDIR/linux-VERSION/{vmlinux,arch/x86/boot/bzImage,scripts/gdb,...}.
set -euo pipefail
ver=$1 dwarf=$2 work=$3
here=$(cd "$(dirname "$0")/.." && pwd)
src=/usr/src/linux-source-$ver.tar.xz
tree=$work/linux-$ver
[ -f "$src" ] || { echo "missing $src: apt-get install linux-source-$ver" >&2; exit 1; }
if [ ! -f "$tree/Makefile" ]; then
    rm -rf "$tree" "$work/linux-source-$ver"
    mkdir -p "$work"
    tar -C "$work" -xf "$src"
    mv "$work/linux-source-$ver" "$tree"
fi
cd "$tree"
# Reuse a finished build when the configuration it was made from is unchanged.
want=$(cat "$here/config/common.frag" "$here/config/$dwarf" | sha256sum | cut -d' ' -f1)
if [ -f vmlinux ] && [ -f Module.symvers ] && [ "$(cat .kpeek-config-hash 2>/dev/null)" = "$want" ]; then
    echo "reusing $tree (configuration unchanged)"
    exit 0
fi
rm -f .kpeek-config-hash
make -s tinyconfig
scripts/kconfig/merge_config.sh -m .config "$here/config/common.frag" "$here/config/$dwarf" >/dev/null
make -s olddefconfig
# Every option of the fragments must have survived olddefconfig.
fail=0
while IFS= read -r line; do
    case $line in ''|'#'*) continue ;; esac
    opt=${line%%=*} val=${line#*=}
    if [ "$val" = n ]; then
        grep -q "^$opt=" .config && { echo "config: $opt should be off" >&2; fail=1; }
    else
        grep -qx "$line" .config || { echo "config: wanted $line, got: $(grep "^$opt=\|# $opt " .config)" >&2; fail=1; }
    fi
done < <(cat "$here/config/common.frag" "$here/config/$dwarf")
[ $fail = 0 ] || exit 1
# Fixed build identity so a rebuild from the same inputs is recognisable.
export KBUILD_BUILD_USER=kpeek KBUILD_BUILD_HOST=fixtures KBUILD_BUILD_TIMESTAMP="Sun Jan 1 00:00:00 UTC 2023"
# The build directory must not end up in the debug info (DW_AT_comp_dir,
# file names): the fixtures are committed. Each file is named under a
# neutral root instead (build-initramfs.sh does the same for the module).
export KCFLAGS="-fdebug-prefix-map=$tree=/usr/src/kpeek-fixture/linux-$ver"
make -j"$(nproc)" -s vmlinux bzImage scripts_gdb
make -j"$(nproc)" -s modules  # also writes Module.symvers for out-of-tree modules
echo "$want" > .kpeek-config-hash
echo "built $(make -s kernelrelease) in $tree"
