#!/usr/bin/env bash
# Make a dump of a guest with many threads (default 10,000) for the
# benchmarks: the committed linux-6.12 fixture kernel with the initrd of
# benches/threads_initrd.sh. The guest's thread count comes along.
# Output: target/bench/bigdump/{vmcore.elf,truth.jsonl}.
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
benches/threads_initrd.sh "$n" "$out/initrd.cpio.gz"
kernel=$PWD/target/fixtures/linux-6.12/kernel
python3 vmlinux-fixtures/scripts/run_guest.py --kernel "$kernel/bzImage" --initrd "$out/initrd.cpio.gz" \
    --mem 2G --vmcoreinfo --append "init_on_free=1" --out "$out" --timeout 1200 dump:elf
python3 - "$out/truth.jsonl" <<'PY'
import json, sys
end = [json.loads(l) for l in open(sys.argv[1]) if l.startswith('{"kind":"end"')][-1]
print(f"the guest listed {end['threads']} threads in /proc")
PY
