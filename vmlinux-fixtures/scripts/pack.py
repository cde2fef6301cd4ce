#!/usr/bin/env python3
"""Pack one fixture kernel's build into vmlinux-fixtures/linux-VERSION/.

    DEST/manifest.json          what is here, how it was made, what the guest saw
    DEST/kernel.tar.zst         vmlinux, bzImage, .config, System.map, module,
                                initramfs, the kernel's own GDB scripts (gdb/)
    DEST/boot-NAME.tar.zst      per boot: dumps, truth.jsonl, console.log
    DEST/oracles/               pahole -C outputs, pahole --all, drgn listings, lx-ps

Archives are tar (sorted, fixed mtime and owner) compressed with
`zstd -19 --long=31`; decompress with a window of up to 2 GiB.
"""
import argparse
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile

BOOTS = {
    "qemu-vmcoreinfo": {
        "how": "QEMU -device vmcoreinfo; QMP stop, then dump-guest-memory three times",
        "vmcoreinfo": True,
        "dumps": {"vmcore.elf": "qemu-elf", "vmcore-paging.elf": "qemu-elf-paging",
                  "vmcore.kdump-zlib.flat": "qemu-kdump-zlib-flattened"},
    },
    "qemu-plain": {
        "how": "QEMU without -device vmcoreinfo; QMP stop, then dump-guest-memory",
        "vmcoreinfo": False,
        "dumps": {"vmcore.elf": "qemu-elf"},
    },
    "kdump": {
        "how": "crashkernel=96M, kexec -p, echo c > /proc/sysrq-trigger; the capture "
               "kernel runs makedumpfile -F -d 31 to ttyS2; makedumpfile -R reassembles it",
        "vmcoreinfo": True,
        "dumps": {"vmcore.kdump.flat": "kdump-compressed-flattened",
                  "vmcore.kdump": "kdump-compressed"},
    },
    "hung": {
        "how": "QEMU -device vmcoreinfo, kpeek.mode=hung: the fixture module's ABBA mutex "
               "deadlock, rwsem and completion waits, user readers in D behind them; "
               "QMP stop after the hung-task detector reported them, then dump-guest-memory",
        "vmcoreinfo": True,
        "dumps": {"vmcore.elf": "qemu-elf"},
    },
    "hung-panic": {
        "how": "the hangs of kpeek.mode=hung with hung_task_panic=1 and crashkernel=96M; "
               "after the truth hung_task_timeout_secs=5, the detector panics; the capture "
               "kernel runs makedumpfile -F -d 31 to ttyS2; makedumpfile -R reassembles it",
        "vmcoreinfo": True,
        "dumps": {"vmcore.kdump.flat": "kdump-compressed-flattened",
                  "vmcore.kdump": "kdump-compressed"},
    },
    "live-nokaslr": {
        "how": "booted with nokaslr; the kernel's own lx-ps run in real GDB over QEMU's gdbstub",
        "vmcoreinfo": False,
        "dumps": {},
    },
}


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tar_zst(dest, members):
    """members: list of (path on disk, name in archive). Returns file facts."""
    files = {}
    buf = dest + ".tar"
    with tarfile.open(buf, "w", format=tarfile.PAX_FORMAT) as t:
        for src, name in sorted(members, key=lambda m: m[1]):
            info = t.gettarinfo(src, arcname=name)
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mode = 0o755 if os.access(src, os.X_OK) else 0o644
            with open(src, "rb") as f:
                t.addfile(info, f)
            files[name] = {"size": os.path.getsize(src), "sha256": sha256(src)}
    subprocess.run(["zstd", "-q", "-f", "-T2", "-19", "--long=31", "--rm", buf, "-o", dest], check=True)
    return files


def symbol(system_map, name):
    with open(system_map) as f:
        for line in f:
            addr, _, sym = line.split()
            if sym == name:
                return int(addr, 16)
    raise KeyError(name)


def truth_facts(truth_path, system_map):
    """What the guest itself said: release, KASLR, where _text was in RAM."""
    facts = {"tasks": 0}
    files = {}
    with open(truth_path, "rb") as f:
        for line in f:
            line = line.strip()
            if not line.startswith(b"{"):
                continue
            o = json.loads(line)
            if o["kind"] == "file":
                files[o["path"]] = o["data"]
            elif o["kind"] == "task":
                facts["tasks"] += 1
            elif o["kind"] == "begin":
                facts["capturer_pids"] = [o["self"], o["parent"]]
    facts["release"] = files["/proc/version"].split()[2]
    kallsyms = {}
    for line in files["/proc/kallsyms"].splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[2] in ("_text", "_stext", "linux_banner", "init_task") and parts[2] not in kallsyms:
            kallsyms[parts[2]] = int(parts[0], 16)
    facts["kallsyms"] = {k: hex(v) for k, v in kallsyms.items()}
    facts["kaslr_offset"] = hex(kallsyms["_text"] - symbol(system_map, "_text"))
    m = re.search(r"^\s*([0-9a-f]+)-[0-9a-f]+ : Kernel code", files["/proc/iomem"], re.M)
    facts["kernel_code_phys"] = hex(int(m.group(1), 16)) if m else None
    facts["cmdline"] = files["/proc/cmdline"].strip()
    facts["vmcoreinfo_sysfs"] = files.get("/sys/kernel/vmcoreinfo", "").strip() or None
    return facts


