// SPDX-License-Identifier: GPL-2.0
/*
 * kpeek_fixture: a small module loaded in the fixture guests, so that
 * module lists and backtraces through module code are tested for real.
 * It starts one kernel thread, "kpeek_fixture", that sleeps in this
 * module's code until the module is unloaded.
 *
 * With mode=hung it also builds known hangs, for `kpeek hung`:
 *
 *   kpeek_abba_1     holds kpeek_hung_mutex_a, waits on kpeek_hung_mutex_b
 *   kpeek_abba_2     holds kpeek_hung_mutex_b, waits on kpeek_hung_mutex_a
 *   kpeek_rw_owner   holds kpeek_hung_rwsem for write, sleeps (S)
 *   kpeek_rw_reader  waits on kpeek_hung_rwsem (down_read)
 *   kpeek_cwaiter    waits on kpeek_hung_never, a completion nobody signals
 *
 * and two files: reading /proc/kpeek_hung_mutex takes kpeek_hung_mutex_a
 * (so the reader waits behind the deadlock), reading /proc/kpeek_hung_rwsem
 * takes kpeek_hung_rwsem for write. Every hold and every wait is printed
 * on the console before it happens, as one line the tests parse:
 *
 *   kpeek_fixture: hung: pid P (COMM) holds|waits TYPE NAME at ADDRESS
 *
 * That is the truth `kpeek hung` is compared with. The module cannot be
 * unloaded in this mode.
 */
#include <linux/completion.h>
#include <linux/kthread.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/proc_fs.h>
#include <linux/rwsem.h>
#include <linux/sched.h>
#include <linux/wait.h>

static DECLARE_WAIT_QUEUE_HEAD(kpeek_fixture_wq);
static struct task_struct *kpeek_fixture_task;
static unsigned long kpeek_fixture_counter = 0x6b7065656b; /* "kpeek" */

static char *mode = "";
module_param(mode, charp, 0444);
MODULE_PARM_DESC(mode, "\"hung\": build the deadlocks and waits described at the top");

static DEFINE_MUTEX(kpeek_hung_mutex_a);
static DEFINE_MUTEX(kpeek_hung_mutex_b);
static DECLARE_RWSEM(kpeek_hung_rwsem);
static DECLARE_COMPLETION(kpeek_hung_never);
static DECLARE_COMPLETION(kpeek_hung_a_taken);
static DECLARE_COMPLETION(kpeek_hung_b_taken);
static DECLARE_COMPLETION(kpeek_hung_rwsem_taken);
static DECLARE_WAIT_QUEUE_HEAD(kpeek_hung_idle_wq);

static noinline int kpeek_fixture_wait(void)
{
	return wait_event_interruptible(kpeek_fixture_wq, kthread_should_stop());
}

static int kpeek_fixture_thread(void *arg)
{
	while (!kthread_should_stop()) {
		kpeek_fixture_counter++;
		kpeek_fixture_wait();
	}
	return 0;
}

static noinline void kpeek_hung_note(const char *what, const char *type,
				     const char *name, void *lock)
{
	pr_info("kpeek_fixture: hung: pid %d (%s) %s %s %s at %px\n",
		task_pid_nr(current), current->comm, what, type, name, lock);
}

static int kpeek_abba_1(void *arg)
{
	mutex_lock(&kpeek_hung_mutex_a);
	kpeek_hung_note("holds", "mutex", "kpeek_hung_mutex_a", &kpeek_hung_mutex_a);
	complete(&kpeek_hung_a_taken);
	wait_for_completion(&kpeek_hung_b_taken);
	kpeek_hung_note("waits", "mutex", "kpeek_hung_mutex_b", &kpeek_hung_mutex_b);
	mutex_lock(&kpeek_hung_mutex_b);
	mutex_unlock(&kpeek_hung_mutex_b);
	mutex_unlock(&kpeek_hung_mutex_a);
	return 0;
}

static int kpeek_abba_2(void *arg)
{
	wait_for_completion(&kpeek_hung_a_taken);
	mutex_lock(&kpeek_hung_mutex_b);
	kpeek_hung_note("holds", "mutex", "kpeek_hung_mutex_b", &kpeek_hung_mutex_b);
	complete(&kpeek_hung_b_taken);
	kpeek_hung_note("waits", "mutex", "kpeek_hung_mutex_a", &kpeek_hung_mutex_a);
	mutex_lock(&kpeek_hung_mutex_a);
	mutex_unlock(&kpeek_hung_mutex_a);
	mutex_unlock(&kpeek_hung_mutex_b);
	return 0;
}

