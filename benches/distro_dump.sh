#!/usr/bin/env bash
# A dump of Debian's real 6.1 distro kernel, for the no-vmlinux rows of the
# scoreboard: fetch linux-image-6.1.0-N-amd64 (the same N as the -dbg
# vmlinux benches/distro.sh fetched), boot it under QEMU with the 6.1
# fixture's initramfs (the workload and the truth recorder; the fixture
# module does not load into this kernel), and dump it with QMP
# dump-guest-memory into target/bench/distro-dump/. Debian loads
# qemu_fw_cfg as a module, so this dump has no VMCOREINFO: kpeek must find
# the kernel and its kallsyms tables on its own. Nothing of it is committed.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=target/bench/distro-dump
dbg=$(ls target/bench/distro/vmlinux-* | head -1)
release=${dbg##*/vmlinux-}
if [ ! -f "$dest/out/vmcore.elf" ] || [ -n "${FORCE:-}" ]; then
    rm -rf "$dest" && mkdir -p "$dest"
    (cd "$dest" && apt-get download -q "linux-image-$release")
    dpkg-deb --fsys-tarfile "$dest"/linux-image-*.deb | tar -x -C "$dest" --wildcards './boot/vmlinuz-*'
    rm -f "$dest"/*.deb
    python3 vmlinux-fixtures/scripts/run_guest.py --kernel "$dest/boot/vmlinuz-$release" \
        --initrd target/fixtures/linux-6.1/kernel/initramfs/main.cpio.gz --out "$dest/out" \
        --mem 512M --vmcoreinfo --append "console=ttyS0 panic=-1" --timeout 300 dump:elf
fi
ls -la "$dest/out/vmcore.elf"