def version(cmd):
    try:
        r = subprocess.run(cmd, capture_output=True, text=True)
        return (r.stdout or r.stderr).strip().splitlines()[0]
    except (OSError, IndexError):
        return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tree", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--dest", required=True)
    ap.add_argument("--kernel-version", required=True)
    ap.add_argument("--config-fragments", nargs="+", required=True)
    ap.add_argument("--build-seconds", type=int, default=0)
    a = ap.parse_args()
    tree, out, dest = a.tree, a.out, a.dest
    if os.path.isdir(dest):
        shutil.rmtree(dest)
    os.makedirs(dest)
    system_map = os.path.join(tree, "System.map")

    manifest = {
        "schema": 1,
        "name": os.path.basename(dest),
        "source_package": f"linux-source-{a.kernel_version}",
        "release": subprocess.run(["make", "-s", "-C", tree, "kernelrelease"], capture_output=True,
                                  text=True, check=True).stdout.strip(),
        "config_fragments": [os.path.basename(p) for p in a.config_fragments],
        "vmlinux_text": hex(symbol(system_map, "_text")),
        "build_seconds": a.build_seconds,
        "tools": {
            "gcc": version(["gcc", "--version"]),
            "qemu": version(["qemu-system-x86_64", "--version"]),
            "pahole": version(["pahole", "--version"]),
            "makedumpfile": version(["makedumpfile", "-v"]),
            "gdb": version(["gdb", "--version"]),
            "busybox": version(["busybox"]),
            "drgn": json.load(open(os.path.join(out, "oracles", "drgn",
                                                "qemu-vmcoreinfo-vmcore.elf.json")))["drgn_version"],
        },
        "archives": {},
        "boots": {},
    }

    kernel_members = [
        (os.path.join(tree, "vmlinux"), "vmlinux"),
        (os.path.join(tree, "arch/x86/boot/bzImage"), "bzImage"),
        (os.path.join(tree, ".config"), "config"),
        (system_map, "System.map"),
        (os.path.join(out, "initramfs", "main.cpio.gz"), "initramfs/main.cpio.gz"),
        (os.path.join(tree, "scripts/gdb/vmlinux-gdb.py"), "gdb/vmlinux-gdb.py"),
    ]
    gdb_dir = os.path.join(tree, "scripts/gdb/linux")
    for name in sorted(os.listdir(gdb_dir)):
        if name.endswith(".py"):
            kernel_members.append((os.path.join(gdb_dir, name), f"gdb/scripts/gdb/linux/{name}"))
    ko = os.path.join(out, "initramfs", "kpeek_fixture.ko")
    kernel_members.append((ko, "kpeek_fixture.ko"))
    archives = {"kernel.tar.zst": kernel_members}

    for boot, spec in BOOTS.items():
        bdir = os.path.join(out, "boots", boot)
        members = [(os.path.join(bdir, n), n) for n in ("truth.jsonl", "console.log", "qemu-command.txt")]
        members += [(os.path.join(bdir, n), n) for n in spec["dumps"]]
        if os.path.exists(os.path.join(bdir, "lx-ps.txt")):
            members.append((os.path.join(bdir, "lx-ps.txt"), "lx-ps.txt"))
        archives[f"boot-{boot}.tar.zst"] = members
        facts = truth_facts(os.path.join(bdir, "truth.jsonl"), system_map)
        manifest["boots"][boot] = {
            "archive": f"boot-{boot}.tar.zst",
            "how": spec["how"],
            "vmcoreinfo_in_dump": spec["vmcoreinfo"],
            "dumps": spec["dumps"],
            "qemu_command": open(os.path.join(bdir, "qemu-command.txt")).read().strip(),
            **facts,
        }

    for name, members in archives.items():
        files = tar_zst(os.path.join(dest, name), members)
        manifest["archives"][name] = {
            "sha256": sha256(os.path.join(dest, name)),
            "size": os.path.getsize(os.path.join(dest, name)),
            "files": files,
        }

    shutil.copytree(os.path.join(out, "oracles"), os.path.join(dest, "oracles"))
    # Keep only what lx-ps printed: GDB adds its stop location before and
    # "[Inferior 1 (process 1) detached]" after.
    lxps = os.path.join(dest, "oracles", "lx-ps.txt")
    lines = open(lxps).read().splitlines(keepends=True)
    start = next(i for i, l in enumerate(lines) if l.split() == ["TASK", "PID", "COMM"])
    lines = [l for l in lines[start:] if not l.startswith("[Inferior ")]
    open(lxps, "w").write("".join(lines))
    subprocess.run(["zstd", "-q", "-19", "--rm", os.path.join(dest, "oracles", "pahole-all.txt")], check=True)
    with open(os.path.join(dest, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=False)
        f.write("\n")
    total = sum(v["size"] for v in manifest["archives"].values())
    print(f"packed {dest}: {total / 1e6:.1f} MB of archives")


if __name__ == "__main__":
    main()
