"""drgn's counterpart of `kpeek hung`: every task in D state, grouped by
identical stack (function names), with each mutex waiter's lock owner
(`mutex.owner` with the flag bits masked, from the `lock` argument of
`__mutex_lock` where drgn can read it). Run as
`python3 drgn_hung.py VMLINUX CORE`."""
import sys
from collections import defaultdict

import drgn
from drgn.helpers.linux.pid import for_each_task
from drgn.helpers.linux.sched import task_state_to_char

if "prog" not in globals():  # run by python3, not by the drgn CLI (which sets `prog`)
    prog = drgn.Program()
    prog.set_core_dump(sys.argv[2])
    prog.load_debug_info([sys.argv[1]])
groups = defaultdict(list)
owners = {}
for t in for_each_task(prog):
    if task_state_to_char(t) != "D":
        continue
    try:
        trace = prog.stack_trace(t)
    except Exception:
        continue
    names = tuple(f.name or hex(f.pc) for f in trace)
    groups[names].append(int(t.pid))
    for f in trace:
        if f.name and "mutex_lock" in f.name:
            try:
                owner = f["lock"].owner.counter.value_() & ~7
                owners[int(t.pid)] = owner
            except Exception:
                pass
            break
for names, pids in sorted(groups.items(), key=lambda g: -len(g[1])):
    print(len(pids), pids, names[:3])
print(len(owners), "mutex owners")
