#!/usr/bin/env bash
# An initrd for the committed linux-6.12 fixture kernel whose /init starts
# THREADS threads (kpw mt, from the fixture's initramfs) instead of the
# fixture's workload, then reports the guest's thread count on ttyS1 as
# {"kind":"end","threads":N}. The fixture's archive with a second cpio
# archive appended: the kernel unpacks them in order, later files winning.
#   benches/threads_initrd.sh THREADS OUT.cpio.gz
set -euo pipefail
cd "$(dirname "$0")/.."
n=$1
out=$2
[ -f target/fixtures/linux-6.12/kernel/bzImage ] || cargo run --release -q --example tour > /dev/null
kernel=$PWD/target/fixtures/linux-6.12/kernel
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cat > "$stage/init" <<INIT
#!/bin/sh
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /run && chmod 1777 /run
kpw mt $n &
while [ ! -e /run/ready.mt ]; do sleep 1; done
sleep 2
# Only the count: thousands of threads of /proc would take minutes over a serial line.
echo "{\"kind\":\"end\",\"threads\":\$(ls -d /proc/[0-9]*/task/[0-9]* | wc -l)}" > /dev/ttyS1
wait
INIT
chmod 755 "$stage/init"
(cd "$stage" && echo init | cpio -o -H newc --quiet | gzip -1) > "$stage/overlay.cpio.gz"
cat "$kernel/initramfs/main.cpio.gz" "$stage/overlay.cpio.gz" > "$out"
