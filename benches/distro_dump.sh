#!/usr/bin/env bash
# A dump of Debian's real 6.1 distro kernel, for the no-vmlinux rows of the
# scoreboard: benches/matrix.sh boots the same kernel benches/distro.sh
# fetched with the fixture workload and dumps it; this links its dump taken
# without `-device vmcoreinfo` into target/bench/distro-dump/out/: kpeek
# must find the kernel and its kallsyms tables on its own. Nothing of it is
# committed.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=target/bench/distro-dump/out
dbg=$(ls target/bench/distro/vmlinux-* | head -1)
abi=${dbg##*/vmlinux-}
cache=$(benches/matrix.sh "$abi" --dir)
[ -f "$cache/plain/vmcore.elf" ] && [ -z "${FORCE:-}" ] || benches/matrix.sh "$abi" >&2
mkdir -p "$dest"
for f in vmcore.elf truth.jsonl console.log; do
    ln -sf "$cache/plain/$f" "$dest/$f"
done
ls -laL "$dest/vmcore.elf"
