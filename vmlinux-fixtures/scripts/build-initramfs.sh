#!/usr/bin/env bash
# Build the fixture initramfs images for one kernel tree.
#   build-initramfs.sh KERNEL_TREE OUTDIR
# OUTDIR/main.cpio.gz     busybox, kpw, kptruth, kpeek_fixture.ko
# OUTDIR/kdump.cpio.gz    main + kexec + the same bzImage + capture.cpio.gz
# OUTDIR/capture.cpio.gz  busybox + makedumpfile, for the capture kernel
set -euo pipefail
tree=$1 out=$2
here=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

# Static guest programs and the module.
gcc -O2 -static -pthread -Wall -o "$stage/kpw" "$here/guest/kpw.c"
gcc -O2 -static -Wall -o "$stage/kptruth" "$here/guest/kptruth.c"
rm -rf "$stage/module" && cp -r "$here/guest/module" "$stage/module"
# No path of this machine in the module's debug info (see build-kernel.sh).
KCFLAGS="-fdebug-prefix-map=$tree=/usr/src/kpeek-fixture/$(basename "$tree") -fdebug-prefix-map=$stage=/usr/src/kpeek-fixture/guest" \
    make -s -C "$tree" M="$stage/module" modules >/dev/null

# Copy a dynamically linked program and every library it needs.
copy_dynamic() { # ROOT PROGRAM
    local root=$1 prog=$2 lib
    install -D "$prog" "$root$prog"
    for lib in $(ldd "$prog" | grep -o '/[^ ]*'); do
        install -D "$(readlink -f "$lib")" "$root$lib"
    done
}

skeleton() { # ROOT
    local root=$1 applet
    mkdir -p "$root"/{bin,sbin,proc,sys,dev,run,tmp,boot,lib/modules,etc}
    cp /bin/busybox "$root/bin/busybox"
    for applet in $(/bin/busybox --list); do
        [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
    done
    install -m 755 "$here/guest/init" "$root/init"
}

pack() { # ROOT OUTPUT
    (cd "$1" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet --reproducible) | gzip -9n > "$2"
}

main=$stage/main
skeleton "$main"
install -m 755 "$stage/kpw" "$stage/kptruth" "$main/bin/"
install -m 644 "$stage/module/kpeek_fixture.ko" "$main/lib/modules/"
pack "$main" "$out/main.cpio.gz"
cp "$stage/module/kpeek_fixture.ko" "$out/kpeek_fixture.ko"

cap=$stage/capture
skeleton "$cap"
copy_dynamic "$cap" "$(command -v makedumpfile)"
[ -e "$cap/sbin/makedumpfile" ] || ln -s "..$(command -v makedumpfile)" "$cap/sbin/makedumpfile"
pack "$cap" "$out/capture.cpio.gz"

kd=$stage/kdump
cp -a "$main" "$kd"
copy_dynamic "$kd" "$(command -v kexec)"
[ -e "$kd/sbin/kexec" ] || ln -s "..$(command -v kexec)" "$kd/sbin/kexec"
cp "$tree/arch/x86/boot/bzImage" "$kd/boot/bzImage"
cp "$out/capture.cpio.gz" "$kd/boot/capture.cpio.gz"
pack "$kd" "$out/kdump.cpio.gz"
ls -la "$out"
