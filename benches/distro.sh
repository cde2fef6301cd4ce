#!/usr/bin/env bash
# Fetch Debian's real 6.1 distro vmlinux (linux-image-6.1.0-N-amd64-dbg,
# about 860 MB; the vmlinux is 630 MB, DWARF 5) into target/bench/distro/,
# for benches/compare.py. Nothing of it is committed.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=target/bench/distro
mkdir -p "$dest"
if ! ls "$dest"/vmlinux-* >/dev/null 2>&1; then
    pkg=$(apt-cache search --names-only 'linux-image-6.1.0-[0-9]+-amd64-dbg' | sort -V | tail -1 | cut -d' ' -f1)
    [ -n "$pkg" ] || { echo "no linux-image-6.1.0-*-amd64-dbg in apt's lists (apt-get update?)" >&2; exit 1; }
    (cd "$dest" && apt-get download -q "$pkg")
    dpkg-deb --fsys-tarfile "$dest"/"$pkg"_*.deb | tar -x -C "$dest" --wildcards './usr/lib/debug/boot/vmlinux-*'
    mv "$dest"/usr/lib/debug/boot/vmlinux-* "$dest"/
    rm -rf "$dest"/usr "$dest"/*.deb
fi
ls -la "$dest"/vmlinux-*
