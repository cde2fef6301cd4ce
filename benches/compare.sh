#!/usr/bin/env bash
# One command for the scoreboard: build kpeek, unpack the fixtures, run kpeek
# and the anchors side by side, write docs/PERFORMANCE.md.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q
cargo run --release -q --example tour > /dev/null          # unpacks target/fixtures
if ! python3 -c "import drgn" 2>/dev/null; then
    [ -x target/ci-venv/bin/python ] || { python3 -m venv target/ci-venv; target/ci-venv/bin/pip install -q drgn; }
    export DRGN_PYTHON=$PWD/target/ci-venv/bin/python
fi
if ! command -v crash >/dev/null && [ "$(id -u)" = 0 ]; then        # crash, for `foreach bt`
    apt-get install -y -q crash >/dev/null || echo "compare.sh: crash not installed; its rows are left out" >&2
fi
bash benches/bigdump.sh                                     # the 10,000-thread dump (target/bench)
bash benches/distro.sh                                      # Debian's distro vmlinux (target/bench)
bash benches/distro_dump.sh                                 # a dump of Debian's distro kernel (target/bench)
python3 benches/compare.py
