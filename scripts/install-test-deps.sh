#!/usr/bin/env bash
# The programs the tests run, installed when missing. `cargo nextest run`
# runs this first (a nextest setup script, see .config/nextest.toml), so the
# README's test command works on a fresh Debian 12 machine.
#
# Each program is looked up on PATH; only the missing ones are installed,
# from Debian packages (apt-get update once, then a quiet, non-interactive
# install), as root or through password-less sudo. With everything present
# it only looks. When it cannot install (not root and no sudo, no apt-get,
# the install failed) it prints one line per missing program and still exits
# 0: the tests that need that program then fail and say how to install it
# (tests/common: `require_tool`). Nothing is skipped silently.
#
# KPEEK_TEST_NO_INSTALL=1 only looks and reports, installing nothing.
# Run by hand: scripts/install-test-deps.sh
set -uo pipefail

# program  Debian package  (who runs it)
needs=(
    "pahole dwarves"                    # the oracle of tests/pahole.rs, tests/btf.rs, tests/serve.rs
    "qemu-system-x86_64 qemu-system-x86" # the live guests of tests/live.rs
    "gdb gdb"                           # tests/live.rs, tests/serve.rs: the GDB extension, `kpeek serve`
    "objcopy binutils"                  # tests/bt.rs, tests/pahole.rs
    "addr2line binutils"                # tests/bt.rs: the oracle of source lines
    "groff groff-base"                  # tests/cli.rs: the manual page renders
    "debuginfod debuginfod"             # tests/locate.rs: a real debuginfod server
    "debuginfod-find debuginfod"        # tests/locate.rs: elfutils' client, sharing kpeek's cache
)

say() { printf 'install-test-deps: %s\n' "$*" >&2; }

missing() {
    local line tool
    for line in "${needs[@]}"; do
        tool=${line%% *}
        command -v "$tool" >/dev/null 2>&1 || printf '%s\n' "$line"
    done
}

todo=$(missing)
why=
if [ -n "$todo" ]; then
    pkgs=$(printf '%s\n' "$todo" | awk '{print $2}' | sort -u | tr '\n' ' ')
    sudo=
    if [ -n "${KPEEK_TEST_NO_INSTALL:-}" ]; then
        why="KPEEK_TEST_NO_INSTALL is set"
    elif [ "$(id -u)" != 0 ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            sudo="sudo -n"
        else
            why="not root and no password-less sudo"
        fi
    fi
    if [ -z "$why" ] && ! command -v apt-get >/dev/null 2>&1; then
        why="no apt-get on this machine"
    fi
    if [ -z "$why" ]; then
        log=$(mktemp)
        say "installing $pkgs(Debian packages) ..."
        start=$(date +%s)
        apt() {
            $sudo env DEBIAN_FRONTEND=noninteractive \
                apt-get -q -o DPkg::Lock::Timeout=600 "$@" >>"$log" 2>&1
        }
        # shellcheck disable=SC2086 # $pkgs is a list of words
        if apt update && apt install -y --no-install-recommends $pkgs; then
            say "installed in $(($(date +%s) - start)) s"
        else
            tail -n 5 "$log" >&2
            why="apt-get install $pkgs failed"
        fi
        rm -f "$log"
        todo=$(missing)
    fi
fi

if [ -n "$todo" ]; then
    while read -r tool pkg; do
        say "MISSING $tool: install the Debian package $pkg (apt-get install $pkg, as root);" \
            "the tests that run $tool will fail (${why:-installed, but not on PATH})"
    done <<<"$todo"
    # The tests' failure message repeats why (tests/common: require_tool).
    if [ -n "${NEXTEST_ENV:-}" ]; then
        echo "KPEEK_TEST_DEPS_NOT_INSTALLED=${why:-not on PATH after the install}" >>"$NEXTEST_ENV"
    fi
fi

# Not installable: the running kernel's BTF, which one test compares.
if [ ! -e /sys/kernel/btf/vmlinux ]; then
    say "note: this kernel has no /sys/kernel/btf/vmlinux:" \
        "btf::the_running_kernels_btf_equals_pahole says so and passes (fails under CI)"
fi
exit 0
