"""drgn's equivalent of `thread apply all bt` in GDB over `kpeek serve`: a
stack trace of every task. Run as `python3 drgn_bt.py VMLINUX CORE`,
or by drgn's CLI (`drgn --qemu SOCK -s VMLINUX drgn_bt.py`)."""
import sys

import drgn
from drgn.helpers.linux.pid import for_each_task

if "prog" not in globals():  # run by python3, not by the drgn CLI (which sets `prog`)
    prog = drgn.Program()
    prog.set_core_dump(sys.argv[2])
    prog.load_debug_info([sys.argv[1]])
frames = 0
for t in for_each_task(prog):
    try:
        frames += len(prog.stack_trace(t))
    except Exception:
        pass
print(frames)
