#!/usr/bin/env python3
"""Side-by-side benchmarks: kpeek and the anchors on the same inputs, in one
run, written to docs/PERFORMANCE.md. Run through benches/compare.sh.

Each command runs RUNS times, cold processes (the page cache is warm: the
inputs are read once before timing); we report the median wall time and the
peak RSS of the child (os.wait4).
"""
import json
import os
import platform
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNS = int(os.environ.get("RUNS", "5"))
KPEEK = os.path.join(ROOT, "target", "release", "kpeek")
FIX = os.path.join(ROOT, "target", "fixtures")
PY = os.environ.get("DRGN_PYTHON", sys.executable)
# crash: Debian sid's, in the chroot benches/crash9.sh builds and caches.
CRASH = [os.path.join(ROOT, "benches", "crash9.sh")]


# kpeek keeps a type-name index per vmlinux build ID; "cold" figures are
# measured without it, the cached ones with a warm one.
NO_CACHE = dict(os.environ, KPEEK_CACHE="off")


def measure(cmd, env=None):
    """Median wall seconds and max RSS (MiB) over RUNS runs; output checked."""
    walls, rss = [], []
    for _ in range(RUNS):
        t = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env or NO_CACHE)
        _, status, usage = os.wait4(p.pid, 0)
        walls.append(time.perf_counter() - t)
        err = p.stderr.read().decode(errors="replace")
        p.stderr.close()
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"failed: {' '.join(cmd)}\n{err}")
        rss.append(usage.ru_maxrss / 1024)
    return statistics.median(walls), max(rss)


def version(cmd):
    try:
        r = subprocess.run(cmd, capture_output=True, text=True)
        return (r.stdout or r.stderr).strip().splitlines()[0]
    except (OSError, IndexError):
        return "?"


def row(what, ours, theirs, name):
    (kw, kr), (tw, tr) = ours, theirs
    return f"| {what} | {kw:.3f} s / {kr:.0f} MiB | {tw:.3f} s / {tr:.0f} MiB ({name}) | {tw / kw:.1f}× |"


def distro_dump_rows():
    """Debian's real distro kernel, dumped by QEMU without VMCOREINFO:
    `ps` and `bt` with the -dbg vmlinux and with nothing but the dump,
    checked against each other and against the guest's own /proc."""
    import glob
    import re
    core = os.path.join(ROOT, "target", "bench", "distro-dump", "out", "vmcore.elf")
    dbg = sorted(glob.glob(os.path.join(ROOT, "target", "bench", "distro", "vmlinux-*")))
    if not (os.path.exists(core) and dbg):
        return ["", "(Run `benches/distro.sh` and `benches/distro_dump.sh` for the distro-kernel dump rows.)"]
    vmlinux = dbg[-1]
    truth = {}
    for line in open(os.path.join(os.path.dirname(core), "truth.jsonl"), errors="replace"):
        if line.startswith("{"):
            v = json.loads(line)
            if v.get("kind") == "task":
                truth[v["tid"]] = v
    def run(args):
        return subprocess.run([KPEEK, *args, "--core", core], capture_output=True, text=True, env=NO_CACHE).stdout
    with_v = json.loads(run(["ps", "--threads", "--format", "json", "--vmlinux", vmlinux]))["tasks"]
    without = json.loads(run(["ps", "--threads", "--format", "json"]))["tasks"]
    agree = 0
    for pid, v in truth.items():
        t = next((t for t in without if t["pid"] == pid), None)
        st = v["stat"].rsplit(")", 1)[1].split()
        kthread = bool(int(st[6]) & 0x200000)
        comm = v["comm"].strip()
        if t and t["tgid"] == v["tgid"] and t["ppid"] == int(st[1]) and t["kthread"] == kthread \
                and (comm.startswith(t["comm"]) if kthread else (t["comm"] == comm and t["state"] == st[0])):
            agree += 1
    stacks = run(["bt", "--all", "--style", "proc"])
    same_bt = stacks == run(["bt", "--all", "--style", "proc", "--vmlinux", vmlinux])
    blocks = re.findall(r"==> (\d+) \(.*?\) <==\n(.*?)(?=\n==> |\Z)", stacks, re.S)
    listed = [(int(pid), body) for pid, body in blocks if int(pid) in truth]
    bt_same = sum(1 for pid, body in listed if body.strip() == (truth[pid].get("stack") or "").strip())
    name = os.path.basename(vmlinux)
    rows = ["", f"## Debian's distro kernel with no vmlinux ({name[len('vmlinux-'):]}, QEMU ELF dump without VMCOREINFO)", "",
            "`benches/distro_dump.sh` boots Debian's own kernel with the fixture workload and dumps it. With no",
            "vmlinux, kpeek finds the kernel from the CPU page tables, its kallsyms tables by their shape, and",
            "its types in the kernel's own BTF.", "",
            f"(Load average when this section was measured: {os.getloadavg()[0]:.1f}.)", "",
            f"- `ps --threads --format json` without the vmlinux is {'identical' if with_v == without else 'NOT identical'} "
            f"to the one with the 630 MB -dbg vmlinux ({len(without)} tasks); {agree} of the guest's {len(truth)} /proc "
            "tasks agree (pid, tgid, ppid, comm, kernel thread, state of user tasks).",
            f"- `bt --all --style proc` is {'identical' if same_bt else 'NOT identical'} with and without the vmlinux; "
            f"{bt_same} of the {len(listed)} stacks the guest listed equal its /proc/PID/stack (a task that ran in between differs).", "",
            "| what | kpeek, no vmlinux | kpeek with the -dbg vmlinux | no-vmlinux faster by |", "|---|---|---|---|"]
    alone = {}
    for what, args in (("`ps --threads --format json`", ["ps", "--threads", "--format", "json"]),
                       ("`bt --all --style proc`", ["bt", "--all", "--style", "proc"])):
        (nw, nr) = measure([KPEEK, *args, "--core", core])
        (vw, vr) = measure([KPEEK, *args, "--vmlinux", vmlinux, "--core", core])
        alone[args[0]] = (nw, nr)
        rows.append(f"| {what} | {nw:.3f} s / {nr:.0f} MiB | {vw:.3f} s / {vr:.0f} MiB | {vw / nw:.1f}× |")
    rows += distro_anchor_rows(vmlinux, core, alone, len(without))
    return rows


