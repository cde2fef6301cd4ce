#!/usr/bin/env bash
# Regenerate every kpeek fixture from Debian packages, unattended:
# two small real kernels, QEMU boots of each with a known workload, dumps in
# every format, the guest's own truth, and oracle outputs from tools kpeek
# did not write (pahole, drgn, the kernel's own lx-ps in real GDB).
#
#   vmlinux-fixtures/build.sh [--install] [KERNEL...]     (KERNEL: 6.1, 6.12)
#
# --install   apt-get/pip install what the build needs first (as root).
# Work files go to $KPEEK_FIXTURE_WORK (default: target/fixture-work); the
# results are packed into vmlinux-fixtures/linux-VERSION/. See README.md.
#
# Every regeneration adds the fixtures to the repository's history again:
# run it on purpose only.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
work=${KPEEK_FIXTURE_WORK:-$repo/target/fixture-work}
mkdir -p "$work"
work=$(cd "$work" && pwd)

install=0
kernels=()
for arg in "$@"; do
    case $arg in
        --install) install=1 ;;
        6.1|6.12) kernels+=("$arg") ;;
        *) echo "usage: $0 [--install] [6.1] [6.12]" >&2; exit 2 ;;
    esac
done
[ ${#kernels[@]} -gt 0 ] || kernels=(6.1 6.12)

if [ $install = 1 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends linux-source-6.1 linux-source-6.12 \
        build-essential flex bison bc libelf-dev libssl-dev dwarves cpio kmod \
        busybox-static qemu-system-x86 gdb kexec-tools makedumpfile zstd python3-venv
fi
if [ ! -x "$work/venv/bin/drgn" ]; then
    python3 -m venv "$work/venv"
    "$work/venv/bin/pip" install -q drgn
fi

# The structs whose `pahole -C` output is kept as an oracle (issue: pahole).
structs="task_struct mm_struct signal_struct sighand_struct thread_struct thread_info
cred files_struct fs_struct nsproxy pid upid pid_namespace uts_namespace new_utsname
page folio file inode dentry super_block address_space vm_area_struct list_head
hlist_head hlist_node rb_node rb_root wait_queue_head mutex rw_semaphore spinlock
qspinlock timer_list hrtimer work_struct kmem_cache module kobject device
pt_regs inactive_task_frame fpu fpstate xregs_state desc_struct gate_struct
idt_bits orc_entry mem_section zone pglist_data per_cpu_pages rq cfs_rq
sched_entity sched_rt_entity load_weight sched_avg printk_ringbuffer prb_desc_ring
prb_data_ring prb_desc printk_info dev_printk_info kernel_symbol elf64_hdr
irq_desc bpf_prog btf_type sk_buff callback_head llist_node seqcount"

log() { printf '\n=== %s\n' "$*"; }

boot() { # KERNEL_VERSION BOOT_NAME run_guest-args...
    local ver=$1 name=$2
    shift 2
    local tree=$work/linux-$ver out=$work/out/linux-$ver
    log "linux-$ver: boot $name"
    python3 "$here/scripts/run_guest.py" --kernel "$tree/arch/x86/boot/bzImage" \
        --out "$out/boots/$name" "$@"
}

for ver in "${kernels[@]}"; do
    case $ver in
        6.1) dwarf=dwarf5.frag compress=l ;;   # makedumpfile -l (LZO) for the genuine kdump
        6.12) dwarf=dwarf4.frag compress=c ;;  # makedumpfile -c (zlib)
    esac
    tree=$work/linux-$ver out=$work/out/linux-$ver
    start=$(date +%s)

    log "linux-$ver: kernel"
    "$here/scripts/build-kernel.sh" "$ver" "$dwarf" "$work"
    log "linux-$ver: initramfs"
    rm -rf "$out"
    "$here/scripts/build-initramfs.sh" "$tree" "$out/initramfs"

    # A: QEMU with -device vmcoreinfo: the three QEMU formats from one boot.
    boot "$ver" qemu-vmcoreinfo --initrd "$out/initramfs/main.cpio.gz" --vmcoreinfo \
        --append "init_on_free=1" dump:elf dump:elf-paging dump:kdump-zlib
    # B: plain QEMU, no VMCOREINFO anywhere in the dump.
    boot "$ver" qemu-plain --initrd "$out/initramfs/main.cpio.gz" \
        --append "init_on_free=1" dump:elf
    # C: a genuine kdump: panic, capture kernel, makedumpfile -F -d 31.
    boot "$ver" kdump --initrd "$out/initramfs/kdump.cpio.gz" --vmcoreinfo --mem 384M \
        --append "crashkernel=96M init_on_free=1 kpeek.mode=kdump kpeek.compress=$compress" kdump
    makedumpfile -R "$out/boots/kdump/vmcore.kdump" < "$out/boots/kdump/vmcore.kdump.flat"
    # E: QEMU dump of a hung guest: the fixture module's deadlocks and waits
    # (kpeek.mode=hung), once the hung-task detector has reported them.
    boot "$ver" hung --initrd "$out/initramfs/main.cpio.gz" --vmcoreinfo \
        --append "init_on_free=1 kpeek.mode=hung" dump:elf
    # F: a genuine hung-task panic kdump: the same hangs, hung_task_panic=1,
    # the detector's timeout shortened after the truth; capture as in C.
    boot "$ver" hung-panic --initrd "$out/initramfs/kdump.cpio.gz" --vmcoreinfo --mem 384M \
        --append "crashkernel=96M init_on_free=1 hung_task_panic=1 kpeek.mode=hung-panic kpeek.compress=$compress" kdump
    makedumpfile -R "$out/boots/hung-panic/vmcore.kdump" < "$out/boots/hung-panic/vmcore.kdump.flat"
    # D: live, nokaslr, for the kernel's own lx-ps in real GDB.
    boot "$ver" live-nokaslr --initrd "$out/initramfs/main.cpio.gz" \
        --append "nokaslr init_on_free=1" --gdb-port $((21000 + RANDOM % 2000)) \
        --vmlinux "$tree/vmlinux" "lx-ps:$tree"

    log "linux-$ver: oracles"
    mkdir -p "$out/oracles/pahole" "$out/oracles/drgn"
    for s in $structs; do
        pahole -F dwarf -C "$s" "$tree/vmlinux" > "$out/oracles/pahole/$s.txt" 2>/dev/null || true
        [ -s "$out/oracles/pahole/$s.txt" ] || rm -f "$out/oracles/pahole/$s.txt"
    done
    pahole -F dwarf "$tree/vmlinux" > "$out/oracles/pahole-all.txt"
    pahole --version > "$out/oracles/pahole-version.txt"
    cp "$out/boots/live-nokaslr/lx-ps.txt" "$out/oracles/lx-ps.txt"
    for core in qemu-vmcoreinfo/vmcore.elf qemu-vmcoreinfo/vmcore-paging.elf \
                qemu-vmcoreinfo/vmcore.kdump-zlib.flat kdump/vmcore.kdump \
                hung/vmcore.elf hung-panic/vmcore.kdump; do
        path=$out/boots/$core
        if [ "${core##*.}" = flat ]; then # drgn wants it reassembled
            makedumpfile -R "$work/tmp.kdump" < "$path"
            path=$work/tmp.kdump
        fi
        "$work/venv/bin/python" "$here/scripts/drgn_tasks.py" "$tree/vmlinux" "$path" \
            > "$out/oracles/drgn/${core%%/*}-$(basename "$core").json"
        rm -f "$work/tmp.kdump"
    done

    log "linux-$ver: pack"
    python3 "$here/scripts/pack.py" --tree "$tree" --out "$out" --dest "$here/linux-$ver" \
        --kernel-version "$ver" --config-fragments "$here/config/common.frag" "$here/config/$dwarf" \
        --build-seconds $(( $(date +%s) - start ))
done
log "done: $(du -sh "$here" | cut -f1) in vmlinux-fixtures/"
