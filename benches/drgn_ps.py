"""drgn's equivalent of `kpeek ps --threads`: every task's pid, tgid, ppid,
comm and state letter, printed one per line. Run as
`python3 drgn_ps.py VMLINUX CORE`, or by drgn's CLI (`drgn --qemu SOCK -s VMLINUX drgn_ps.py`)."""
import sys

import drgn
from drgn.helpers.linux.pid import for_each_task
from drgn.helpers.linux.sched import task_state_to_char

if "prog" not in globals():  # run by python3, not by the drgn CLI (which sets `prog`)
    prog = drgn.Program()
    prog.set_core_dump(sys.argv[2])
    prog.load_debug_info([sys.argv[1]])
out = []
for t in for_each_task(prog):
    out.append(f"{t.pid.value_()} {t.tgid.value_()} {t.real_parent.tgid.value_()} "
               f"{task_state_to_char(t)} {t.comm.string_().decode()}")
print("\n".join(out))