def distro_anchor_rows(vmlinux, core, alone, tasks):
    """drgn and crash on the distro-kernel dump, each given the -dbg vmlinux,
    next to kpeek without it: a figure where the anchor lists (nearly) every
    task, what it said where it could not."""
    import re
    drgn_version = subprocess.run([PY, "-c", "import drgn; print(drgn.__version__)"], capture_output=True, text=True).stdout.strip()
    crash = crash_version() if crash_path() else "crash: not installed"
    rows = ["", f"The anchors on the same dump, each given the -dbg vmlinux (kpeek: none); drgn {drgn_version}, {crash}:", "",
            "| what | kpeek, no vmlinux | anchor with the -dbg vmlinux | kpeek faster by |", "|---|---|---|---|"]
    for what, cmd, script in (("tasks", "ps", "drgn_ps.py"), ("a stack trace of every task", "bt", "drgn_bt.py")):
        drgn = [PY, os.path.join(ROOT, "benches", script), vmlinux, core]
        r = subprocess.run(drgn, capture_output=True, text=True)
        if r.returncode == 0:
            rows.append(row(f"{what}: drgn `{script}`", alone[cmd], measure(drgn), "drgn"))
        else:
            said = r.stderr.strip().splitlines()[-1].split(";")[0]
            rows.append(f"| {what}: drgn `{script}` | {alone[cmd][0]:.3f} s / {alone[cmd][1]:.0f} MiB | drgn: `{said}` | — |")
    # crash `ps`: one line per task; `foreach bt`: one `PID:` header per task.
    ps_line = re.compile(r"^>?\s+\d+\s+-?\d+\s+\d+\s+[0-9a-f]{16}\s", re.M)
    for what, cmd, command, count in (("tasks", "ps", "ps", lambda out: len(ps_line.findall(out))),
                                      ("a stack trace of every task", "bt", "foreach bt", lambda out: out.count("PID:"))):
        ok, said = crash_run(vmlinux, core, command, tasks, count)
        if ok:
            rows.append(row(f"{what}: crash `{command}`", alone[cmd], ok, "crash"))
        elif said:
            rows.append(f"| {what}: crash `{command}` | {alone[cmd][0]:.3f} s / {alone[cmd][1]:.0f} MiB | crash: {said} | — |")
    return rows


def bt_rows(big):
    """A kernel stack trace of every task: `kpeek bt --all` (JSON, with source
    lines and inlined frames) against drgn's `stack_trace()` of every task
    and, where it can read the dump, crash's `foreach bt`."""
    rows = ["", "## Backtraces of every task: `kpeek bt --all --format json` vs drgn (and crash)", "",
            "drgn: `prog.stack_trace(task)` for every task (`benches/drgn_bt.py`); crash: `foreach bt` "
            "(`crash -s`, commands from a file). kpeek's figure includes source lines and inlined frames.", "",
            "| dump | kpeek | anchor | kpeek faster by |", "|---|---|---|---|"]
    notes = []
    inputs = [(f, os.path.join(FIX, f, "kernel", "vmlinux"), os.path.join(FIX, f, "boot-kdump", "vmcore.kdump"),
               f"{f} kdump/vmcore.kdump (~355 tasks)") for f in ("linux-6.1", "linux-6.12")]
    if os.path.exists(big):
        inputs.append(("linux-6.12", os.path.join(FIX, "linux-6.12", "kernel", "vmlinux"), big,
                       "linux-6.12, 10,037 threads (`benches/bigdump.sh`)"))
    for _, vmlinux, core, what in inputs:
        ours = measure([KPEEK, "bt", "--all", "--format", "json", "--vmlinux", vmlinux, "--core", core])
        theirs = measure([PY, os.path.join(ROOT, "benches", "drgn_bt.py"), vmlinux, core])
        rows.append(row(what, ours, theirs, "drgn"))
        tasks = len(json.loads(subprocess.run([KPEEK, "ps", "--threads", "--format", "json", "--vmlinux", vmlinux,
                                               "--core", core], capture_output=True).stdout)["tasks"])
        crash, said = crash_foreach_bt(vmlinux, core, tasks)
        if crash:
            rows.append(row(what, ours, crash, "crash"))
        elif said:
            notes.append(f"- crash on {what}: {said}")
    if notes:
        rows += ["", f"crash ({crash_version() if crash_path() else 'not installed'}) "
                 "is not in the table where it could not do the job:"] + notes
    return rows


def hung_rows():
    """Blocked tasks grouped by stack, with their locks: `kpeek hung` (JSON:
    groups, waits, owners, graph, cycles) against drgn grouping the D tasks'
    `stack_trace()`s and reading each mutex waiter's `lock->owner`
    (`benches/drgn_hung.py`), on the 6.12 fixture's hung boots."""
    rows = ["", "## Hung tasks: `kpeek hung --format json` vs drgn", "",
            "drgn: every D task's `prog.stack_trace()`, grouped by function names, and each mutex waiter's "
            "`lock->owner` (`benches/drgn_hung.py`), end to end. kpeek's figure includes the blocked times, "
            "every lock (mutex, rwsem, completion) with its owner, the wait-for graph and its cycles.", "",
            "| dump | kpeek | anchor | kpeek faster by |", "|---|---|---|---|"]
    fixture = "linux-6.12"
    vmlinux = os.path.join(FIX, fixture, "kernel", "vmlinux")
    for boot, dump in (("hung", "vmcore.elf"), ("hung-panic", "vmcore.kdump")):
        core = os.path.join(FIX, fixture, f"boot-{boot}", dump)
        if not os.path.exists(core):
            continue
        ours = measure([KPEEK, "hung", "--format", "json", "--vmlinux", vmlinux, "--core", core])
        theirs = measure([PY, os.path.join(ROOT, "benches", "drgn_hung.py"), vmlinux, core])
        rows.append(row(f"{fixture} {boot}/{dump} (9 D tasks)", ours, theirs, "drgn"))
        alone = measure([KPEEK, "hung", "--format", "json", "--core", core])
        rows.append(f"| {fixture} {boot}/{dump}, kpeek with no vmlinux | {alone[0]:.3f} s / {alone[1]:.0f} MiB | — | — |")
    return rows


def crash_path():
    """Whether crash can run: benches/crash9.sh needs root (and builds its
    chroot on first use)."""
    return os.geteuid() == 0 and crash_version().startswith("crash")


_CRASH_VERSION = []


def crash_version():
    if not _CRASH_VERSION:
        _CRASH_VERSION.append(version(CRASH + ["--version"]) if os.geteuid() == 0 else "?")
    return _CRASH_VERSION[0]


def crash_foreach_bt(vmlinux, core, tasks):
    """crash's `foreach bt`, if crash is installed and lists (nearly) every
    task; otherwise (None, what it did)."""
    return crash_run(vmlinux, core, "foreach bt", tasks, lambda out: out.count("PID:"))