static int kpeek_rw_owner(void *arg)
{
	down_write(&kpeek_hung_rwsem);
	kpeek_hung_note("holds", "rwsem", "kpeek_hung_rwsem", &kpeek_hung_rwsem);
	complete(&kpeek_hung_rwsem_taken);
	wait_event_interruptible(kpeek_hung_idle_wq, kthread_should_stop());
	up_write(&kpeek_hung_rwsem);
	return 0;
}

static int kpeek_rw_reader(void *arg)
{
	wait_for_completion(&kpeek_hung_rwsem_taken);
	kpeek_hung_note("waits", "rwsem", "kpeek_hung_rwsem", &kpeek_hung_rwsem);
	down_read(&kpeek_hung_rwsem);
	up_read(&kpeek_hung_rwsem);
	return 0;
}

static int kpeek_cwaiter(void *arg)
{
	kpeek_hung_note("waits", "completion", "kpeek_hung_never", &kpeek_hung_never);
	wait_for_completion(&kpeek_hung_never);
	return 0;
}

static ssize_t kpeek_hung_mutex_read(struct file *file, char __user *buf,
				     size_t len, loff_t *pos)
{
	kpeek_hung_note("waits", "mutex", "kpeek_hung_mutex_a", &kpeek_hung_mutex_a);
	mutex_lock(&kpeek_hung_mutex_a);
	mutex_unlock(&kpeek_hung_mutex_a);
	return 0;
}

static ssize_t kpeek_hung_rwsem_read(struct file *file, char __user *buf,
				     size_t len, loff_t *pos)
{
	kpeek_hung_note("waits", "rwsem", "kpeek_hung_rwsem", &kpeek_hung_rwsem);
	down_write(&kpeek_hung_rwsem);
	up_write(&kpeek_hung_rwsem);
	return 0;
}

static const struct proc_ops kpeek_hung_mutex_ops = {
	.proc_read = kpeek_hung_mutex_read,
};

static const struct proc_ops kpeek_hung_rwsem_ops = {
	.proc_read = kpeek_hung_rwsem_read,
};

static int kpeek_hung_start(void)
{
	static const struct {
		int (*fn)(void *);
		const char *name;
	} threads[] = {
		{ kpeek_abba_1, "kpeek_abba_1" },
		{ kpeek_abba_2, "kpeek_abba_2" },
		{ kpeek_rw_owner, "kpeek_rw_owner" },
		{ kpeek_rw_reader, "kpeek_rw_reader" },
		{ kpeek_cwaiter, "kpeek_cwaiter" },
	};
	int i;

	if (!proc_create("kpeek_hung_mutex", 0444, NULL, &kpeek_hung_mutex_ops) ||
	    !proc_create("kpeek_hung_rwsem", 0444, NULL, &kpeek_hung_rwsem_ops))
		return -ENOMEM;
	for (i = 0; i < ARRAY_SIZE(threads); i++) {
		struct task_struct *t = kthread_run(threads[i].fn, NULL, "%s", threads[i].name);

		if (IS_ERR(t))
			return PTR_ERR(t);
	}
	return 0;
}

static int __init kpeek_fixture_init(void)
{
	kpeek_fixture_task = kthread_run(kpeek_fixture_thread, NULL, "kpeek_fixture");
	if (IS_ERR(kpeek_fixture_task))
		return PTR_ERR(kpeek_fixture_task);
	if (!strcmp(mode, "hung")) {
		int err = kpeek_hung_start();

		if (err)
			return err;
		/* The hung kthreads run this module's code forever. */
		__module_get(THIS_MODULE);
	}
	return 0;
}

static void __exit kpeek_fixture_exit(void)
{
	kthread_stop(kpeek_fixture_task);
}

module_init(kpeek_fixture_init);
module_exit(kpeek_fixture_exit);
MODULE_DESCRIPTION("kpeek test fixture: a module with a sleeping kernel thread, and known hangs");
MODULE_LICENSE("GPL");
