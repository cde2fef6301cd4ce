#!/usr/bin/env python3
"""Boot a fixture kernel under QEMU, wait for the guest's truth, then act.

    run_guest.py --kernel bzImage --initrd main.cpio.gz --out DIR ACTION...

Actions, in the order given:
  dump:elf            QMP dump-guest-memory, ELF, no paging     -> DIR/vmcore.elf
  dump:elf-paging     ELF with paging (-p)                      -> DIR/vmcore-paging.elf
  dump:kdump-zlib     flattened kdump-compressed, zlib          -> DIR/vmcore.kdump-zlib.flat
  lx-ps:TREE          real GDB + the kernel's own TREE/vmlinux-gdb.py: lx-ps -> DIR/lx-ps.txt
  kdump               wait for the guest to panic, capture and power off;
                      the capture kernel's stream is DIR/vmcore.kdump.flat

The guest's truth (kptruth's JSON lines on ttyS1) is saved as DIR/truth.jsonl,
its console as DIR/console.log.
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import time

TRUTH_END = b'{"kind":"end"'


class Qmp:
    def __init__(self, path, timeout=120):
        deadline = time.time() + 30
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(path)
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.1)
        self.sock.settimeout(timeout)
        self.buf = b""
        self._recv()  # greeting
        self.cmd("qmp_capabilities")

    def _recv(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RuntimeError("QMP connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def cmd(self, name, **args):
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            reply = self._recv()
            if "event" in reply:
                continue
            if "error" in reply:
                raise RuntimeError(f"QMP {name}: {reply['error']}")
            return reply.get("return")


def wait_for(path, needle, timeout, proc):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.exists(path):
            with open(path, "rb") as f:
                if needle in f.read():
                    return True
        if proc.poll() is not None:
            return False
        time.sleep(0.2)
    return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kernel", required=True)
    ap.add_argument("--initrd", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--mem", default="128M")
    ap.add_argument("--smp", default="2")
    ap.add_argument("--append", default="")
    ap.add_argument("--vmcoreinfo", action="store_true", help="add -device vmcoreinfo")
    ap.add_argument("--vmlinux", help="for lx-ps")
    ap.add_argument("--gdb-port", type=int, default=0)
    ap.add_argument("--timeout", type=int, default=300)
    ap.add_argument("actions", nargs="+")
    a = ap.parse_args()

    os.makedirs(a.out, exist_ok=True)
    out = os.path.abspath(a.out)
    qmp_path = os.path.join(out, "qmp.sock")
    truth = os.path.join(out, "truth.jsonl")
    flat = os.path.join(out, "vmcore.kdump.flat")
    for p in (qmp_path, truth, flat):
        if os.path.exists(p):
            os.unlink(p)
    append = "console=ttyS0 panic=-1 " + a.append
    cmd = ["qemu-system-x86_64", "-machine", "pc", "-cpu", "qemu64", "-m", a.mem, "-smp", a.smp,
           "-nographic", "-no-reboot", "-vga", "none", "-nic", "none", "-kernel", a.kernel, "-initrd", a.initrd, "-append", append,
           "-qmp", f"unix:{qmp_path},server=on,wait=off",
           "-serial", f"file:{os.path.join(out, 'console.log')}",
           "-serial", f"file:{truth}",
           "-serial", f"file:{flat}",
           "-monitor", "none", "-display", "none"]
    if a.vmcoreinfo:
        cmd += ["-device", "vmcoreinfo"]
    if a.gdb_port:
        cmd += ["-gdb", f"tcp:127.0.0.1:{a.gdb_port}"]
    print("+", " ".join(cmd), flush=True)
    # Recorded without this machine's paths: the work directory is $WORK.
    work = os.path.commonpath([os.path.abspath(a.kernel), os.path.abspath(out)])
    with open(os.path.join(out, "qemu-command.txt"), "w") as f:
        f.write(" ".join(cmd).replace(work, "$WORK") + "\n")
    t0 = time.time()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
    try:
        if "kdump" in a.actions:
            # The guest records the truth, panics, the capture kernel saves the
            # dump to ttyS2 and powers off.
            try:
                proc.wait(timeout=a.timeout)
            except subprocess.TimeoutExpired:
                sys.exit(f"guest did not power off within {a.timeout}s: see {out}/console.log")
            print(f"kdump boot done in {time.time() - t0:.1f}s", flush=True)
            return
        if not wait_for(truth, TRUTH_END, a.timeout, proc):
            sys.exit(f"no truth from the guest within {a.timeout}s: see {out}/console.log")
        print(f"truth recorded {time.time() - t0:.1f}s after boot", flush=True)
        qmp = Qmp(qmp_path)
        qmp.cmd("stop")
        for action in a.actions:
            kind, _, arg = action.partition(":")
            if kind == "dump":
                name, paging, fmt = {
                    "elf": ("vmcore.elf", False, "elf"),
                    "elf-paging": ("vmcore-paging.elf", True, "elf"),
                    "kdump-zlib": ("vmcore.kdump-zlib.flat", False, "kdump-zlib"),
                }[arg]
                path = os.path.join(out, name)
                if os.path.exists(path):
                    os.unlink(path)
                t = time.time()
                qmp.cmd("dump-guest-memory", paging=paging, protocol=f"file:{path}", format=fmt)
                print(f"dumped {name} ({os.path.getsize(path)} bytes) in {time.time() - t:.1f}s", flush=True)
            elif kind == "lx-ps":
                # The kernel's own lx-ps, through QEMU's gdbstub (it stops the VM).
                gdb = ["gdb", "-nx", "-batch", "-ex", "set pagination off",
                       "-ex", f"add-auto-load-safe-path {arg}",
                       "-ex", f"file {a.vmlinux}",
                       "-ex", f"source {arg}/vmlinux-gdb.py",
                       "-ex", f"target remote 127.0.0.1:{a.gdb_port}",
                       "-ex", "lx-ps"]
                r = subprocess.run(gdb, capture_output=True, text=True, timeout=600)
                with open(os.path.join(out, "lx-ps.txt"), "w") as f:
                    f.write(r.stdout)
                with open(os.path.join(out, "lx-ps.stderr"), "w") as f:
                    f.write(r.stderr)
                print(f"lx-ps: {len(r.stdout.splitlines())} lines, rc {r.returncode}", flush=True)
            else:
                sys.exit(f"unknown action {action}")
        qmp.cmd("quit")
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if os.path.exists(qmp_path):
            os.unlink(qmp_path)


if __name__ == "__main__":
    main()