def crash_run(vmlinux, core, command, tasks, count):
    """crash running `command`, measured if crash is installed and `count`
    of its output is (nearly) every task; otherwise (None, what it did)."""
    import tempfile
    if not crash_path():
        return None, None
    with tempfile.NamedTemporaryFile("w", suffix=".crash", delete=False) as f:
        f.write(f"{command}\nquit\n")
        script = f.name
    cmd = CRASH + ["-s", "-i", script, vmlinux, core]
    r = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600)
    if r.returncode != 0 and "kmem_cache" in r.stdout + r.stderr:
        # crash stops on slab layouts it does not know; it can skip them.
        cmd = CRASH + ["-s", "--no_kmem_cache", "-i", script, vmlinux, core]
        r = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600)
    listed = count(r.stdout)
    if r.returncode != 0:
        said = next((l.strip() for l in (r.stderr + r.stdout).splitlines() if l.startswith("crash:")), "no output")
        return None, f"exits with status {r.returncode} while loading (`{said}`)"
    if listed < 0.9 * tasks:
        warn = next((l for l in r.stdout.splitlines() if l.startswith("WARNING")), "")
        return None, f"lists {listed} of {tasks} tasks" + (f" (`{warn.strip()}`)" if warn else "")
    return measure(cmd), None


def drgn_version():
    return subprocess.run([PY, "-c", "import drgn; print(drgn.__version__)"], capture_output=True, text=True).stdout.strip()


def versus(ours, theirs, name):
    """One anchor cell: its figure and who is faster, by how much (measured
    in the same run as kpeek's figure)."""
    (kw, _), (tw, tr) = ours, theirs
    who = f"kpeek {tw / kw:.1f}× faster" if tw >= kw else f"**{name} {kw / tw:.1f}× faster**"
    return f"{tw:.3f} s / {tr:.0f} MiB ({who})"


def anchor_run(cmd, enough):
    """An anchor's figure if its output is complete (`enough(stdout)`), else
    (None, what it said): never a time for a job not done."""
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=900)
    except subprocess.TimeoutExpired:
        return None, "no answer in 15 minutes"
    if r.returncode == 0 and enough(r.stdout):
        return measure(cmd), None
    lines = [l.strip() for l in (r.stderr + "\n" + r.stdout).splitlines() if l.strip()]
    said = next((l for l in lines if l.startswith(("WARNING", "crash:", "drgn:", "error"))), lines[-1] if lines else "")
    return None, f"exit {r.returncode}, `{said[:110]}`"


def crash_style_rows():
    """The crash-style commands where all three overlap, on the same dumps
    with the same vmlinux: kpeek's own command, crash (sid's, in its chroot)
    and drgn's crash compatibility mode (`crash CMD` inside drgn). Each anchor
    must list (nearly) every task / record to get a figure."""
    import glob
    import re
    import tempfile
    inputs = [(os.path.join(FIX, f, "kernel", "vmlinux"), os.path.join(FIX, f, "boot-kdump", "vmcore.kdump"),
               f"{f} kdump/vmcore.kdump") for f in ("linux-6.1", "linux-6.12")]
    core = os.path.join(ROOT, "target", "bench", "distro-dump", "out", "vmcore.elf")
    dbg = sorted(glob.glob(os.path.join(ROOT, "target", "bench", "distro", "vmlinux-*")))
    if os.path.exists(core) and dbg:
        abi = os.path.basename(dbg[-1])[len('vmlinux-'):]
        inputs.append((dbg[-1], core, f"Debian {abi}, QEMU ELF, no VMCOREINFO"))
        # benches/matrix.sh's other dump of the same kernel, with `-device vmcoreinfo`.
        with_info = os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(core))), "vmcoreinfo", "vmcore.elf")
        if os.path.exists(with_info):
            inputs.append((dbg[-1], with_info, f"Debian {abi}, QEMU ELF with VMCOREINFO"))
    crash_v = crash_version() if crash_path() else "crash: not installed"
    drgn_v = drgn_version()
    rows = ["", f"## crash's commands: kpeek vs {crash_v} vs drgn {drgn_v}'s crash mode", "",
            "Each tool given the same vmlinux and dump. crash: Debian sid's, run by `benches/crash9.sh` in a",
            "debootstrap chroot of sid (`crash -s -i CMDS`; the chroot's bind mounts add ~0.01 s). drgn: its",
            "crash compatibility commands, `python3 -m drgn -q -c DUMP -s VMLINUX --main-symbols -e",
            "'run_command(prog, \"crash CMD\")'`. An anchor gets a figure only where it listed at least 90% of",
            "the tasks (ps, foreach bt) or of kpeek's log lines (log); otherwise what it said.",
            f"(Load average when this section was measured: {os.getloadavg()[0]:.1f}.)", "",
            "| dump | command | kpeek | crash | drgn `crash` mode |", "|---|---|---|---|---|"]
    ps_line = re.compile(r"^>?\s+\d+\s+-?\d+\s+\d+\s+[0-9a-f]{16}\s", re.M)
    for vmlinux, core, what in inputs:
        tasks = len(json.loads(subprocess.run([KPEEK, "ps", "--threads", "--format", "json", "--vmlinux", vmlinux,
                                               "--core", core], capture_output=True, env=NO_CACHE).stdout)["tasks"])
        log_lines = subprocess.run([KPEEK, "dmesg", "--vmlinux", vmlinux, "--core", core], capture_output=True,
                                   text=True, env=NO_CACHE).stdout.count("\n")
        for kp, command, enough in (
                (["ps", "--threads"], "ps", lambda out: len(ps_line.findall(out)) >= 0.9 * tasks),
                (["bt", "--all"], "foreach bt", lambda out: out.count("PID:") >= 0.9 * tasks),
                (["dmesg"], "log", lambda out: out.count("\n") >= 0.9 * log_lines)):
            ours = measure([KPEEK, *kp, "--vmlinux", vmlinux, "--core", core])
            cells = []
            if crash_path():
                with tempfile.NamedTemporaryFile("w", suffix=".crash", delete=False) as f:
                    f.write(f"{command}\nquit\n")
                got, said = anchor_run(CRASH + ["-s", "-i", f.name, vmlinux, core], enough)
                flag = ""
                if not got and "kmem_cache" in said:
                    # crash stops on slab layouts it does not know; it can skip them.
                    got, said2 = anchor_run(CRASH + ["-s", "--no_kmem_cache", "-i", f.name, vmlinux, core], enough)
                    flag = f" with `--no_kmem_cache` (without: {said})" if got else ""
                cells.append(versus(ours, got, "crash") + flag if got else f"crash: {said}")
            else:
                cells.append("not installed")
            drgn = [PY, "-m", "drgn", "-q", "-c", core, "-s", vmlinux, "--main-symbols",
                    "-e", f"from drgn.commands import run_command; run_command(prog, 'crash {command}')"]
            got, said = anchor_run(drgn, enough)
            cells.append(versus(ours, got, "drgn") if got else f"drgn: {said}")
            rows.append(f"| {what} ({tasks} tasks) | `kpeek {' '.join(kp)}` / `{command}` | "
                        f"{ours[0]:.3f} s / {ours[1]:.0f} MiB | {cells[0]} | {cells[1]} |")
    return rows


