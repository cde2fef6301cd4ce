# kpeek for GDB: `source gdb-scripts/kpeek.py`, then lx-ps, lx-threads,
# lx-dmesg, lx-lsmod, lx-cpus, lx-version, lx-cmdline, lx-pahole, lx-info, lx-symbols,
# `kpeek ARGS...` for any kpeek command, and the functions $lx_current()
# and $lx_task_by_pid(PID) (also as $kpeek_current and $kpeek_task_by_pid).
#
# Thin by design: this script starts `kpeek rpc` once and speaks JSON lines
# with it. kpeek does the work (DWARF, KASLR, walking the kernel's lists)
# and asks GDB only for memory, which GDB reads from whatever it is
# attached to: QEMU's gdbstub, kgdb, or `kpeek serve`. No `nokaslr` needed:
# kpeek finds the kernel itself.
#
# `kpeek gdb --core DUMP` (or --qemu HOST:PORT) starts GDB with all of this
# done; `kpeek gdb-script` prints this file, built into kpeek.
#
# The kpeek binary comes from $KPEEK, else from PATH. The vmlinux is the one
# GDB has loaded (`gdb vmlinux` or `file vmlinux`), or `set kpeek-vmlinux`; with none,
# the kernel's own kallsyms and BTF, read through GDB.

import json
import os
import re
import shutil
import subprocess

import gdb

KPEEK_SCRIPT_VERSION = "0.1"


class _Kpeek:
    """The `kpeek rpc` child process, started on first use."""

    def __init__(self):
        self.proc = None
        self.vmlinux = None
        self.next_id = 1
        self.last = {}

    def _vmlinux(self):
        chosen = gdb.parameter("kpeek-vmlinux")
        if chosen:
            return chosen
        progspace = gdb.current_progspace()
        if progspace is not None and progspace.filename:
            return progspace.filename
        # Loaded with add-symbol-file (e.g. to keep .data..percpu at 0).
        for objfile in gdb.objfiles():
            if objfile.filename and os.path.isfile(objfile.filename):
                return objfile.filename
        # None: kpeek reads the kernel's own kallsyms and BTF through GDB.
        return None

    def _start(self):
        vmlinux = self._vmlinux()
        if self.proc is not None and self.proc.poll() is None and self.vmlinux == vmlinux:
            return
        self.stop()
        exe = os.environ.get("KPEEK") or shutil.which("kpeek")
        if not exe:
            raise gdb.GdbError("kpeek: the kpeek binary is not on PATH; set KPEEK=/path/to/kpeek")
        try:
            self.proc = subprocess.Popen(
                [exe, "rpc"] + (["--vmlinux", vmlinux] if vmlinux else []),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                bufsize=1,
            )
        except OSError as e:
            raise gdb.GdbError("kpeek: cannot start %s: %s" % (exe, e))
        self.vmlinux = vmlinux
        hello = self._exchange({"id": 0, "hello": True})
        version = hello.get("version", "")
        if version.split(".")[:2] != KPEEK_SCRIPT_VERSION.split("."):
            self.stop()
            raise gdb.GdbError(
                "kpeek: %s is version %s, this script expects %s.x" % (exe, version, KPEEK_SCRIPT_VERSION)
            )

    def stop(self):
        if self.proc is not None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
            self.proc = None

    def _exchange(self, request):
        """Send a request; answer memory reads until the response comes."""
        try:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
        except (OSError, ValueError) as e:
            self.stop()
            raise gdb.GdbError("kpeek: the helper went away: %s" % e)
        inferior = gdb.selected_inferior()
        while True:
            line = self.proc.stdout.readline()
            if not line:
                self.stop()
                raise gdb.GdbError("kpeek: the helper exited unexpectedly")
            message = json.loads(line)
            if "read" in message:
                address, length = int(message["read"], 16), message["len"]
                try:
                    # The hot path (one per kpeek read): no JSON encoder.
                    reply = '{"data":"%s"}\n' % inferior.read_memory(address, length).tobytes().hex()
                except gdb.error as e:  # gdb.MemoryError too
                    reply = json.dumps({"error": str(e)}) + "\n"
                self.proc.stdin.write(reply)
                self.proc.stdin.flush()
            else:
                return message

    # Registers sent for commands that unwind running tasks.
    REGISTERS = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10",
                 "r11", "r12", "r13", "r14", "r15", "rip", "eflags", "cs", "ss")

    @classmethod
    def _threads(cls, with_registers):
        """Every thread's program counter (they narrow the KASLR search) and,
        with_registers, the registers of the first threads: the CPUs, on
        QEMU's gdbstub and on kpeek serve alike."""
        pcs, cpus = [], []
        inferior = gdb.selected_inferior()
        current = gdb.selected_thread()
        if current is None:
            raise gdb.GdbError("kpeek: GDB is not attached to a target (target remote HOST:PORT)")
        try:
            # GDB lists threads newest first; CPU order is by thread number.
            for thread in sorted(inferior.threads(), key=lambda t: t.num):
                thread.switch()
                try:
                    pcs.append("0x%x" % (int(gdb.parse_and_eval("$pc")) & 0xFFFFFFFFFFFFFFFF))
                except gdb.error:
                    pass
                if with_registers and len(cpus) < 256:
                    frame = gdb.newest_frame()
                    regs = {}
                    for name in cls.REGISTERS:
                        try:
                            regs[name] = "0x%x" % (int(frame.read_register(name)) & 0xFFFFFFFFFFFFFFFF)
                        except (gdb.error, ValueError):
                            pass
                    cpus.append(regs)
        finally:
            current.switch()
        return pcs, cpus

    def prepare(self):
        """Start kpeek rpc now and let it load the vmlinux's symbols and
        types, so the first command is quick (with no vmlinux, kpeek finds
        the kernel's own kallsyms and BTF at the first command instead).
        Quietly does nothing if it cannot (no kpeek binary): the commands
        then say why."""
        try:
            self._start()
            self._exchange({"id": self.next_id, "prepare": True})
            self.next_id += 1
        except gdb.GdbError:
            pass

    def run(self, argv):
        """Run one kpeek command line; return its output."""
        self._start()
        pcs, cpus = self._threads(bool(argv) and argv[0] in ("bt", "info", "hung"))
        request = {"id": self.next_id, "argv": argv, "pcs": pcs, "cpus": cpus}
        self.next_id += 1
        response = self._exchange(request)
        self.last = response
        if response.get("error"):
            raise gdb.GdbError("kpeek: %s" % response["error"])
        return response.get("output", "")


