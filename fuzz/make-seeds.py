#!/usr/bin/env python3
"""Write small seed inputs for the fuzz targets into fuzz/corpus/TARGET/.

The seeds are built here from the formats' definitions (no fixture bytes),
so the fuzzer starts past the magic numbers and headers."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def put(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def note(name, ntype, desc):
    n = name + b"\0"
    pad = lambda b: b + b"\0" * (-len(b) % 4)
    return struct.pack("<III", len(n), len(desc), ntype) + pad(n) + pad(desc)


VMCOREINFO = (b"OSRELEASE=6.1.0\nPAGESIZE=4096\nSYMBOL(_stext)=ffffffff81000000\n"
              b"KERNELOFFSET=1e000000\nCRASHTIME=1700000000\n"
              b"OFFSET(list_head.next)=0\nBUILD-ID=0123456789abcdef\n")
PRSTATUS = bytearray(336)
struct.pack_into("<i", PRSTATUS, 32, 1)
NOTES = note(b"CORE", 1, bytes(PRSTATUS)) + note(b"VMCOREINFO", 0, VMCOREINFO) \
    + note(b"QEMU", 0, bytes(432))


def elf_vmcore():
    ehdr_size, phdr_size = 64, 56
    phoff = ehdr_size
    notes_off = phoff + 2 * phdr_size
    load_off = notes_off + len(NOTES)
    load_off += -load_off % 4096
    page = bytes(range(256)) * 16
    eh = b"\x7fELF\x02\x01\x01" + bytes(9) + struct.pack(
        "<HHIQQQIHHHHHH", 4, 62, 1, 0, phoff, 0, 0, ehdr_size, phdr_size, 2, 0, 0, 0)
    ph_note = struct.pack("<IIQQQQQQ", 4, 0, notes_off, 0, 0, len(NOTES), 0, 4)
    ph_load = struct.pack("<IIQQQQQQ", 1, 7, load_off, 0xffff888000100000, 0x100000,
                          len(page), len(page), 4096)
    out = eh + ph_note + ph_load + NOTES
    return out + bytes(load_off - len(out)) + page


def btf():
    strs = b"\0int\0list_head\0next\0"
    # BTF_KIND_INT "int", size 4, 32 bits signed.
    t_int = struct.pack("<III", 1, 1 << 24, 4) + struct.pack("<I", (1 << 24) | 32)
    # BTF_KIND_PTR to type 3 (the struct), BTF_KIND_STRUCT list_head, one member.
    t_ptr = struct.pack("<III", 0, 2 << 24, 3)
    t_struct = struct.pack("<III", 5, (4 << 24) | 1, 8) + struct.pack("<III", 15, 2, 0)
    types = t_int + t_ptr + t_struct
    hdr = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(strs))
    return hdr + types + strs


put("notes", "notes", NOTES)
put("notes", "vmcoreinfo", VMCOREINFO)
put("dump_elf", "vmcore", elf_vmcore())
put("dump_kdump", "header", b"KDUMP   " + struct.pack("<i", 6) + bytes(4096))
put("dump_flattened", "header", b"makedumpfile".ljust(16, b"\0") + struct.pack(">qq", 1, 1)
    + bytes(4096 - 32) + struct.pack(">qq", 0, 8) + b"KDUMP   " + struct.pack(">qq", -1, -1))
put("btf", "list_head", btf())
put("rpc_request", "hello", b'{"id":1,"hello":true}\n{"id":2,"argv":["ps"],"pcs":["0xffffffff81000000"],'
    b'"cpus":[{"rip":"0xffffffff81000000","rsp":"0x10","cs":"0x10"}]}\n'
    b'{"data":"0011"}\n{"id":4}\n{"data":"00112233"}\n{"id":8}\n{"error":"Cannot access memory"}\n')
put("qemu_packets", "xml", b'<feature><reg name="rax" bitsize="64"/><!-- <reg name="x" bitsize="8"/> -->'
    b'<reg name="cr3" bitsize="64" type="int"/></feature>\x00T05thread:01;}\x03*"0*"')

# The DWARF target: a small object file with the types kpeek looks up,
# if a C compiler is at hand.
C = b"""struct list_head { struct list_head *next, *prev; };
enum { TASK_COMM_LEN = 16 };
struct mm_struct { unsigned long pgd; };
struct task_struct { int pid; char comm[TASK_COMM_LEN]; struct list_head tasks;
                     struct mm_struct *mm; unsigned int flags:3, x:5; };
struct task_struct init_task;
"""
try:
    import subprocess
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "t.c")
        with open(src, "wb") as f:
            f.write(C)
        for v in ("4", "5"):
            obj = os.path.join(tmp, f"t{v}.o")
            subprocess.run(["cc", f"-gdwarf-{v}", "-c", "-o", obj, src], check=True)
            with open(obj, "rb") as f:
                put("dwarf", f"dwarf{v}.o", f.read())
except (OSError, subprocess.CalledProcessError) as e:
    print(f"no DWARF seeds: {e}")
