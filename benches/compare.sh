#!/usr/bin/env bash
# One command for the scoreboard: build kpeek, unpack the fixtures, run kpeek
# and the anchors side by side, write docs/PERFORMANCE.md.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q
cargo run --release -q --example tour > /dev/null          # unpacks target/fixtures
# The newest drgn from PyPI, in a venv of its own (upgraded on every run).
[ -x target/bench-venv/bin/python ] || python3 -m venv target/bench-venv
target/bench-venv/bin/pip install -q -U drgn
export DRGN_PYTHON=$PWD/target/bench-venv/bin/python
# The newest crash: Debian sid's, in a cached debootstrap chroot of sid
# (benches/crash9.sh builds it on first use; needs root).
if [ "$(id -u)" = 0 ]; then
    bash benches/crash9.sh --version || echo "compare.sh: no crash chroot; crash's rows are left out" >&2
else
    echo "compare.sh: not root, so no crash chroot; crash's rows are left out" >&2
fi
bash benches/bigdump.sh                                     # the 10,000-thread dump (target/bench)
bash benches/distro.sh                                      # Debian's distro vmlinux (target/bench)
bash benches/distro_dump.sh                                 # a dump of Debian's distro kernel (target/bench)
python3 benches/compare.py                                  # issue 24's rows (distro_speed_rows) need the dump benches/matrix.sh makes (distro_dump.sh runs it)