KPEEK = _Kpeek()


class _VmlinuxParameter(gdb.Parameter):
    """The vmlinux kpeek reads types and symbols from (default: GDB's own)."""

    set_doc = "Set the vmlinux kpeek uses."
    show_doc = "Show the vmlinux kpeek uses."

    def __init__(self):
        super().__init__("kpeek-vmlinux", gdb.COMMAND_DATA, gdb.PARAM_OPTIONAL_FILENAME)
        self.value = ""


_VmlinuxParameter()


class _KpeekCommand(gdb.Command):
    """Run a kpeek command on the target GDB is attached to.

Usage: kpeek COMMAND [ARGS...]    e.g. kpeek ps --threads, kpeek ps --format json,
       kpeek ps -p 1, kpeek threads, kpeek info, kpeek pahole task_struct.
kpeek's memory reads go through GDB; `kpeek stats` shows how many the last command made."""

    def __init__(self):
        super().__init__("kpeek", gdb.COMMAND_DATA)

    def invoke(self, arg, from_tty):
        argv = gdb.string_to_argv(arg)
        if argv == ["stats"]:
            gdb.write("reads: %s, bytes: %s\n" % (KPEEK.last.get("reads"), KPEEK.last.get("bytes")))
            return
        if not argv:
            raise gdb.GdbError("usage: kpeek COMMAND [ARGS...] (see kpeek --help)")
        gdb.write(KPEEK.run(argv))


class _Alias(gdb.Command):
    def __init__(self, name, argv, doc):
        self.__doc__ = doc
        super().__init__(name, gdb.COMMAND_DATA)
        self.argv = argv

    def invoke(self, arg, from_tty):
        gdb.write(KPEEK.run(self.argv + gdb.string_to_argv(arg)))


