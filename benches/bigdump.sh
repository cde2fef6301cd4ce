#!/usr/bin/env bash
# Make a dump of a guest with many threads (default 10,000) for the
# benchmarks: the committed linux-6.12 fixture kernel and initramfs, with a
# second cpio archive appended whose /init replaces the fixture's (the kernel
# unpacks concatenated archives in order, later files winning). The guest's
# thread count comes along. Output: target/bench/bigdump/{vmcore.elf,truth.jsonl}.
#   benches/bigdump.sh [THREADS]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000}
out=target/bench/bigdump
if [ -f "$out/vmcore.elf" ] && [ -z "${FORCE:-}" ]; then
    echo "$out/vmcore.elf exists (FORCE=1 to make it again)"
    exit 0
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)
[ -f target/fixtures/linux-6.12/kernel/bzImage ] || cargo run --release -q --example tour > /dev/null
kernel=$PWD/target/fixtures/linux-6.12/kernel
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cat > "$stage/init" <<INIT
#!/bin/sh
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /run && chmod 1777 /run
kpw mt $n &
while [ ! -e /run/ready.mt ]; do sleep 1; done
sleep 2
# Only the count: 10,000 threads of /proc would take minutes over a serial line.
echo "{\"kind\":\"end\",\"threads\":\$(ls -d /proc/[0-9]*/task/[0-9]* | wc -l)}" > /dev/ttyS1
wait
INIT
chmod 755 "$stage/init"
(cd "$stage" && echo init | cpio -o -H newc --quiet | gzip -1) > "$out/overlay.cpio.gz"
cat "$kernel/initramfs/main.cpio.gz" "$out/overlay.cpio.gz" > "$out/initrd.cpio.gz"
python3 vmlinux-fixtures/scripts/run_guest.py --kernel "$kernel/bzImage" --initrd "$out/initrd.cpio.gz" \
    --mem 2G --vmcoreinfo --append "init_on_free=1" --out "$out" --timeout 1200 dump:elf
python3 - "$out/truth.jsonl" <<'PY'
import json, sys
end = [json.loads(l) for l in open(sys.argv[1]) if l.startswith('{"kind":"end"')][-1]
print(f"the guest listed {end['threads']} threads in /proc")
PY
