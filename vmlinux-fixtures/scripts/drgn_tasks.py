#!/usr/bin/env python3
"""Oracle: drgn's view of the tasks in a dump, as JSON.

    drgn_tasks.py VMLINUX CORE > out.json

For every task drgn's for_each_task() yields (idle tasks included where the
installed drgn can list them): pid, tgid, ppid, comm, state letter
(task_state_to_char), kernel-thread flag, cpu, and drgn's stack trace
(function names; "??" where drgn has no symbol). When drgn cannot open the
dump at all, the output is {"drgn_version", "error"} instead.
"""
import json
import sys

import drgn
from drgn.helpers.linux.pid import for_each_task
from drgn.helpers.linux.sched import task_cpu, task_state_to_char

PF_KTHREAD = 0x00200000


def main():
    vmlinux, core = sys.argv[1], sys.argv[2]
    prog = drgn.Program()
    try:
        prog.set_core_dump(core)
        prog.load_debug_info([vmlinux])
    except Exception as e:  # drgn cannot open every dump: that is a finding too
        json.dump({"drgn_version": drgn.__version__, "error": str(e)}, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return
    try:
        tasks = list(for_each_task(prog, idle=True))
        with_idle = True
    except TypeError:
        tasks = list(for_each_task(prog))
        with_idle = False
    rows = []
    for t in tasks:
        row = {
            "pid": t.pid.value_(),
            "tgid": t.tgid.value_(),
            "ppid": t.real_parent.tgid.value_(),
            "comm": t.comm.string_().decode("latin-1"),
            "state": task_state_to_char(t),
            "kthread": bool(t.flags.value_() & PF_KTHREAD),
            "cpu": task_cpu(t),
            "task": hex(t.value_()),
        }
        try:
            row["stack"] = [f.name or "??" for f in prog.stack_trace(t)]
        except Exception as e:  # drgn cannot unwind every task; record why
            row["stack_error"] = str(e)
        rows.append(row)
    json.dump({"drgn_version": drgn.__version__, "idle_included": with_idle,
               "tasks": rows}, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
