//! The first five minutes with a crash dump: `kpeek dmesg`, `lsmod`,
//! `cpus` and the crash summary of `kpeek info`, on every fixture dump,
//! against what the guest said about itself just before the dump (its
//! syslog, /proc/modules, /proc/cmdline, /proc/meminfo, ...) and what its
//! console printed up to the end (the serial console log QEMU recorded).

mod common;

use std::path::Path;
use std::process::Output;

use common::{Boot, Fixture};
use kpeek::kernel::{OpenOptions, Program};

/// `kpeek ARGS --vmlinux V --core C`.
fn run_kpeek_on_dump(args: &[&str], vmlinux: &Path, core: &Path) -> Output {
    common::kpeek_command()
        .args(args)
        .arg("--vmlinux")
        .arg(vmlinux)
        .arg("--core")
        .arg(core)
        .output()
        .expect("run kpeek")
}

fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).expect("utf-8")
}

/// Every (fixture, boot, dump) of the fixtures.
fn every_dump() -> Vec<(Fixture, Boot, std::path::PathBuf)> {
    let mut all = Vec::new();
    for fixture in Fixture::all() {
        for name in fixture.boot_names() {
            let boot = fixture.boot(&name);
            for (path, _) in boot.dumps() {
                all.push((Fixture::load(&fixture.name), fixture.boot(&name), path));
            }
        }
    }
    all
}

/// The console lines of the dumped kernel (not the capture kernel's):
/// `[ts][caller] text`, as its serial console printed them.
fn console_lines(boot: &Boot) -> Vec<String> {
    let raw = std::fs::read(boot.dir.join("console.log")).expect("console.log");
    let text = String::from_utf8_lossy(&raw);
    let mut kernels = 0;
    let mut lines = Vec::new();
    for line in text.split(['\n', '\r']) {
        // The line starts after any escape sequences or progress output.
        let Some(start) = line.find("[ ") else {
            continue;
        };
        let line = &line[start..];
        let stamped = line.len() > 24
            && line.as_bytes()[13] == b']'
            && line.as_bytes()[14] == b'['
            && line[1..13].trim_start().contains('.');
        if !stamped {
            continue;
        }
        if line.contains("] Linux version ") {
            kernels += 1;
        }
        if kernels == 1 {
            lines.push(line.to_owned());
        }
    }
    lines
}

#[test]
fn dmesg_equals_the_guests_own_log_on_every_dump() {
    let mut compared = 0;
    let mut console_compared = 0;
    for (fixture, boot, core) in every_dump() {
        let what = core.display().to_string();
        let truth = boot.truth();
        let vmlinux = fixture.vmlinux();
        // The guest's syslog (READ_ALL): `<prio>[ts][caller] text`.
        let raw = ok(
            &run_kpeek_on_dump(&["dmesg", "--raw", "--caller"], &vmlinux, &core),
            &what,
        );
        let ours: Vec<&str> = raw.lines().collect();
        let theirs: Vec<&str> = truth.dmesg.lines().collect();
        assert!(theirs.len() > 150, "{what}: the truth has a log");
        // The log was recorded before the dump: it is the dump's log, cut short.
        assert!(ours.len() >= theirs.len(), "{what}");
        for (i, (a, b)) in theirs.iter().zip(&ours).enumerate() {
            assert_eq!(a, b, "{what}: line {i}");
        }
        compared += theirs.len();

        // Plain dmesg style: the same lines without `<prio>` and the caller.
        let plain = ok(&run_kpeek_on_dump(&["dmesg"], &vmlinux, &core), &what);
        for (t, p) in theirs.iter().zip(plain.lines()) {
            let t = &t[t.find('>').expect("<prio>") + 1..];
            let (ts, rest) = t.split_at(14);
            let text = &rest[rest.find(']').expect("caller") + 1..];
            assert_eq!(p, format!("{ts}{text}"), "{what}");
        }

        // What the console printed after the truth was recorded (the panic
        // of a kdump) is in the dump's log too, in order.
        // (The console prints `[ts][caller] text`: without `<prio>`.)
        let mut ours = raw.lines().map(|l| &l[l.find('>').map_or(0, |i| i + 1)..]);
        let console = console_lines(&boot);
        assert!(
            console.len() > 100,
            "{what}: {} console lines",
            console.len()
        );
        for line in &console {
            assert!(
                ours.any(|l| l == line),
                "{what}: the console's {line:?} is not in kpeek's log (in order)"
            );
            console_compared += 1;
        }
        if boot.name == "kdump" {
            assert!(
                console
                    .iter()
                    .any(|l| l.contains("Kernel panic - not syncing")),
                "{what}: the console shows the panic"
            );
        }

        // JSON: one record per sequence number, no gaps, levels 0..7.
        let json: serde_json::Value = serde_json::from_str(&ok(
            &run_kpeek_on_dump(&["dmesg", "--format", "json"], &vmlinux, &core),
            &what,
        ))
        .expect("json");
        let entries = json["entries"].as_array().expect("entries");
        assert!(entries.iter().all(|e| e["kind"] == "record"), "{what}");
        let seqs: Vec<u64> = entries
            .iter()
            .map(|e| e["seq"].as_u64().expect("seq"))
            .collect();
        assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{what}");
        assert!(entries
            .iter()
            .all(|e| e["level"].as_u64().expect("level") < 8));
    }
    assert!(compared > 2000, "{compared} lines compared with the truth");
    assert!(console_compared > 2000, "{console_compared} console lines");
}

