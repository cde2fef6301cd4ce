#!/usr/bin/env bash
# The newest crash (Debian sid's; sid's build needs a newer libc than the
# machine's Debian 12), run inside a minimal debootstrap chroot of sid that
# this script builds once and caches outside the clone:
#   ${KPEEK_BENCH_CACHE:-${XDG_CACHE_HOME:-~/.cache}/kpeek-bench}/sid-root
#
#   benches/crash9.sh --version            crash's version line
#   benches/crash9.sh --root               build the chroot if missing; print its path
#   benches/crash9.sh ARGS...              run `crash ARGS...`; stdin goes to crash
#
# Every ARG naming an existing file of this machine (the vmlinux, the dump,
# a `-i` command file) is bind-mounted into the chroot for this run only
# (the directory holding it, read-only, in a private mount namespace that
# ends with crash), and crash gets the path inside. Needs root.
#
# The Debian mirror is KPEEK_DEBIAN_MIRROR if set, else the first Debian
# archive this machine's own apt sources name (read at run time).
set -euo pipefail
cache=${KPEEK_BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kpeek-bench}
root=$cache/sid-root
[ "$(id -u)" = 0 ] || { echo "crash9: needs root (debootstrap, chroot, mounts)" >&2; exit 1; }

build() {
    local mirror tmp
    mirror=${KPEEK_DEBIAN_MIRROR:-$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
        /etc/apt/sources.list.d/*.sources 2>/dev/null |
        awk '/^URIs:/ { for (i = 2; i <= NF; i++) print $i }
             /^deb / { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; break } }' |
        grep -v -- '-security' | grep -m1 '/debian/*$' || true)}
    [ -n "$mirror" ] || { echo "crash9: set KPEEK_DEBIAN_MIRROR to a Debian archive URL" >&2; exit 1; }
    command -v debootstrap >/dev/null || apt-get install -y -q debootstrap >&2
    tmp=$root.partial
    rm -rf "$tmp"
    mkdir -p "$cache"
    echo "crash9: debootstrap sid into $root (once; a few minutes)" >&2
    debootstrap --variant=minbase sid "$tmp" "${mirror%/}" >&2
    cp /etc/resolv.conf "$tmp/etc/resolv.conf"
    in_root "$tmp" apt-get install -y -q --no-install-recommends crash >&2
    in_root "$tmp" apt-get clean >&2
    mv "$tmp" "$root"
}

# in_root ROOT CMD...: CMD inside ROOT, with /proc, /sys and /dev, in a
# private mount namespace (nothing stays mounted afterwards). MOUNTS holds
# "HOSTDIR CHROOTDIR" pairs to bind read-only first.
MOUNTS=()
in_root() {
    local r=$1
    shift
    unshare --mount --propagation private -- /bin/bash -c '
        set -e
        r=$1; n=$2; shift 2
        while [ "$n" -gt 0 ]; do
            mkdir -p "$r$2"
            mount --bind "$1" "$r$2"
            mount -o remount,bind,ro "$r$2"
            shift 2; n=$((n - 1))
        done
        mount -t proc proc "$r/proc"
        mount --rbind /sys "$r/sys"
        mount --rbind /dev "$r/dev"
        exec chroot "$r" /usr/bin/env -i HOME=/tmp LANG=C.UTF-8 TERM=dumb \
            PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "$@"
    ' in_root "$r" $((${#MOUNTS[@]} / 2)) "${MOUNTS[@]}" "$@"
}

[ -x "$root/usr/bin/crash" ] || build
# The newest crash: sid's lists refreshed and crash upgraded once a day.
if [ -z "$(find "$root/var/lib/apt/lists" -maxdepth 1 -name '*_Packages*' -mtime -1 2>/dev/null | head -1)" ]; then
    cp /etc/resolv.conf "$root/etc/resolv.conf"
    { in_root "$root" apt-get -q update && in_root "$root" apt-get install -y -q --no-install-recommends crash &&
        in_root "$root" apt-get clean; } >&2 || echo "crash9: could not upgrade crash; using the cached one" >&2
fi
case "${1:-}" in
    --root) echo "$root"; exit 0 ;;
    --version) in_root "$root" crash --version | grep -m1 '^crash' ; exit 0 ;;
esac

args=()
for a in "$@"; do
    if [ "${a#-}" = "$a" ] && [ -f "$a" ]; then
        abs=$(readlink -f "$a")
        inside=/mnt/kpeek/$(( ${#MOUNTS[@]} / 2 ))
        MOUNTS+=("$(dirname "$abs")" "$inside")
        args+=("$inside/$(basename "$abs")")
    else
        args+=("$a")
    fi
done
in_root "$root" crash "${args[@]}"
