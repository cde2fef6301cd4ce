/*
 * kpw: the fixture guest's workload. One static binary, one mode per call;
 * each mode leaves the guest with a task shape that kpeek must show:
 *
 *   kpw mt N            "kpw-mt" with N threads named kpw-w000..     (S, many threads)
 *   kpw solo NAME       a single-threaded process called NAME          (S)
 *   kpw zombie          "kpw-zparent" whose child "kpw-zombie" exited  (Z)
 *   kpw stopped         "kpw-stopped" stopped by SIGSTOP               (T)
 *   kpw traced          "kpw-tracer" with a ptrace-stopped "kpw-tracee" (t)
 *   kpw vfork           "kpw-vforker" waiting for its vfork child      (D)
 *   kpw chain N         kpw-chain0 -> kpw-chain1 -> ... (a parent/child chain)
 *   kpw spin            "kpw-spin" burning a CPU                       (R)
 *   kpw user            "kpw-user" with ruid 1000, euid 1001
 *   kpw mem MIB         "kpw-mem" with MIB MiB of touched heap (RSS)
 *
 * Every mode touches /run/ready.<mode> once its shape is in place, so init
 * knows the workload has settled before it records the truth.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

static void name(const char *n)
{
	prctl(PR_SET_NAME, (unsigned long)n, 0, 0, 0);
}

static void ready(const char *mode)
{
	char path[64];
	snprintf(path, sizeof(path), "/run/ready.%s", mode);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd >= 0)
		close(fd);
}

static void forever(void)
{
	for (;;)
		pause();
}

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t named = PTHREAD_COND_INITIALIZER;
static pthread_cond_t never = PTHREAD_COND_INITIALIZER;
static int nr_named;

static void *worker(void *arg)
{
	char n[16];
	snprintf(n, sizeof(n), "kpw-w%03ld", (long)arg);
	name(n);
	pthread_mutex_lock(&lock);
	nr_named++;
	pthread_cond_signal(&named);
	for (;;)
		pthread_cond_wait(&never, &lock);
	return NULL;
}

static int mode_mt(int n)
{
	pthread_attr_t attr;
	name("kpw-mt");
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 64 * 1024);
	for (long i = 0; i < n; i++) {
		pthread_t t;
		int err = pthread_create(&t, &attr, worker, (void *)i);
		if (err) {
			fprintf(stderr, "kpw mt: thread %ld: %s\n", i, strerror(err));
			return 1;
		}
	}
	pthread_mutex_lock(&lock);
	while (nr_named < n)
		pthread_cond_wait(&named, &lock);
	pthread_mutex_unlock(&lock);
	ready("mt");
	forever();
	return 0;
}

static int mode_zombie(void)
{
	name("kpw-zparent");
	pid_t child = fork();
	if (child == 0) {
		name("kpw-zombie");
		_exit(7);
	}
	/* Wait until the child is a zombie without reaping it. */
	siginfo_t si;
	waitid(P_PID, child, &si, WEXITED | WNOWAIT);
	ready("zombie");
	forever();
	return 0;
}

static int mode_stopped(void)
{
	name("kpw-stopped");
	ready("stopped");
	raise(SIGSTOP);
	forever();
	return 0;
}

static int mode_traced(void)
{
	name("kpw-tracer");
	pid_t child = fork();
	if (child == 0) {
		name("kpw-tracee");
		ptrace(PTRACE_TRACEME, 0, 0, 0);
		raise(SIGSTOP);
		forever();
	}
	int status;
	waitpid(child, &status, 0); /* the tracee is now in a ptrace stop */
	ready("traced");
	forever();
	return 0;
}

static int mode_vfork(void)
{
	name("kpw-vforker");
	/* The child never execs nor exits, so the parent waits in
	 * wait_for_vfork_done() (TASK_KILLABLE: "D") for good. */
	pid_t child = vfork();
	if (child == 0) {
		name("kpw-vchild");
		ready("vfork");
		for (;;)
			pause();
	}
	forever();
	return 0;
}

static int mode_chain(int depth)
{
	char n[32];
	for (int i = 0; i < depth; i++) {
		snprintf(n, sizeof(n), "kpw-chain%d", i);
		name(n);
		if (i + 1 == depth)
			break;
		if (fork() != 0)
			forever();
	}
	ready("chain");
	forever();
	return 0;
}

static int mode_spin(void)
{
	name("kpw-spin");
	ready("spin");
	for (volatile unsigned long i = 0;; i++)
		;
	return 0;
}

static int mode_user(void)
{
	name("kpw-user");
	if (setresuid(1000, 1001, 1000) != 0) {
		perror("kpw user: setresuid");
		return 1;
	}
	ready("user");
	forever();
	return 0;
}

static int mode_mem(int mib)
{
	name("kpw-mem");
	size_t len = (size_t)mib << 20;
	unsigned char *p = malloc(len);
	if (!p)
		return 1;
	/* A pattern that is recognisable in a dump and compresses well. */
	for (size_t i = 0; i < len; i += 4096)
		memcpy(p + i, "kpeek-user-page", 16);
	ready("mem");
	forever();
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: kpw MODE [ARG]\n");
		return 2;
	}
	const char *mode = argv[1];
	const char *arg = argc > 2 ? argv[2] : NULL;
	if (!strcmp(mode, "mt"))
		return mode_mt(arg ? atoi(arg) : 300);
	if (!strcmp(mode, "solo")) {
		name(arg ? arg : "kpw-solo");
		ready(arg ? arg : "solo");
		forever();
	}
	if (!strcmp(mode, "zombie"))
		return mode_zombie();
	if (!strcmp(mode, "stopped"))
		return mode_stopped();
	if (!strcmp(mode, "traced"))
		return mode_traced();
	if (!strcmp(mode, "vfork"))
		return mode_vfork();
	if (!strcmp(mode, "chain"))
		return mode_chain(arg ? atoi(arg) : 4);
	if (!strcmp(mode, "spin"))
		return mode_spin();
	if (!strcmp(mode, "user"))
		return mode_user();
	if (!strcmp(mode, "mem"))
		return mode_mem(arg ? atoi(arg) : 4);
	fprintf(stderr, "kpw: unknown mode %s\n", mode);
	return 2;
}