#[test]
fn lsmod_equals_proc_modules_on_every_dump() {
    for (fixture, boot, core) in every_dump() {
        let what = core.display().to_string();
        let truth = boot.truth();
        let proc_modules = &truth.files["/proc/modules"];
        assert!(proc_modules.contains("kpeek_fixture"), "{what}");
        // The command line on the kdumps, in process on the other dumps.
        let (out, json): (String, serde_json::Value) = if boot.name == "kdump" {
            let out = ok(
                &run_kpeek_on_dump(&["lsmod", "--style", "proc"], &fixture.vmlinux(), &core),
                &what,
            );
            let json = serde_json::from_str(&ok(
                &run_kpeek_on_dump(&["lsmod", "--format", "json"], &fixture.vmlinux(), &core),
                &what,
            ))
            .expect("json");
            (out, json)
        } else {
            let prog =
                Program::open(&fixture.vmlinux(), &core, &OpenOptions::default()).expect(&what);
            let list = kpeek::kernel::modules::for_each_module(&prog).expect(&what);
            assert!(list.warnings.is_empty(), "{what}");
            let mut out = Vec::new();
            kpeek::render::lsmod::proc_modules(&mut out, &list.modules).expect("render");
            let json = serde_json::json!({ "modules": list.modules });
            (String::from_utf8(out).expect("utf-8"), json)
        };
        assert_eq!(&out, proc_modules, "{what}");
        let m = &json["modules"][0];
        let fields: Vec<&str> = proc_modules.split_whitespace().collect();
        assert_eq!(m["name"], fields[0], "{what}");
        assert_eq!(
            m["size"].as_u64().map(|s| s.to_string()),
            Some(fields[1].to_owned())
        );
        assert_eq!(
            m["refcount"].as_i64().map(|s| s.to_string()),
            Some(fields[2].to_owned())
        );
        assert_eq!(m["state"], fields[4], "{what}");
        assert_eq!(m["address"], fields[5], "{what}");
    }
}