_KpeekCommand()
_Alias(
    "lx-ps",
    ["ps", "--style", "lx"],
    """List every task like the kernel's own lx-ps (TASK, PID, COMM), through kpeek.

Works under KASLR and on kernels with or without task_struct.thread_group.""",
)
_Alias(
    "lx-threads",
    ["threads"],
    """List every thread: TGID, PID, task_struct, kernel stack, name ([kernel threads]), thread count.""",
)
_Alias(
    "lx-pahole",
    ["pahole"],
    """Show a struct's layout exactly like pahole -C: lx-pahole STRUCT [--hex] [-E].""",
)
class _BtCommand(gdb.Command):
    """Kernel backtraces through kpeek: the kernel's ORC unwinder, on any target.

Usage: lx-bt            what every CPU is doing (the registers GDB has for its threads)
       lx-bt PID...     the kernel stacks of these tasks
       lx-bt --all      every task
Options: --style proc (exactly /proc/PID/stack), --no-lines, --format json."""

    def __init__(self):
        super().__init__("lx-bt", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        argv = gdb.string_to_argv(arg)
        targets = [a for a in argv if not a.startswith("-")]
        if not targets and "--all" not in argv and "-a" not in argv:
            argv = ["--cpus"] + argv
        gdb.write(KPEEK.run(["bt"] + argv))


_BtCommand()
_Alias(
    "lx-info",
    ["info"],
    """Summarise the kernel GDB is attached to: release, KASLR offset and how it was found, CPUs.""",
)
_Alias(
    "lx-hung",
    ["hung"],
    """Hung tasks through kpeek: every task in D state grouped by identical stack, how long each
has been blocked, the lock it waits on (mutex, rw_semaphore, semaphore, completion) and who
holds it, and deadlock cycles.

Options: --all-blocked (every sleeping task), --format json.""",
)
_Alias(
    "lx-dmesg",
    ["dmesg", "--style", "lx"],
    """Print the kernel log like the kernel's own lx-dmesg, through kpeek.

For dmesg's own format: kpeek dmesg [--raw] [--caller] [--format json].""",
)
_Alias(
    "lx-lsmod",
    ["lsmod", "--style", "lx"],
    """List loaded modules like the kernel's own lx-lsmod (address, name, core size, references, users).

For /proc/modules exactly: kpeek lsmod --style proc.""",
)
_Alias(
    "lx-cpus",
    ["cpus", "--style", "lx"],
    """Show the possible, present, online and active CPUs like the kernel's own lx-cpus.

For each CPU's current task, idle state and runqueue length: kpeek cpus.""",
)


def _info():
    return json.loads(KPEEK.run(["info", "--format", "json"]))


class _LxVersion(gdb.Command):
    """Report the Linux version of the kernel (linux_banner), like cat /proc/version."""

    def __init__(self):
        super().__init__("lx-version", gdb.COMMAND_DATA)

    def invoke(self, arg, from_tty):
        gdb.write(_info()["banner"] + "\n")


class _LxCmdline(gdb.Command):
    """Report the kernel command line (saved_command_line), like cat /proc/cmdline."""

    def __init__(self):
        super().__init__("lx-cmdline", gdb.COMMAND_DATA)

    def invoke(self, arg, from_tty):
        cmdline = _info().get("cmdline")
        if cmdline is None:
            raise gdb.GdbError("kpeek: saved_command_line is unreadable")
        gdb.write(cmdline + "\n")


_LxVersion()
_LxCmdline()


def _task(address):
    return gdb.parse_and_eval("*(struct task_struct *)%s" % address)


class _Current(gdb.Function):
    """Return the current task of a CPU (a struct task_struct), found by kpeek.

$lx_current([CPU]): CPU defaults to the selected thread's (thread N is CPU N-1,
as QEMU and kpeek serve number them)."""

    def __init__(self, name):
        super().__init__(name)

    def invoke(self, cpu=-1):
        cpu = int(cpu)
        if cpu < 0:
            thread = gdb.selected_thread()
            if thread is None:
                raise gdb.GdbError("kpeek: no thread selected")
            cpu = thread.num - 1
        cpus = json.loads(KPEEK.run(["cpus", "--format", "json"]))
        for c in cpus["cpus"]:
            if c["cpu"] == cpu and c.get("task"):
                return _task(c["task"])
        raise gdb.GdbError("kpeek: no current task for CPU %d" % cpu)


class _TaskByPid(gdb.Function):
    """Return the task (a struct task_struct) with the given PID, found by kpeek.

$lx_task_by_pid(PID)"""

    def __init__(self, name):
        super().__init__(name)

    def invoke(self, pid):
        return _TaskByPid.find(int(pid))

    @staticmethod
    def find(pid):
        tasks = json.loads(KPEEK.run(["ps", "--threads", "--format", "json", "-p", str(pid)]))["tasks"]
        for t in tasks:
            if t["pid"] == pid:
                return _task(t["task"])
        raise gdb.GdbError("No task of PID " + str(pid))


class _Module(gdb.Function):
    """Return a loaded module (a struct module) by name, found by kpeek.

$lx_module("NAME")"""

    def __init__(self, name):
        super().__init__(name)

    def invoke(self, name):
        name = name.string()
        for m in json.loads(KPEEK.run(["lsmod", "--format", "json"]))["modules"]:
            if m["name"] == name:
                return gdb.parse_and_eval("*(struct module *)%s" % m["module"])
        raise gdb.GdbError("Unable to find MODULE " + name)


class _ContainerOf(gdb.Function):
    """Return a pointer to the structure a member is in.

$container_of(PTR, "TYPE", "MEMBER"): PTR points at MEMBER of a TYPE (e.g. "struct task_struct")."""

    def __init__(self, name):
        super().__init__(name)

    def invoke(self, ptr, typename, member):
        typename, member = typename.string(), member.string()
        offset = int(gdb.parse_and_eval("(unsigned long)&((%s *)0)->%s" % (typename, member)))
        return gdb.parse_and_eval("(%s *)%#x" % (typename, int(ptr) - offset))


class _ThreadInfo(gdb.Function):
    """Return a task's struct thread_info.

$lx_thread_info(TASK): TASK a struct task_struct (e.g. $lx_current())."""

    def __init__(self, name):
        super().__init__(name)

    def invoke(self, task):
        return _thread_info(task)


def _thread_info(task):
    # x86_64 keeps it at the start of the task (CONFIG_THREAD_INFO_IN_TASK);
    # elsewhere it is at the base of the task's stack.
    try:
        return task["thread_info"]
    except gdb.error:
        return task["stack"].cast(gdb.lookup_type("struct thread_info").pointer()).dereference()


class _ThreadInfoByPid(gdb.Function):
    """Return the struct thread_info of the task with a PID.

$lx_thread_info_by_pid(PID)"""

    def __init__(self, name):
        super().__init__(name)

    def invoke(self, pid):
        return _thread_info(_TaskByPid.find(int(pid)))


# A module or section name fit for a GDB command line and a terminal.
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9_.$+-]{1,64}$")


