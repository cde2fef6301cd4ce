// SPDX-License-Identifier: GPL-2.0
/*
 * kpeek_fixture: a small module loaded in the fixture guests, so that
 * module lists and backtraces through module code are tested for real.
 * It starts one kernel thread, "kpeek_fixture", that sleeps in this
 * module's code until the module is unloaded.
 */
#include <linux/kthread.h>
#include <linux/module.h>
#include <linux/wait.h>

static DECLARE_WAIT_QUEUE_HEAD(kpeek_fixture_wq);
static struct task_struct *kpeek_fixture_task;
static unsigned long kpeek_fixture_counter = 0x6b7065656b; /* "kpeek" */

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

static int __init kpeek_fixture_init(void)
{
	kpeek_fixture_task = kthread_run(kpeek_fixture_thread, NULL, "kpeek_fixture");
	return PTR_ERR_OR_ZERO(kpeek_fixture_task);
}

static void __exit kpeek_fixture_exit(void)
{
	kthread_stop(kpeek_fixture_task);
}

module_init(kpeek_fixture_init);
module_exit(kpeek_fixture_exit);
MODULE_DESCRIPTION("kpeek test fixture: a module with a sleeping kernel thread");
MODULE_LICENSE("GPL");
