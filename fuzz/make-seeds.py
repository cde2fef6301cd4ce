#!/usr/bin/env python3
"""Write small seed inputs for the fuzz targets into fuzz/corpus/TARGET/.

The seeds are built here from the formats' definitions (no fixture bytes),
so the fuzzer starts past the magic numbers and headers."""
import os
import re
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


def kdump():
    """A small kdump-compressed file (header version 6, 4 KiB blocks): 256
    page frames of RAM, four dumped (two plain, two zlib), the notes in the
    sub-header's block."""
    import zlib
    bs, max_mapnr = 4096, 256
    head = bytearray(bs)
    head[0:8] = b"KDUMP   "
    struct.pack_into("<i", head, 8, 6)
    for i, field in enumerate([b"Linux", b"seed", b"6.1.0", b"#1 SMP", b"x86_64", b""]):
        head[12 + 65 * i:12 + 65 * i + len(field)] = field
    # status, block_size, sub_hdr_size, bitmap_blocks, max_mapnr, ..., nr_cpus
    struct.pack_into("<IiiIIiiiii", head, 424, 0, bs, 1, 2, max_mapnr, max_mapnr, 0, 4, 0, 1)
    sub = bytearray(bs)
    notes_off = bs + 256
    struct.pack_into("<QiIQQQQQQQQQQQ", sub, 0, 0x1000000, 31, 0, 0, max_mapnr, 0, 0,
                     notes_off, len(NOTES), 0, 0, 0, max_mapnr, max_mapnr)
    sub[256:256 + len(NOTES)] = NOTES
    bitmap1 = bytearray(bs)
    bitmap1[:max_mapnr // 8] = b"\xff" * (max_mapnr // 8)
    bitmap2 = bytearray(bs)
    dumped = [0, 1, 16, 255]
    for pfn in dumped:
        bitmap2[pfn // 8] |= 1 << (pfn % 8)
    data_off = 5 * bs
    descs, data = b"", b""
    for k, pfn in enumerate(dumped):
        page = bytes((pfn + i) & 0xff for i in range(bs))
        raw, flags = (zlib.compress(page), 1) if k % 2 else (page, 0)
        descs += struct.pack("<QIIQ", data_off + len(data), len(raw), flags, 0)
        data += raw
    return bytes(head + sub + bitmap1 + bitmap2) + descs.ljust(bs, b"\0") + data


def flattened(dump, cuts):
    """`dump` as makedumpfile's flattened stream, in chunks cut at `cuts`,
    the last chunk first, then the file's first 16 bytes again (a later
    chunk overwrites an earlier one)."""
    hdr = b"makedumpfile".ljust(16, b"\0") + struct.pack(">qq", 1, 1)
    pieces = [(a, dump[a:b]) for a, b in zip([0] + cuts, cuts + [len(dump)])]
    pieces = pieces[-1:] + pieces[:-1] + [(0, dump[:16])]
    out = hdr.ljust(4096, b"\0")
    for off, piece in pieces:
        out += struct.pack(">qq", off, len(piece)) + piece
    return out + struct.pack(">qq", -1, -1)


def kallsyms_image(absolute):
    """A kernel image at _text (0xffffffff81000000) holding consistent
    kallsyms tables in the Linux 6.2+ layout (num_syms, names, token table,
    token index, offsets, relative base), 1,000 symbols with `_text` first;
    behind the 41-byte head the `kallsyms` target reads: five table offsets
    and the address-table mode."""
    text = 0xFFFFFFFF81000000
    tokens = [bytes([i]) if 0x21 <= i < 0x7F else b"~%02x" % i for i in range(256)]
    names = [("T", "_text"), ("T", "_stext")] + [("tTdDrb"[i % 6], f"sym_{i}") for i in range(998)]
    img = bytearray(struct.pack("<Q", text))  # the relative base the target reads at _text
    num_at = len(img)
    img += struct.pack("<II", len(names), 0)
    names_at = len(img)
    for kind, name in names:
        enc = (kind + name).encode()
        img += bytes([len(enc)]) + enc
    img += bytes(-len(img) % 8)
    table_at = len(img)
    index = []
    for t in tokens:
        index.append(len(img) - table_at)
        img += t + b"\0"
    img += bytes(-len(img) % 8)
    index_at = len(img)
    img += b"".join(struct.pack("<H", i) for i in index)
    img += bytes(-len(img) % 8)
    addrs_at = len(img)
    if absolute:
        img += b"".join(struct.pack("<Q", text + 16 * i) for i in range(len(names)))
    else:
        img += b"".join(struct.pack("<i", 16 * i) for i in range(len(names)))
        img += bytes(-len(img) % 8) + struct.pack("<Q", text)
    head = struct.pack("<QQQQQ", num_at, names_at, table_at, index_at, addrs_at) + bytes([absolute])
    return head + bytes(img)


put("notes", "notes", NOTES)
put("notes", "vmcoreinfo", VMCOREINFO)
put("dump_elf", "vmcore", elf_vmcore())
put("dump_kdump", "header", b"KDUMP   " + struct.pack("<i", 6) + bytes(4096))
KDUMP = kdump()
put("dump_kdump", "kdump-v6", KDUMP)
put("dump_flattened", "kdump-v6", flattened(KDUMP, [4096, 8192, 5 * 4096, 5 * 4096 + 5000]))
put("kallsyms", "relative", kallsyms_image(0))
put("kallsyms", "absolute", kallsyms_image(1))
put("dump_flattened", "header", b"makedumpfile".ljust(16, b"\0") + struct.pack(">qq", 1, 1)
    + bytes(4096 - 32) + struct.pack(">qq", 0, 8) + b"KDUMP   " + struct.pack(">qq", -1, -1))
put("btf", "list_head", btf())

# Issue 25's families. A stream of tiny chunks: a chunk of garbage over
# the whole file first (later chunks win), then 7-byte chunks in swapped
# pairs, each overlapping the next by one byte.
def tiny_chunks(dump, size=7):
    hdr = b"makedumpfile".ljust(16, b"\0") + struct.pack(">qq", 1, 1)
    out = bytearray(hdr.ljust(4096, b"\0"))
    out += struct.pack(">qq", 0, len(dump)) + b"\x5a" * len(dump)
    starts = list(range(0, len(dump), size))
    for i in range(0, len(starts), 2):
        for s in reversed(starts[i:i + 2]):
            piece = dump[s:s + size + 1]
            out += struct.pack(">qq", s, len(piece)) + piece
    return bytes(out) + struct.pack(">qq", -1, -1)


put("dump_flattened", "tiny-chunks", tiny_chunks(KDUMP))
# A kdump whose sub-header puts the notes at an absurd offset, and one with
# a block size kpeek does not support.
bad_notes = bytearray(KDUMP)
struct.pack_into("<Q", bad_notes, 4096 + 48, 1 << 40)
put("dump_kdump", "notes-absurd", bytes(bad_notes))
odd_block = bytearray(KDUMP)
struct.pack_into("<i", odd_block, 428, 3000)
put("dump_kdump", "block-3000", bytes(odd_block))
# VMCOREINFO that contradicts itself or the dump, and strings with control
# bytes in it.
put("notes", "vmcoreinfo-hostile", VMCOREINFO.replace(b"PAGESIZE=4096", b"PAGESIZE=0")
    .replace(b"OSRELEASE=6.1.0", b"OSRELEASE=\x1b]0;x\x07\r6.1")
    + b"NUMBER(pgtable_l5_enabled)=1\n")
put("rpc_request", "hello", b'{"id":1,"hello":true}\n{"id":2,"argv":["ps"],"pcs":["0xffffffff81000000"],'
    b'"cpus":[{"rip":"0xffffffff81000000","rsp":"0x10","cs":"0x10"}]}\n'
    b'{"data":"0011"}\n{"id":4}\n{"data":"00112233"}\n{"id":8}\n{"error":"Cannot access memory"}\n')
put("qemu_packets", "xml", b'<feature><reg name="rax" bitsize="64"/><!-- <reg name="x" bitsize="8"/> -->'
    b'<reg name="cr3" bitsize="64" type="int"/></feature>\x00T05thread:01;}\x03*"0*"')


def gdb_packets(*bodies):
    """GDB's side of a connection: `+` acks and `$body#checksum` packets."""
    out = b""
    for body in bodies:
        out += b"+$" + body + b"#" + b"%02x" % (sum(body) & 0xff)
    return out


# What GDB sends when it connects, looks around and leaves (thread 0x800000
# is CPU 0, thread 1 is init: see src/gdbserver/threads.rs). The first byte
# is the target's mode: 0 sends the bytes as they are, 1 fixes checksums.
SESSION = gdb_packets(
    b"qSupported:multiprocess+;swbreak+;hwbreak+;qRelocInsn+;fork-events+;"
    b"vfork-events+;exec-events+;vContSupported+;QThreadEvents+;no-resumed+;xmlRegisters=i386",
    b"vMustReplyEmpty", b"Hgp0.0", b"qXfer:features:read:target.xml:0,ffb",
    b"qXfer:features:read:64bit-core.xml:0,ffb", b"qTStatus", b"?", b"qfThreadInfo",
    b"qsThreadInfo", b"qAttached", b"Hc-1", b"qC", b"qOffsets", b"g",
    b"qThreadExtraInfo,800000", b"qThreadExtraInfo,1", b"Hg1", b"g", b"p10",
    b"m ffffffff81000000,40", b"mffffffff82000000,2000", b"mffff888000000000,100",
    b"T1", b"T800000", b"Z0,ffffffff81000000,1", b"z0,ffffffff81000000,1",
    b"M ffffffff81000000,1:90", b"G" + b"00" * 8, b"P10=0000000000000000",
    b"vCont?", b"vCont;c", b"c", b"s",
    b"qRcmd," + b"info".hex().encode(), b"qRcmd," + b"ps -T".hex().encode(),
    b"qRcmd," + b"threads".hex().encode(), b"qRcmd," + b"info version".hex().encode(),
    b"qRcmd," + b"help".hex().encode(), b"qRcmd,7a") + b"\x03" + gdb_packets(b"k", b"D")
put("serve_packets", "session", b"\x00" + SESSION)
put("serve_packets", "session-fixed", b"\x01" + re.sub(rb"#[0-9a-f]{2}", b"#00", SESSION))
put("serve_packets", "noack", b"\x01" + gdb_packets(b"QStartNoAckMode")
    + b"$qfThreadInfo#00$qsThreadInfo#00$Hgp1.1#00$g#00$m0,8#00$vKill;1#00")
# GDB clients that send too much: a packet longer than PacketSize=4000, a `$`
# with no `#`, bytes that are no packet.
put("serve_packets", "oversized", b"\x01" + gdb_packets(b"m0," + b"0" * 20000))
put("serve_packets", "unterminated", b"\x00+$" + b"a" * 40000)
put("serve_packets", "garbage", b"\x00" + b"z" * 5000 + gdb_packets(b"qfThreadInfo"))

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
