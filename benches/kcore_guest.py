#!/usr/bin/env python3
"""`kpeek ps --kcore` against `drgn -k` (its for_each_task listing,
benches/drgn_ps.py) on the running kernel, inside one QEMU guest: the
committed linux-6.12 fixture kernel booted with its workload, plus kpeek
(release, stripped), the vmlinux, and the Python interpreter with drgn and
exactly the modules drgn imports (found by importing them here), appended
to the fixture's initramfs. In the guest, after its truth is recorded, a
small driver times each command RUNS times (whole process, wall clock) and
prints the medians on ttyS2.

    python3 benches/kcore_guest.py            (after benches/compare.sh made
                                               target/bench-venv with drgn)

Prints a Markdown table. Needs qemu-system-x86_64 and objcopy.
"""
import gzip
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNS = int(os.environ.get("RUNS", "5"))
KPEEK = os.path.join(ROOT, "target", "release", "kpeek")
FIX = os.path.join(ROOT, "target", "fixtures", "linux-6.12", "kernel")
VENV_PY = os.environ.get("DRGN_PYTHON", os.path.join(ROOT, "target", "bench-venv", "bin", "python"))

# What drgn needs at run time: the modules it imports, listed by the venv's
# own interpreter (paths as they are on this machine; the guest gets the
# same paths).
PROBE = r"""
import os, sys, subprocess, statistics, time, json
import drgn
from drgn.helpers.linux.pid import for_each_task
from drgn.helpers.linux.sched import task_state_to_char
files = set()
for m in list(sys.modules.values()):
    f = getattr(m, "__file__", None)
    if f:
        files.add(os.path.realpath(f))
        # packages: their __init__ and directory
print(json.dumps({"files": sorted(files), "executable": os.path.realpath(sys.executable),
                  "prefix": sys.base_prefix, "site": [p for p in sys.path if p.endswith("site-packages")]}))
"""

DRIVER = r"""
import os, subprocess, statistics, sys, time
runs = int(sys.argv[1])
cmds = {
    "kpeek ps --threads --kcore --vmlinux": ["/bin/kpeek", "ps", "--threads", "--format", "json", "--kcore", "--vmlinux", "/vmlinux"],
    "kpeek ps --threads --kcore (no vmlinux: kallsyms + BTF)": ["/bin/kpeek", "ps", "--threads", "--format", "json", "--kcore", "--no-debuginfod"],
    "drgn -k: for_each_task (drgn_ps.py)": [sys.executable, "/bench/drgn_ps.py", "/vmlinux", "/proc/kcore"],
}
env = dict(os.environ, KPEEK_CACHE="off")
for name, cmd in cmds.items():
    walls = []
    lines = 0
    for _ in range(runs):
        t = time.perf_counter()
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        walls.append(time.perf_counter() - t)
        if r.returncode != 0:
            print(f"@@FAIL {name}: {r.stderr.decode(errors='replace')[:500]}", flush=True)
            break
        lines = r.stdout.count(b"\n")
    print(f"@@ROW {name}|{statistics.median(walls):.3f}|{len(walls)}|{lines}", flush=True)
print("@@DONE", flush=True)
"""


def cpio(entries):
    out = bytearray()
    ino = 0
    for name, mode, data in entries + [("TRAILER!!!", 0, b"")]:
        ino += 1
        nm = name.encode() + b"\0"
        out += b"070701" + b"".join(b"%08X" % v for v in (ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(nm), 0))
        out += nm
        out += b"\0" * (-len(out) % 4)
        out += data
        out += b"\0" * (-len(out) % 4)
    return bytes(out)