fn meminfo(truth: &common::Truth, key: &str) -> u64 {
    truth.files["/proc/meminfo"]
        .lines()
        .find_map(|l| {
            l.strip_prefix(key)?
                .trim()
                .strip_suffix(" kB")?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("meminfo {key}"))
}

#[test]
fn info_summarises_the_crash_like_the_guest_saw_it() {
    let (mut dumps, mut same_load) = (0, 0);
    for (fixture, boot, core) in every_dump() {
        let what = core.display().to_string();
        let truth = boot.truth();
        // The command line on the kdumps, in process on the other dumps.
        let (info, text): (serde_json::Value, String) = if boot.name == "kdump" {
            let json = serde_json::from_str(&ok(
                &run_kpeek_on_dump(&["info", "--format", "json"], &fixture.vmlinux(), &core),
                &what,
            ))
            .expect("json");
            (
                json,
                ok(
                    &run_kpeek_on_dump(&["info"], &fixture.vmlinux(), &core),
                    &what,
                ),
            )
        } else {
            let prog =
                Program::open(&fixture.vmlinux(), &core, &OpenOptions::default()).expect(&what);
            let info = kpeek::kernel::info::Info::gather(&prog);
            let mut text = Vec::new();
            kpeek::render::info::info(&mut text, &info).expect("render");
            (
                serde_json::to_value(&info).expect("json"),
                String::from_utf8(text).expect("utf-8"),
            )
        };
        assert_eq!(
            info["cmdline"].as_str(),
            Some(truth.files["/proc/cmdline"].trim_end()),
            "{what}"
        );
        let uname = truth.files["/proc/version"].split_whitespace().nth(2);
        assert_eq!(info["release"].as_str(), uname, "{what}");
        assert_eq!(
            info["taint_mask"].as_u64().map(|t| t.to_string()),
            Some(truth.files["/proc/sys/kernel/tainted"].trim().to_owned()),
            "{what}"
        );
        // The fixture module is out of tree: 'O' (TAINT_OOT_MODULE).
        assert_eq!(info["taint"], "O", "{what}");
        assert_eq!(
            info["mem_total_kb"].as_u64(),
            Some(meminfo(&truth, "MemTotal:")),
            "{what}"
        );
        assert!(info["mem_free_kb"].as_u64().expect("free") < meminfo(&truth, "MemTotal:"));
        // The dump came after the truth, within a minute.
        let up_truth: f64 = truth.files["/proc/uptime"]
            .split_whitespace()
            .next()
            .and_then(|u| u.parse().ok())
            .expect("uptime");
        let up = info["uptime_ns"].as_u64().expect("uptime") as f64 / 1e9;
        assert!(
            up >= up_truth && up < up_truth + 60.0,
            "{what}: {up} vs {up_truth}"
        );
        // The load averages only change every 5 seconds.
        let load: Vec<&str> = info["load_average"]
            .as_array()
            .expect("load")
            .iter()
            .map(|v| v.as_str().expect("load"))
            .collect();
        let load_truth: Vec<&str> = truth.files["/proc/loadavg"]
            .split_whitespace()
            .take(3)
            .collect();
        // Only a dump taken within LOAD_FREQ (5 s) of the guest's reading
        // can show the same values: on a loaded host, recording the truth
        // through the serial port can take the guest tens of seconds.
        if up - up_truth < 5.0 {
            same_load += usize::from(load == load_truth);
            dumps += 1;
        }
        if let Some((console_msg, console_pid)) = common::console_panic(&boot) {
            // The panic the console printed: its message, and the task that
            // printed it (the line's caller id).
            let msg = info["panic_message"].as_str().expect("panic message");
            assert_eq!(msg, console_msg, "{what}");
            assert_eq!(info["panic_task"][0].as_i64(), Some(console_pid), "{what}");
            if boot.name == "kdump" {
                // sysrq-trigger 'c', written by the shell that ran kptruth.
                assert_eq!(msg, "sysrq triggered crash", "{what}");
                assert_eq!(console_pid, truth.capturers[1], "{what}");
            }
        } else {
            assert!(info["panic_message"].is_null(), "{what}");
            assert!(info["panic_task"].is_null(), "{what}");
        }
        assert!(text.contains(&format!(
            "    command line: {}",
            truth.files["/proc/cmdline"].trim_end()
        )));
    }
    assert!(
        dumps >= 1 && same_load * 3 >= dumps * 2,
        "{same_load} of {dumps} load averages equal the guest's"
    );
}

#[test]
fn cpus_shows_what_each_cpu_was_running() {
    for (fixture, boot, core) in every_dump() {
        let what = core.display().to_string();
        let truth = boot.truth();
        // In process: one open per dump for the three views.
        let prog = Program::open(&fixture.vmlinux(), &core, &OpenOptions::default()).expect(&what);
        let cpus = kpeek::kernel::cpus::cpus(&prog).expect("cpus");
        let tasks = kpeek::kernel::task_list(&prog).expect("tasks").tasks;
        let info = kpeek::kernel::info::Info::gather(&prog);
        assert_eq!(cpus.online, [0, 1], "{what}");
        assert_eq!(cpus.cpus.len(), 2, "{what}");
        for c in &cpus.cpus {
            let pid = c.pid.expect("pid");
            let task = c.task.expect("task");
            let row = tasks
                .iter()
                .find(|t| t.task == task)
                .unwrap_or_else(|| panic!("{what}: cpu task {task} not in the task list"));
            assert_eq!(row.pid, pid, "{what}");
            assert_eq!(row.cpu, Some(c.cpu), "{what}: the task's own CPU");
            assert!(c.nr_running.expect("nr_running") >= u32::from(pid != 0));
            assert_eq!(c.idle, Some(pid == 0), "{what}");
            if pid != 0 {
                // Running, as the guest saw it a moment before (or the task
                // that panicked, as the console says: the shell that
                // triggered the crash, which the truth does not list, or
                // khungtaskd, asleep when the truth was recorded).
                let panicked = common::console_panic(&boot).map(|(_, p)| p);
                match truth.tasks.iter().find(|t| t.tid == i64::from(pid)) {
                    _ if panicked == Some(i64::from(pid)) => {}
                    Some(t) => assert_eq!(t.state(), 'R', "{what}: pid {pid}"),
                    None => assert!(
                        truth.capturers.contains(&i64::from(pid)),
                        "{what}: pid {pid}"
                    ),
                }
            }
            // The dump's registers: a CPU in the kernel is on its task's stack.
            let regs = info
                .cpus
                .iter()
                .find(|r| r.cpu == c.cpu)
                .expect("registers");
            if !regs.user_mode && pid != 0 {
                let (sp, stack) = (regs.sp.0, row.stack.0);
                assert!(
                    sp >= stack && sp < stack + 0x4000,
                    "{what}: cpu {} sp {sp:#x} outside {stack:#x}",
                    c.cpu
                );
            }
        }
        if let Some((_, console_pid)) = common::console_panic(&boot) {
            let panic_cpu = info.panic_cpu.expect("panic cpu") as usize;
            assert_eq!(
                cpus.cpus[panic_cpu].pid.map(i64::from),
                Some(console_pid),
                "{what}"
            );
        }
    }
    // The command line: lx-cpus and JSON, on the kdump of each kernel.
    for fixture in Fixture::all() {
        let core = fixture.boot("kdump").dir.join("vmcore.kdump");
        let lx = ok(
            &run_kpeek_on_dump(&["cpus", "--style", "lx"], &fixture.vmlinux(), &core),
            "lx",
        );
        assert_eq!(
            lx,
            "Possible CPUs : [0, 1]\nPresent CPUs  : [0, 1]\nOnline CPUs   : [0, 1]\nActive CPUs   : [0, 1]\n"
        );
        let json: serde_json::Value = serde_json::from_str(&ok(
            &run_kpeek_on_dump(&["cpus", "--format", "json"], &fixture.vmlinux(), &core),
            "json",
        ))
        .expect("json");
        assert!(json["cpus"][1]["task"]
            .as_str()
            .expect("task")
            .starts_with("0xffff"));
        let table = ok(
            &run_kpeek_on_dump(&["cpus"], &fixture.vmlinux(), &core),
            "table",
        );
        assert!(
            table.starts_with("CPU  ONLINE  IDLE  NR_RUNNING"),
            "{table}"
        );
    }
}

#[test]
fn a_damaged_ring_prints_what_it_can_and_marks_the_gaps() {
    let fixture = Fixture::load("linux-6.12");
    let core = fixture.boot("qemu-plain").dir.join("vmcore.elf");
    let vmlinux = fixture.vmlinux();
    let prog = Program::open(&vmlinux, &core, &OpenOptions::default()).expect("open");
    let d = &prog.debug;
    let va = |a: u64| kpeek::addr::VirtAddr(a);
    let prb = prog
        .read_u64(prog.symbol("prb").expect("prb"))
        .expect("prb");
    let m = |path: &str| d.member("printk_ringbuffer", path).expect(path).offset;
    let descs = prog
        .read_u64(va(prb + m("desc_ring.descs")))
        .expect("descs");
    let count_bits = prog
        .read_u32(va(prb + m("desc_ring.count_bits")))
        .expect("bits");
    let desc_size = d.type_size("prb_desc").expect("prb_desc");
    let begin_off = d
        .member("prb_desc", "text_blk_lpos.begin")
        .expect("begin")
        .offset;
    let data = prog
        .read_u64(va(prb + m("text_data_ring.data")))
        .expect("data");
    let size_bits = prog
        .read_u32(va(prb + m("text_data_ring.size_bits")))
        .expect("bits");
    let phys = |a: u64| prog.space.translate(va(a)).expect("translate").0;

    let clean = ok(&run_kpeek_on_dump(&["dmesg"], &vmlinux, &core), "clean");
    let lines: Vec<&str> = clean.lines().collect();
    let index = |text: &str| lines.iter().position(|l| l.ends_with(text)).expect(text);
    // One record per line here, sequence numbers from 0: line i is record i.
    let (a, b) = (index("Run /init as init process"), index("    HOME=/"));
    let desc = |seq: usize| descs + (seq as u64 & ((1 << count_bits) - 1)) * desc_size;

    let mut dump = std::fs::read(&core).expect("dump");
    // Record a: its descriptor claims another id.
    let off = common::elf_file_offset(&dump, phys(desc(a)));
    dump[off..off + 8].copy_from_slice(&0x8000_0000_0000_1234u64.to_le_bytes());
    // Record b: its text block claims another owner.
    let begin = prog.read_u64(va(desc(b) + begin_off)).expect("begin");
    let block = data + (begin & ((1 << size_bits) - 1));
    let off = common::elf_file_offset(&dump, phys(block));
    dump[off..off + 8].copy_from_slice(&0x4242u64.to_le_bytes());
    let path = std::env::temp_dir().join(format!("kpeek-prb-{}.elf", std::process::id()));
    std::fs::write(&path, &dump).expect("write");
    let out = run_kpeek_on_dump(&["dmesg"], &vmlinux, &path);
    let json = run_kpeek_on_dump(&["dmesg", "--format", "json"], &vmlinux, &path);
    // A ring header that makes no sense: a clear error, no output.
    let bits = common::elf_file_offset(&dump, phys(prb + m("desc_ring.count_bits")));
    dump[bits..bits + 4].copy_from_slice(&63u32.to_le_bytes());
    std::fs::write(&path, &dump).expect("write");
    let header = run_kpeek_on_dump(&["dmesg"], &vmlinux, &path);
    let _ = std::fs::remove_file(&path);
    let err = String::from_utf8_lossy(&header.stderr);
    assert_eq!(header.status.code(), Some(1), "{err}");
    assert!(
        err.contains("implausible ring") && !err.contains("panicked"),
        "{err}"
    );

    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("kpeek: warning:") && !stderr.contains("panicked"),
        "{stderr}"
    );
    let damaged: Vec<&str> = stdout.lines().collect();
    // Everything else is there, in place; each lost record is one marked line.
    assert_eq!(damaged.len(), lines.len(), "{stdout}");
    for (i, (x, y)) in lines.iter().zip(&damaged).enumerate() {
        if i == a || i == b {
            assert!(y.starts_with("** 1 printk record lost: "), "{y}");
        } else {
            assert_eq!(x, y, "line {i}");
        }
    }
    assert!(damaged[a].contains("holds id"), "{}", damaged[a]);
    assert!(damaged[b].contains("text block"), "{}", damaged[b]);
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    let gaps = json["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["kind"] == "gap")
        .count();
    assert_eq!(gaps, 2);
}