def live_drgn_rows():
    """drgn's own live mode against kpeek's on one running guest: the
    linux-6.12 fixture kernel (KASLR on) with the fixture workload, QEMU with
    a gdbstub (kpeek --qemu) and a QMP socket (drgn --qemu, which reads the
    guest's RAM through the QEMU process and finds VMCOREINFO through
    `-device vmcoreinfo`)."""
    import shutil
    import socket
    import tempfile
    fixture = os.path.join(FIX, "linux-6.12", "kernel")
    vmlinux = os.path.join(fixture, "vmlinux")
    work = tempfile.mkdtemp(prefix="kpeek-bench-")
    qmp = os.path.join(work, "qmp.sock")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    qemu = subprocess.Popen(
        ["qemu-system-x86_64", "-machine", "pc", "-cpu", "qemu64", "-m", "128M", "-smp", "2", "-nographic",
         "-no-reboot", "-vga", "none", "-nic", "none", "-monitor", "none", "-display", "none", "-device", "vmcoreinfo",
         "-kernel", os.path.join(fixture, "bzImage"), "-initrd", os.path.join(fixture, "initramfs", "main.cpio.gz"),
         "-append", "console=ttyS0 panic=-1 init_on_free=1",
         "-serial", "null", "-serial", f"file:{work}/truth.jsonl", "-serial", "null",
         "-gdb", f"tcp:127.0.0.1:{port}", "-qmp", f"unix:{qmp},server=on,wait=off"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 240
        while not os.path.exists(f"{work}/truth.jsonl") or '"kind":"end"' not in open(f"{work}/truth.jsonl", errors="replace").read():
            if time.time() > deadline:
                return ["", "(drgn --qemu rows skipped: the guest did not come up)"]
            time.sleep(0.5)
        tasks = len(json.loads(subprocess.run([KPEEK, "ps", "--threads", "--format", "json", "--vmlinux", vmlinux,
                                               "--qemu", f"127.0.0.1:{port}"], capture_output=True).stdout)["tasks"])
        rows = ["", f"## Live: `kpeek --qemu` (gdbstub) vs `drgn --qemu` (QMP) on one running guest "
                f"(linux-6.12, KASLR on, the fixture workload, {tasks} tasks)", "",
                "QEMU started with `-gdb tcp:…` for kpeek and `-qmp unix:SOCK,server=on,wait=off -device vmcoreinfo`",
                f"for drgn {drgn_version()} (over a Unix socket drgn reads the guest's RAM straight from the QEMU process;",
                "kpeek reads it with the gdbstub's `m` packets, the guest stopped while it reads, so it sees one instant;",
                "drgn reads the running guest). Both given the vmlinux; whole process each time.",
                f"(Load average when this section was measured: {os.getloadavg()[0]:.1f}.)", "",
                "| what | kpeek `--qemu 127.0.0.1:PORT` | drgn `--qemu SOCK` |", "|---|---|---|"]
        drgn = [PY, "-m", "drgn", "-q", "--qemu", qmp, "-s", vmlinux, "--main-symbols"]
        for what, kp, script in (
                ("every task: pid, tgid, ppid, state, comm", ["ps", "--threads", "--format", "json"],
                 [os.path.join(ROOT, "benches", "drgn_ps.py")]),
                ("`ps` (drgn: its crash-mode `ps`)", ["ps", "--threads"],
                 ["-e", "from drgn.commands import run_command; run_command(prog, 'crash ps')"]),
                ("a stack trace of every task (drgn: `drgn_bt.py`)", ["bt", "--all"],
                 [os.path.join(ROOT, "benches", "drgn_bt.py")]),
                ("the kernel log (drgn: its crash-mode `log`)", ["dmesg"],
                 ["-e", "from drgn.commands import run_command; run_command(prog, 'crash log')"])):
            cmd = [KPEEK, *kp, "--vmlinux", vmlinux, "--qemu", f"127.0.0.1:{port}"]
            ours = measure(cmd)
            # Listings: (nearly) a line per task; the others: any output.
            lines = tasks * 0.9 if kp[0] == "ps" else 1
            got, said = anchor_run(drgn + script, lambda out: out.count("\n") >= lines)
            rows.append(f"| {what}: `kpeek {' '.join(kp)}` | {ours[0]:.3f} s / {ours[1]:.0f} MiB | "
                        + (versus(ours, got, "drgn") if got else f"drgn: {said}") + " |")
        return rows
    finally:
        qemu.kill()
        qemu.wait()
        shutil.rmtree(work, ignore_errors=True)


def distro_speed_rows():
    """Issue 24's rows: Debian's real 6.1 distro kernel (the -dbg vmlinux of
    benches/distro.sh, the QEMU dump with VMCOREINFO benches/matrix.sh made
    of it, ~370 tasks) as a new user meets it: first run (no index cache),
    index cached, no vmlinux; and a live guest of the same kernel, kpeek
    reading QEMU's memory or its gdbstub against drgn --qemu. Every anchor
    is measured in this same run."""
    import glob
    import shutil
    import socket
    import tempfile
    dbg = sorted(glob.glob(os.path.join(ROOT, "target", "bench", "distro", "vmlinux-*")))
    if not dbg:
        return ["", "(Run `benches/distro.sh` first for the distro-kernel speed rows.)"]
    vmlinux = dbg[-1]
    abi = os.path.basename(vmlinux)[len("vmlinux-"):]
    cache = subprocess.run([os.path.join(ROOT, "benches", "matrix.sh"), abi, "--dir"],
                           capture_output=True, text=True).stdout.strip()
    core = os.path.join(cache, "vmcoreinfo", "vmcore.elf")
    if not os.path.exists(core):
        return ["", f"(Run `benches/matrix.sh {abi}` first for the distro-kernel speed rows.)"]
    tasks = len(json.loads(subprocess.run([KPEEK, "ps", "--threads", "--format", "json", "--vmlinux", vmlinux,
                                           "--core", core], capture_output=True).stdout)["tasks"])
    index = os.path.join(ROOT, "target", "bench", "index-cache")
    cached = dict(os.environ, KPEEK_CACHE_DIR=index)
    # Warm the index cache (a lookup of a missing struct indexes every unit).
    subprocess.run([KPEEK, "pahole", "--vmlinux", vmlinux, "no_such_struct"], env=cached, capture_output=True)
    rows = ["", f"## Debian's distro kernel {abi}: first run, cached, live (issue 24)", "",
            f"The -dbg vmlinux ({os.path.getsize(vmlinux) / 1e6:.0f} MB, `benches/distro.sh`) and the QEMU ELF dump with",
            f"VMCOREINFO `benches/matrix.sh {abi}` made of it ({tasks} tasks). First run: `KPEEK_CACHE=off` (no",
            "type-name index on disk, as on a first run); cached: the index of an earlier run in `KPEEK_CACHE_DIR`.",
            f"drgn {drgn_version()}: `benches/drgn_ps.py`, `benches/drgn_bt.py`; pahole {version(['pahole', '--version'])}.",
            f"(Load average when this section was measured: {os.getloadavg()[0]:.1f}.)", "",
            "| what | kpeek | anchor |", "|---|---|---|"]
    drgn_ps = measure([PY, os.path.join(ROOT, "benches", "drgn_ps.py"), vmlinux, core])
    drgn_bt = measure([PY, os.path.join(ROOT, "benches", "drgn_bt.py"), vmlinux, core])
    base = ["--core", core]
    for what, args, env, anchor, name in (
            ("`ps --threads`, first run", ["ps", "--threads", "--vmlinux", vmlinux], NO_CACHE, drgn_ps, "drgn"),
            ("`ps --threads`, index cached", ["ps", "--threads", "--vmlinux", vmlinux], cached, drgn_ps, "drgn"),
            ("`ps --threads`, no vmlinux (the dump's kallsyms and BTF)", ["ps", "--threads"], NO_CACHE, drgn_ps, "drgn"),
            ("`bt --all` (with source lines), first run", ["bt", "--all", "--vmlinux", vmlinux], NO_CACHE, drgn_bt, "drgn"),
            ("`bt --all` (with source lines), index cached", ["bt", "--all", "--vmlinux", vmlinux], cached, drgn_bt, "drgn")):
        ours = measure([KPEEK, *args, *base], env=env)
        rows.append(f"| {what} | {ours[0]:.3f} s / {ours[1]:.0f} MiB | {versus(ours, anchor, name)} |")
    for struct in ("task_struct", "tcp_sock"):
        theirs = measure(["pahole", "-F", "dwarf", "-C", struct, vmlinux])
        for when, env in (("first run", NO_CACHE), ("index cached", cached)):
            ours = measure([KPEEK, "pahole", "--vmlinux", vmlinux, struct], env=env)
            rows.append(f"| `pahole {struct}`, {when} | {ours[0]:.3f} s / {ours[1]:.0f} MiB | "
                        f"{versus(ours, theirs, 'pahole')} |")
    rows += ["", "Commands: `kpeek ps --threads --vmlinux V --core C` (and `bt --all`, `pahole S`); drgn:",
             "`python3 benches/drgn_ps.py V C`, `benches/drgn_bt.py V C`; pahole: `pahole -F dwarf -C S V`."]

    # Live: one guest of the same kernel, QEMU on this host.
    work = tempfile.mkdtemp(prefix="kpeek-bench-")
    qmp = os.path.join(work, "qmp.sock")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    qemu = subprocess.Popen(
        ["qemu-system-x86_64", "-machine", "pc", "-cpu", "qemu64", "-m", "512M", "-smp", "2", "-nographic",
         "-no-reboot", "-vga", "none", "-nic", "none", "-monitor", "none", "-display", "none", "-device", "vmcoreinfo",
         "-kernel", os.path.join(cache, "vmlinuz"), "-initrd", os.path.join(cache, "guest.cpio.gz"),
         "-append", "console=ttyS0 panic=-1",
         "-serial", "null", "-serial", f"file:{work}/truth.jsonl", "-serial", "null",
         "-gdb", f"tcp:127.0.0.1:{port}", "-qmp", f"unix:{qmp},server=on,wait=off"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 300
        while not os.path.exists(f"{work}/truth.jsonl") or '"kind":"end"' not in open(f"{work}/truth.jsonl", errors="replace").read():
            if time.time() > deadline:
                return rows + ["", "(live rows skipped: the guest did not come up)"]
            time.sleep(0.5)
        target = ["--vmlinux", vmlinux, "--qemu", f"127.0.0.1:{port}"]
        how = subprocess.run([KPEEK, "info", "--format", "json", *target], capture_output=True, text=True, env=cached)
        memory = json.loads(how.stdout)["memory"]
        live_tasks = len(json.loads(subprocess.run([KPEEK, "ps", "--threads", "--format", "json", *target],
                                                   capture_output=True, env=cached).stdout)["tasks"])
        rows += ["", f"Live, one running guest of {abi} (QEMU {version(['qemu-system-x86_64', '--version']).split()[3]}, "
                 f"TCG, 512 MiB, 2 vCPUs, {live_tasks} tasks), QEMU started with `-gdb tcp:127.0.0.1:PORT` for kpeek and",
                 "`-qmp unix:SOCK,server=on,wait=off -device vmcoreinfo` for drgn (which reads guest RAM with",
                 "`process_vm_readv` of QEMU, found through QMP). kpeek's index cached; kpeek stops the guest while it reads.",
                 f"`kpeek info` said: memory: {memory}", "",
                 "| what | kpeek | drgn `--qemu SOCK` `drgn_ps.py` |", "|---|---|---|"]
        drgn = measure([PY, "-m", "drgn", "-q", "--qemu", qmp, "-s", vmlinux, "--main-symbols",
                        os.path.join(ROOT, "benches", "drgn_ps.py")])
        for what, env in (("`ps --threads --qemu`, QEMU's memory (`/proc/PID/mem`)", cached),
                          ("`ps --threads --qemu`, gdbstub (`KPEEK_QEMU_MEMORY=gdbstub`)",
                           dict(cached, KPEEK_QEMU_MEMORY="gdbstub"))):
            ours = measure([KPEEK, "ps", "--threads", *target], env=env)
            rows.append(f"| {what} | {ours[0]:.3f} s / {ours[1]:.0f} MiB | {versus(ours, drgn, 'drgn')} |")
        return rows
    finally:
        qemu.kill()
        qemu.wait()
        shutil.rmtree(work, ignore_errors=True)


def serve_rows():
    """kpeek serve in real GDB: from starting the server to the answer of
    `info threads`, and `thread apply all bt`; drgn's stack trace of every
    task for comparison."""
    import re
    rows = ["", "## A dump in GDB: `kpeek serve` (linux-6.12 qemu-vmcoreinfo/vmcore.elf, ~356 tasks)", "",
            "| what | kpeek serve + GDB | anchor |", "|---|---|---|"]
    vmlinux = os.path.join(FIX, "linux-6.12", "kernel", "vmlinux")
    core = os.path.join(FIX, "linux-6.12", "boot-qemu-vmcoreinfo", "vmcore.elf")
    results = {}
    for what, cmds in (("serve start → `info threads` answered", ["info threads"]),
                       ("serve start → `thread apply all bt` done", ["thread apply all bt"])):
        walls = []
        for _ in range(RUNS):
            t = time.perf_counter()
            server = subprocess.Popen([KPEEK, "serve", "--vmlinux", vmlinux, "--core", core, "--listen", "127.0.0.1:0"],
                                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            addr = None
            for line in server.stdout:
                m = re.search(r"on (127\.0\.0\.1:\d+)", line)
                if m:
                    addr = m.group(1)
                    break
            gdb = ["gdb", "-nx", "-batch", "-ex", "set pagination off", "-ex", f"file {vmlinux}",
                   "-ex", f"target remote {addr}"]
            for c in cmds:
                gdb += ["-ex", c]
            subprocess.run(gdb, capture_output=True, timeout=600)
            walls.append(time.perf_counter() - t)
            server.kill()
            server.wait()
        results[what] = statistics.median(walls)
    drgn = measure([PY, os.path.join(ROOT, "benches", "drgn_bt.py"), vmlinux, core])
    rows.append(f"| serve start → `info threads` answered | {results['serve start → `info threads` answered']:.3f} s | — |")
    rows.append(f"| serve start → `thread apply all bt` done | {results['serve start → `thread apply all bt` done']:.3f} s "
                f"| drgn, stack trace of every task: {drgn[0]:.3f} s / {drgn[1]:.0f} MiB |")
    rows.append("")
    rows.append("crash has no server mode; its `foreach bt` is in the backtrace table above (where it can read the dump).")
    return rows


def live_rows(threads=None):
    """The kernel's own lx-ps against kpeek.py's lx-ps, in one GDB session on a
    live nokaslr guest: wall time of each and the memory packets GDB sent
    (counted in GDB's remote log). The guest runs the fixture's workload, or
    with `threads`, benches/threads_initrd.sh's (lx-ps rows only)."""
    import re
    import shutil
    import socket
    import tempfile
    fixture = os.path.join(FIX, "linux-6.12", "kernel")
    work = tempfile.mkdtemp(prefix="kpeek-bench-")
    initrd = os.path.join(fixture, "initramfs", "main.cpio.gz")
    if threads:
        initrd = os.path.join(work, "threads.cpio.gz")
        # 128 MiB caps the kernel's threads-max below a thousand.
        subprocess.run([os.path.join(ROOT, "benches", "threads_initrd.sh"), str(threads), initrd], check=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    qemu = subprocess.Popen(
        ["qemu-system-x86_64", "-machine", "pc", "-cpu", "qemu64", "-m", "512M" if threads else "128M", "-smp", "2", "-nographic",
         "-no-reboot", "-vga", "none", "-nic", "none", "-monitor", "none", "-display", "none",
         "-kernel", os.path.join(fixture, "bzImage"), "-initrd", initrd,
         "-append", "console=ttyS0 panic=-1 init_on_free=1 nokaslr",
         "-serial", "null", "-serial", f"file:{work}/truth.jsonl", "-serial", "null", "-gdb", f"tcp:127.0.0.1:{port}"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 240
        def truth():
            try:
                return open(f"{work}/truth.jsonl", errors="replace").read()
            except FileNotFoundError:  # QEMU has not created it yet
                return ""
        while '"kind":"end"' not in truth():
            if time.time() > deadline:
                return ["", "(live row skipped: the guest did not come up)"]
            time.sleep(0.5)
        results = {}
        commands = (
            ("the kernel's lx-ps", os.path.join(fixture, "gdb", "vmlinux-gdb.py"), "lx-ps"),
            ("kpeek.py lx-ps", os.path.join(ROOT, "gdb-scripts", "kpeek.py"), "lx-ps"),
            ("kpeek.py `kpeek ps --threads --format json` (state, ppid, kthread, threads...)",
             os.path.join(ROOT, "gdb-scripts", "kpeek.py"), "kpeek ps --threads --format json"),
            ("the kernel's lx-dmesg", os.path.join(fixture, "gdb", "vmlinux-gdb.py"), "lx-dmesg"),
            ("kpeek.py lx-dmesg", os.path.join(ROOT, "gdb-scripts", "kpeek.py"), "lx-dmesg"),
            ("the kernel's lx-lsmod", os.path.join(fixture, "gdb", "vmlinux-gdb.py"), "lx-lsmod"),
            ("kpeek.py lx-lsmod", os.path.join(ROOT, "gdb-scripts", "kpeek.py"), "lx-lsmod"),
        )
        for name, script, cmd in commands[:2] if threads else commands:
            def session(with_command, log):
                # The remote log opens at connection, so it must be set first.
                # It writes every byte as text and slows GDB down: time runs without it.
                logging = ["-ex", f"set remotelogfile {log}"] if log else []
                gdb = ["gdb", "-nx", "-batch", "-ex", "set pagination off", "-ex", f"file {fixture}/vmlinux",
                       *logging,
                       "-ex", f"target remote 127.0.0.1:{port}", "-ex", f"source {script}",
                       "-ex", "python import time; kpeek_t0 = time.perf_counter()"]
                if with_command:
                    gdb += ["-ex", cmd]
                gdb += ["-ex", "python print('@@ELAPSED %.3f' % (time.perf_counter() - kpeek_t0))"]
                r = subprocess.run(gdb, capture_output=True, text=True, env=dict(os.environ, KPEEK=KPEEK), timeout=600)
                elapsed = float(re.search(r"@@ELAPSED ([0-9.]+)", r.stdout).group(1))
                text = open(log, errors="replace").read() if log and os.path.exists(log) else ""
                return elapsed, len(re.findall(r"w \+?\$m[0-9a-f]+,", text))
            # Packets of the listing alone: a session with it minus one without.
            _, baseline = session(False, f"{work}/base-{len(results)}.log")
            _, total = session(True, f"{work}/remote-{len(results)}.log")
            packets = total - baseline
            elapsed = statistics.median(session(True, None)[0] for _ in range(RUNS))
            results[name] = (elapsed, packets)
        end = [json.loads(l) for l in truth().splitlines() if l.startswith('{"kind":"end"')][-1]
        guest = f"{end['threads']:,} threads" if threads else "the fixture workload"
        rows = ["", f"## Live: the lx- commands in GDB on a QEMU guest (linux-6.12, {guest}, nokaslr so the kernel's scripts work)", "",
                "Memory packets (`m`) GDB sent to QEMU's gdbstub for the command (GDB's remote log, minus a session",
                "without it); wall time inside GDB, median of the runs, without the log (it slows GDB down).",
                "kpeek.py's first command in a session also starts `kpeek rpc` and finds KASLR.", "",
                "| command | wall | `m` packets |", "|---|---|---|"]
        for name, (elapsed, packets) in results.items():
            rows.append(f"| {name} | {elapsed:.3f} s | {packets} |")
        # kpeek straight to QEMU's gdbstub, no GDB: a whole process each time
        # (connect, target description, registers, vmlinux, KASLR, listing).
        vmlinux = ["--vmlinux", os.path.join(fixture, "vmlinux")]
        for name, args in (("`kpeek ps --style lx --qemu` (no GDB; whole process)", ["ps", "--style", "lx", *vmlinux]),
                           ("`kpeek ps --threads --format json --qemu` (no GDB; whole process)",
                            ["ps", "--threads", "--format", "json", *vmlinux]),
                           # No vmlinux: the guest's kallsyms (in the read-only data its page
                           # tables show) and its BTF, through the gdbstub.
                           ("`kpeek ps --threads --format json --qemu`, no vmlinux (no GDB; whole process)",
                            ["ps", "--threads", "--format", "json"]))[:1 if threads else 3]:
            cmd = [KPEEK, *args, "--qemu", f"127.0.0.1:{port}"]
            trace = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, KPEEK_TRACE_RSP="1"))
            packets = sum(1 for l in trace.stderr.splitlines() if l.startswith("kpeek: rsp -> m"))
            elapsed, _ = measure(cmd)
            rows.append(f"| {name} | {elapsed:.3f} s | {packets} |")
        rows += serve_qemu_rows(port, os.path.join(fixture, "vmlinux"))
        return rows
    finally:
        qemu.kill()
        qemu.wait()
        shutil.rmtree(work, ignore_errors=True)


def serve_qemu_rows(port, vmlinux):
    """`gdb VMLINUX -ex 'target remote' -ex 'info threads'`, whole process,
    straight to QEMU's gdbstub (its vCPUs only) and through `kpeek serve
    --qemu` (every task a thread, gathered at the stop)."""
    import re
    server = subprocess.Popen([KPEEK, "serve", "--qemu", f"127.0.0.1:{port}", "--vmlinux", vmlinux,
                               "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE, text=True)
    try:
        served = None
        for line in server.stdout:
            m = re.search(r"target remote (127\.0\.0\.1:[0-9]+)", line)
            if m:
                served = m.group(1)
                break
        if not served:
            return ["", "(serve --qemu row skipped: no address printed)"]
        # Drain the server's log so it never blocks on a full pipe.
        import threading
        threading.Thread(target=lambda: [None for _ in server.stdout], daemon=True).start()
        server_stopped = ["gdb", "-nx", "-batch", vmlinux, "-ex", f"target remote {served}", "-ex", "info threads"]
        threads = sum(1 for l in subprocess.run(server_stopped, capture_output=True, text=True).stdout.splitlines()
                      if re.match(r"^[* ] +[0-9]+ +Thread ", l))
        ours, _ = measure(server_stopped)
        # The same GDB straight to QEMU needs kpeek to let go of the gdbstub first.
        server.terminate()
        server.wait()
        direct = ["gdb", "-nx", "-batch", vmlinux, "-ex", f"target remote 127.0.0.1:{port}", "-ex", "info threads",
                  "-ex", "detach"]
        theirs, _ = measure(direct)
        return ["", "`target remote` to `info threads` answered, whole GDB process (it loads the vmlinux's symbols "
                "in both), median of the runs:", "",
                "| GDB attached to | threads | wall |", "|---|---|---|",
                f"| `kpeek serve --qemu` (CPUs and every task) | {threads} | {ours:.3f} s |",
                f"| QEMU's gdbstub directly (its vCPUs only) | 2 | {theirs:.3f} s |"]
    finally:
        if server.poll() is None:
            server.terminate()
            server.wait()


def main():
    lines = []
    machine = f"{platform.machine()}, {os.cpu_count()} cores, {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB"
    drgn_version = subprocess.run([PY, "-c", "import drgn; print(drgn.__version__)"], capture_output=True, text=True).stdout.strip()
    lines += [
        "# kpeek performance, side by side",
        "",
        "Written by `benches/compare.sh` (do not edit by hand); rerun it to refresh.",
        "",
        f"- machine: {machine}; {platform.platform()}",
        f"- kpeek {version([KPEEK, '--version'])}; drgn {drgn_version} (PyPI's newest); "
        f"{crash_version() if crash_path() else 'crash: not installed'} (Debian sid's, `benches/crash9.sh`); "
        f"{version(['pahole', '--version'])} (pahole); {version(['makedumpfile', '-v'])}; "
        f"{version(['gdb', '--version'])}; {version(['qemu-system-x86_64', '--version'])}",
        f"- every figure: median wall time of {RUNS} cold runs (new process each time, files in the page cache), and peak RSS",
        "",
        "## Listing every task of a dump: `kpeek ps --threads --format json` vs drgn",
        "",
        "drgn: `for_each_task()` with pid, tgid, ppid, state and comm per task (`benches/drgn_ps.py`), end to end",
        "including loading the vmlinux's debug info, which is what a user waits for.",
        "",
        "| dump | kpeek | anchor | kpeek faster by |",
        "|---|---|---|---|",
    ]
    for fixture in ("linux-6.1", "linux-6.12"):
        vmlinux = os.path.join(FIX, fixture, "kernel", "vmlinux")
        for boot, dump in (("qemu-vmcoreinfo", "vmcore.elf"), ("kdump", "vmcore.kdump")):
            core = os.path.join(FIX, fixture, f"boot-{boot}", dump)
            ours = measure([KPEEK, "ps", "--threads", "--format", "json", "--vmlinux", vmlinux, "--core", core])
            theirs = measure([PY, os.path.join(ROOT, "benches", "drgn_ps.py"), vmlinux, core])
            lines.append(row(f"{fixture} {boot}/{dump} (~355 tasks)", ours, theirs, "drgn"))
        core = os.path.join(FIX, fixture, "boot-qemu-plain", "vmcore.elf")
        ours = measure([KPEEK, "ps", "--threads", "--format", "json", "--vmlinux", vmlinux, "--core", core])
        r = subprocess.run([PY, os.path.join(ROOT, "benches", "drgn_ps.py"), vmlinux, core], capture_output=True, text=True)
        said = r.stderr.strip().splitlines()[-1].split(";")[0] if r.returncode else "listed the tasks"
        lines.append(f"| {fixture} qemu-plain/vmcore.elf (no VMCOREINFO) | {ours[0]:.3f} s / {ours[1]:.0f} MiB | drgn: `{said}` | — |")

    big = os.path.join(ROOT, "target", "bench", "bigdump", "vmcore.elf")
    if os.path.exists(big):
        vmlinux = os.path.join(FIX, "linux-6.12", "kernel", "vmlinux")
        end = [json.loads(l) for l in open(os.path.join(os.path.dirname(big), "truth.jsonl")) if l.startswith('{"kind":"end"')]
        threads = end[-1]["threads"]  # every thread the guest's /proc listed
        ours = measure([KPEEK, "ps", "--threads", "--format", "json", "--vmlinux", vmlinux, "--core", big])
        theirs = measure([PY, os.path.join(ROOT, "benches", "drgn_ps.py"), vmlinux, big])
        lines.append(row(f"linux-6.12, {threads} threads (`benches/bigdump.sh`, 2 GiB ELF)", ours, theirs, "drgn"))
        lines.append("")
        lines.append(f"Per task on the big dump: kpeek {ours[0] / threads * 1e6:.0f} µs, drgn {theirs[0] / threads * 1e6:.0f} µs "
                     "(both including start-up and loading the debug info).")
    else:
        lines.append("")
        lines.append("(Run `benches/bigdump.sh` first for the 10,000-thread row.)")

    lines += distro_dump_rows()
    lines += bt_rows(big)
    lines += hung_rows()
    lines += crash_style_rows()
    lines += serve_rows()
    lines += live_rows()
    lines += live_rows(threads=1000)
    lines += live_drgn_rows()
    # The running kernel: kpeek --kcore against drgn -k inside one guest.
    kcore = subprocess.run([sys.executable, os.path.join(ROOT, "benches", "kcore_guest.py")],
                           capture_output=True, text=True, env=dict(os.environ, DRGN_PYTHON=PY))
    lines += kcore.stdout.splitlines() if kcore.returncode == 0 else \
        ["", f"(kcore rows skipped: {kcore.stderr.strip()[-300:]})"]
    lines += distro_speed_rows()

    lines += [
        "",
        "## Struct layouts: `kpeek pahole` vs `pahole -F dwarf` (byte-identical output, tested)",
        "",
        "| what | kpeek | anchor | kpeek faster by |",
        "|---|---|---|---|",
    ]
    for fixture in ("linux-6.1", "linux-6.12"):
        vmlinux = os.path.join(FIX, fixture, "kernel", "vmlinux")
        for name in ("task_struct", "printk_ringbuffer"):
            ours = measure([KPEEK, "pahole", "--vmlinux", vmlinux, name])
            theirs = measure(["pahole", "-F", "dwarf", "-C", name, vmlinux])
            lines.append(row(f"{fixture}: `{name}`", ours, theirs, "pahole"))
        ours = measure([KPEEK, "pahole", "--all", "--vmlinux", vmlinux])
        theirs = measure(["pahole", "-F", "dwarf", vmlinux])
        lines.append(row(f"{fixture}: every struct (`--all`)", ours, theirs, "pahole"))

    import glob
    distro = sorted(glob.glob(os.path.join(ROOT, "target", "bench", "distro", "vmlinux-*")))
    if distro:
        vmlinux = distro[-1]
        name = os.path.basename(vmlinux)
        cache = os.path.join(ROOT, "target", "bench", "index-cache")
        cached = dict(os.environ, KPEEK_CACHE_DIR=cache)
        for struct in ("task_struct", "xfrm_state", "tcp_sock"):
            ours = measure([KPEEK, "pahole", "--vmlinux", vmlinux, struct])
            theirs = measure(["pahole", "-F", "dwarf", "-C", struct, vmlinux])
            lines.append(row(f"Debian {name}: `{struct}`, cold", ours, theirs, "pahole"))
            subprocess.run([KPEEK, "pahole", "--vmlinux", vmlinux, "no_such_struct"], env=cached, capture_output=True)
            ours = measure([KPEEK, "pahole", "--vmlinux", vmlinux, struct], env=cached)
            lines.append(row(f"Debian {name}: `{struct}`, index cache warm", ours, theirs, "pahole"))
        ours = measure([KPEEK, "pahole", "--all", "--vmlinux", vmlinux])
        theirs = measure(["pahole", "-F", "dwarf", vmlinux])
        lines.append(row(f"Debian {name}: every struct (`--all`)", ours, theirs, "pahole"))
        a = subprocess.run([KPEEK, "pahole", "--all", "--vmlinux", vmlinux], capture_output=True).stdout
        b = subprocess.run(["pahole", "-F", "dwarf", vmlinux], capture_output=True).stdout
        count = b.count(b"\nstruct ") + b.count(b"\nunion ") + int(b.startswith((b"struct ", b"union ")))
        verdict = "byte-identical" if a == b else "DIFFERENT"
        lines += ["", f"On Debian's {name} (630 MB, DWARF 5), `kpeek pahole --all` is {verdict} to "
                  f"`pahole -F dwarf` ({count} structs and unions, {len(b)} bytes)."]
    else:
        lines += ["", "(Run `benches/distro.sh` first for Debian's real distro vmlinux.)"]

    lines += [
        "",
        "## Reading a kdump-compressed dump: every page",
        "",
        "`cargo bench --bench read_all` on QEMU's kdump-zlib dumps (flattened, read in place), against",
        "`makedumpfile -R` merely reassembling the same stream into a KDUMP file.",
        "",
    ]
    for fixture in ("linux-6.1", "linux-6.12"):
        flat = os.path.join(FIX, fixture, "boot-qemu-vmcoreinfo", "vmcore.kdump-zlib.flat")
        vmlinux = os.path.join(FIX, fixture, "kernel", "vmlinux")
        bench = subprocess.run(["cargo", "bench", "-q", "--bench", "read_all", "--", flat, vmlinux],
                               cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
        out = f"/tmp/kpeek-bench-{os.getpid()}.kdump"
        t = time.perf_counter()
        with open(flat, "rb") as f:
            subprocess.run(["makedumpfile", "-R", out], stdin=f, capture_output=True, check=True)
        reassemble = time.perf_counter() - t
        os.unlink(out)
        lines.append(f"- {fixture}: {bench.replace(chr(10), '; ')}; `makedumpfile -R` reassembly alone: {reassemble:.3f} s")

    lines += ["", "Commands: `bash benches/compare.sh` (needs the CI packages; installs the newest drgn into target/bench-venv and,"
              " as root, builds a cached debootstrap chroot of Debian sid with its crash: `benches/crash9.sh`).", ""]
    path = os.path.join(ROOT, "docs", "PERFORMANCE.md")
    with open(path, "w") as f:
        f.write("\n".join(lines))
    print(open(path).read())


if __name__ == "__main__":
    main()