def main():
    import json
    work = tempfile.mkdtemp(prefix="kpeek-kcore-bench-")
    try:
        probe = json.loads(subprocess.run([VENV_PY, "-c", PROBE], capture_output=True, text=True, check=True).stdout)
        files = set(probe["files"])
        # Shared libraries of the interpreter, drgn's extension and kpeek.
        binaries = [probe["executable"], KPEEK] + [f for f in files if f.endswith(".so")]
        for b in binaries:
            for line in subprocess.run(["ldd", b], capture_output=True, text=True).stdout.splitlines():
                part = line.split("=>")[-1].strip().split(" ")[0]
                if part.startswith("/"):
                    files.add(os.path.realpath(part))
                    files.add(part)
        files.add(probe["executable"])
        stripped = os.path.join(work, "kpeek")
        subprocess.run(["objcopy", "--strip-debug", KPEEK, stripped], check=True)
        entries, dirs = [], set()

        def add(path, mode, data):
            parts = path.strip("/").split("/")
            for i in range(1, len(parts)):
                d = "/".join(parts[:i])
                if d not in dirs:
                    dirs.add(d)
                    entries.append((d, 0o040755, b""))
            entries.append(("/".join(parts), 0o100000 | mode, data))

        for f in sorted(files):
            if os.path.isfile(f):
                add(f, 0o755, open(f, "rb").read())
        add("/bin/kpeek", 0o755, open(stripped, "rb").read())
        add("/vmlinux", 0o644, open(os.path.join(FIX, "vmlinux"), "rb").read())
        add("/bench/drgn_ps.py", 0o644, open(os.path.join(ROOT, "benches", "drgn_ps.py"), "rb").read())
        add("/bench/driver.py", 0o644, DRIVER.encode())
        site = probe["site"][0]
        hook = (f"#!/bin/sh\nexport PYTHONPATH={site}\n"
                f"{probe['executable']} /bench/driver.py {RUNS}\n")
        add("/test/after-truth", 0o755, hook.encode())
        add("/init", 0o755, open(os.path.join(ROOT, "vmlinux-fixtures", "guest", "init"), "rb").read())
        initrd = bytearray(open(os.path.join(FIX, "initramfs", "main.cpio.gz"), "rb").read())
        initrd += b"\0" * (-len(initrd) % 4)
        initrd += cpio(entries)
        initrd_path = os.path.join(work, "initrd.cpio")
        open(initrd_path, "wb").write(initrd)

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        qemu = subprocess.Popen(
            ["qemu-system-x86_64", "-machine", "pc", "-cpu", "qemu64", "-m", "1536M", "-smp", "2", "-nographic",
             "-no-reboot", "-vga", "none", "-nic", "none", "-monitor", "none", "-display", "none",
             "-kernel", os.path.join(FIX, "bzImage"), "-initrd", initrd_path,
             "-append", "console=ttyS0 panic=-1 init_on_free=1",
             "-serial", f"file:{work}/console.log", "-serial", f"file:{work}/truth.jsonl",
             "-serial", f"file:{work}/ttyS2.log", "-gdb", f"tcp:127.0.0.1:{port}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.time() + 1800
            log = ""
            while "@@DONE" not in log:
                if time.time() > deadline or qemu.poll() is not None:
                    sys.exit(f"the guest did not finish; ttyS2:\n{log}")
                time.sleep(2)
                log = open(f"{work}/ttyS2.log", errors="replace").read() if os.path.exists(f"{work}/ttyS2.log") else ""
        finally:
            qemu.kill()
            qemu.wait()
        tasks = sum(1 for l in open(f"{work}/truth.jsonl", errors="replace") if '"kind":"task"' in l)
        rows = ["", f"## The running kernel: `kpeek ps --kcore` vs `drgn -k`, inside one QEMU guest "
                f"(linux-6.12 fixture, TCG, 2 vCPUs, {tasks} tasks in its truth)", "",
                f"Each command run {RUNS} times by a driver in the guest after its truth was recorded; median wall "
                "time of the whole process (drgn: Python start, vmlinux debug info, the listing). "
                "`python3 benches/kcore_guest.py`.", "",
                "| command | wall (median) | runs | lines out |", "|---|---|---|---|"]
        for line in log.splitlines():
            if line.startswith("@@ROW "):
                name, wall, runs, lines = line[6:].split("|")
                rows.append(f"| {name} | {wall} s | {runs} | {lines} |")
            elif line.startswith("@@FAIL "):
                rows.append(f"| {line[7:]} | failed | | |")
        print("\n".join(rows))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
