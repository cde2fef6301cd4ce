#!/usr/bin/env bash
# Debian's real 6.1 distro vmlinux (the newest linux-image-6.1.0-N-amd64-dbg;
# the vmlinux is about 630 MB, DWARF 5) for benches/compare.py, linked into
# target/bench/distro/. benches/matrix.sh fetches and caches it (outside the
# clone, with the kernel's dumps); nothing of it is committed.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=target/bench/distro
abi=${KPEEK_DISTRO_ABI:-$(benches/matrix.sh --latest 6.1 --resolve)}
cache=$(benches/matrix.sh "$abi" --dir)
[ -f "$cache/vmlinux" ] || benches/matrix.sh "$abi" >&2
mkdir -p "$dest"
rm -f "$dest"/vmlinux-*
ln -s "$cache/vmlinux" "$dest/vmlinux-$abi"
ls -laL "$dest"/vmlinux-*