class _LxSymbols(gdb.Command):
    """Load the kernel's symbols at their run-time addresses, and every loaded module's.

Usage: lx-symbols [DIR...]
The vmlinux GDB has is moved by the KASLR offset kpeek found (as `file vmlinux -o OFFSET`;
per-CPU variables stay put on kernels that link them at 0). Each loaded module's debug file
(NAME.ko, also .ko.xz/.ko.gz/.ko.zst) is looked for in the DIRs given, then
/lib/modules/RELEASE and /usr/lib/debug/lib/modules/RELEASE (recursively), and added with
add-symbol-file at the addresses of its sections in the running kernel (mod->sect_attrs)."""

    def __init__(self):
        super().__init__("lx-symbols", gdb.COMMAND_FILES, gdb.COMPLETE_FILENAME)
        self.tmp = None

    def _runtime(self, symbol):
        return int(json.loads(KPEEK.run(["read", symbol, "1", "--format", "json"]))["address"], 16)

    def _vmlinux(self, offset):
        objfile = gdb.current_progspace().filename
        if not objfile:
            gdb.write("lx-symbols: GDB has no vmlinux loaded: only modules are added\n")
            return
        try:
            have = int(gdb.parse_and_eval("(unsigned long)&linux_banner"))
        except gdb.error:
            have = None
        if have == self._runtime("linux_banner"):
            gdb.write("lx-symbols: %s already at its run-time addresses\n" % objfile)
            return
        try:
            zero_percpu = int(gdb.parse_and_eval("(unsigned long)&__per_cpu_start")) == 0
        except gdb.error:
            zero_percpu = False
        percpu = " -s .data..percpu 0" if zero_percpu else ""
        gdb.execute("symbol-file", to_string=True)
        gdb.execute("add-symbol-file %s -o %#x%s" % (objfile, offset, percpu), to_string=True)
        gdb.write("lx-symbols: %s at KASLR offset %#x\n" % (objfile, offset))

    def _find(self, name, dirs):
        wanted = {name, name.replace("_", "-")}
        for top in dirs:
            if not os.path.isdir(top):
                continue
            for root, _, files in os.walk(top):
                for f in files:
                    for ext in (".ko", ".ko.xz", ".ko.gz", ".ko.zst"):
                        if f.endswith(ext) and f[: -len(ext)] in wanted:
                            return os.path.join(root, f)
        return None

    def _plain(self, path):
        """A decompressed copy of a compressed .ko, or the file itself."""
        if path.endswith(".ko"):
            return path
        import tempfile
        if self.tmp is None:
            self.tmp = tempfile.mkdtemp(prefix="kpeek-lx-symbols-")
        out = os.path.join(self.tmp, os.path.basename(path).rsplit(".", 1)[0])
        if path.endswith(".xz"):
            import lzma
            data = lzma.open(path).read()
        elif path.endswith(".gz"):
            import gzip
            data = gzip.open(path).read()
        else:
            r = subprocess.run(["zstd", "-qdc", path], capture_output=True)
            if r.returncode != 0:
                raise gdb.GdbError("lx-symbols: cannot decompress %s (zstd)" % path)
            data = r.stdout
        with open(out, "wb") as f:
            f.write(data)
        return out

    def invoke(self, arg, from_tty):
        dirs = gdb.string_to_argv(arg)
        info = _info()
        offset = int(info["kaslr_offset"], 16)
        release = info.get("release") or ""
        dirs += ["/lib/modules/" + release, "/usr/lib/debug/lib/modules/" + release]
        confirm = gdb.parameter("confirm")
        gdb.execute("set confirm off")
        try:
            self._vmlinux(offset)
            modules = json.loads(KPEEK.run(["lsmod", "--format", "json"]))["modules"]
            for m in modules:
                # Names come from kernel memory: they go into a GDB command
                # and onto the terminal only when they are plain.
                if not _PLAIN_NAME.match(m["name"]):
                    gdb.write("lx-symbols: a module named %r skipped\n" % m["name"])
                    continue
                path = self._find(m["name"], dirs)
                if path is None:
                    gdb.write("lx-symbols: no debug file for module %s\n" % m["name"])
                    continue
                sections = {
                    s["name"]: s["address"]
                    for s in m.get("sections", [])
                    if _PLAIN_NAME.match(s["name"])
                }
                text = sections.pop(".text", m["address"])
                args = "".join(" -s %s %s" % (n, a) for n, a in sections.items())
                gdb.execute("add-symbol-file %s %s%s" % (self._plain(path), text, args), to_string=True)
                gdb.write("lx-symbols: %s (%s) at %s\n" % (m["name"], path, text))
        finally:
            gdb.execute("set confirm %s" % ("on" if confirm else "off"))


_LxSymbols()


def _registered(name):
    """Whether a convenience function $name exists (e.g. from the kernel's own scripts)."""
    try:
        return gdb.parse_and_eval("$" + name).type.code == gdb.TYPE_CODE_INTERNAL_FUNCTION
    except gdb.error:
        return False


# One policy for names: kpeek's functions are always $kpeek_NAME, and also
# the kernel's name ($lx_NAME, $container_of) unless the kernel's own
# scripts registered it first (theirs is then left alone).
for _name, _kernel, _cls in (
    ("current", "lx_current", _Current),
    ("task_by_pid", "lx_task_by_pid", _TaskByPid),
    ("module", "lx_module", _Module),
    ("container_of", "container_of", _ContainerOf),
    ("thread_info", "lx_thread_info", _ThreadInfo),
    ("thread_info_by_pid", "lx_thread_info_by_pid", _ThreadInfoByPid),
):
    _cls("kpeek_" + _name)
    if not _registered(_kernel):
        _cls(_kernel)

# Start the helper now if GDB already has the vmlinux.
KPEEK.prepare()
