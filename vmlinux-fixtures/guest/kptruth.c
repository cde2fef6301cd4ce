/*
 * kptruth: print the guest's own view of itself as JSON lines, for the host
 * to keep beside the dump as ground truth.
 *
 *   {"kind":"begin","version":1,"self":PID,"parent":PID}
 *   {"kind":"file","path":"/proc/iomem","data":"..."}        (one per file)
 *   {"kind":"dmesg","data":"..."}                            (syslog READ_ALL)
 *   {"kind":"task","tgid":T,"tid":P,"comm":"..","stat":"..","status":"..",
 *    "stack":"..","cmdline":".."}                            (one per thread)
 *   {"kind":"end","tasks":N}
 *
 * Tasks come last so that as little as possible happens between listing
 * them and the host stopping the VM. kptruth leaves itself and its parent
 * (the shell that ran it) out of the task list: neither exists any more
 * when the dump is taken. Strings are the files' bytes; bytes outside
 * printable ASCII are escaped as \u00XX, one code point per byte.
 *
 * stdout is switched to raw mode when it is a tty, so a serial line does
 * not turn "\n" into "\r\n".
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/klog.h>
#include <termios.h>
#include <unistd.h>

static char *slurp(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return NULL;
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap);
	for (;;) {
		if (n == cap) {
			cap *= 2;
			buf = realloc(buf, cap);
		}
		ssize_t r = read(fd, buf + n, cap - n);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	*len = n;
	return buf;
}

static void put_json_string(const char *s, size_t len)
{
	putchar('"');
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c == '\n')
			fputs("\\n", stdout);
		else if (c == '\t')
			fputs("\\t", stdout);
		else if (c < 0x20 || c >= 0x7f)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void put_field(const char *key, const char *path)
{
	size_t len = 0;
	char *data = slurp(path, &len);
	printf(",\"%s\":", key);
	if (data)
		put_json_string(data, len);
	else
		fputs("null", stdout);
	free(data);
}

static void put_file(const char *path)
{
	size_t len = 0;
	char *data = slurp(path, &len);
	if (!data)
		return;
	printf("{\"kind\":\"file\",\"path\":");
	put_json_string(path, strlen(path));
	printf(",\"data\":");
	put_json_string(data, len);
	printf("}\n");
	free(data);
}

static int numeric(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return 0;
	return 1;
}

int main(void)
{
	struct termios t;
	if (tcgetattr(1, &t) == 0) {
		cfmakeraw(&t);
		tcsetattr(1, TCSANOW, &t);
	}
	pid_t self = getpid(), parent = getppid();
	printf("{\"kind\":\"begin\",\"version\":1,\"self\":%d,\"parent\":%d}\n", self, parent);

	static const char *files[] = {
		"/proc/version", "/proc/cmdline", "/proc/iomem", "/proc/modules",
		"/proc/meminfo", "/proc/loadavg", "/proc/uptime", "/proc/stat",
		"/proc/sys/kernel/tainted", "/proc/sys/kernel/pid_max",
		"/sys/kernel/vmcoreinfo", "/sys/devices/system/cpu/online",
		"/sys/devices/system/cpu/possible", "/proc/kallsyms",
	};
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		put_file(files[i]);

	int size = klogctl(10 /* SYSLOG_ACTION_SIZE_BUFFER */, NULL, 0);
	if (size > 0) {
		char *log = malloc((size_t)size);
		int n = klogctl(3 /* SYSLOG_ACTION_READ_ALL */, log, size);
		if (n > 0) {
			printf("{\"kind\":\"dmesg\",\"data\":");
			put_json_string(log, (size_t)n);
			printf("}\n");
		}
		free(log);
	}

	int tasks = 0;
	DIR *proc = opendir("/proc");
	struct dirent *p;
	while (proc && (p = readdir(proc))) {
		if (!numeric(p->d_name) || atoi(p->d_name) == self || atoi(p->d_name) == parent)
			continue;
		char dir[300];
		snprintf(dir, sizeof(dir), "/proc/%s/task", p->d_name);
		DIR *task = opendir(dir);
		struct dirent *tp;
		while (task && (tp = readdir(task))) {
			if (!numeric(tp->d_name))
				continue;
			char base[600], path[640];
			snprintf(base, sizeof(base), "%s/%s", dir, tp->d_name);
			printf("{\"kind\":\"task\",\"tgid\":%s,\"tid\":%s", p->d_name, tp->d_name);
			snprintf(path, sizeof(path), "%s/comm", base);
			put_field("comm", path);
			snprintf(path, sizeof(path), "%s/stat", base);
			put_field("stat", path);
			snprintf(path, sizeof(path), "%s/status", base);
			put_field("status", path);
			snprintf(path, sizeof(path), "%s/stack", base);
			put_field("stack", path);
			snprintf(path, sizeof(path), "%s/cmdline", base);
			put_field("cmdline", path);
			printf("}\n");
			tasks++;
		}
		if (task)
			closedir(task);
	}
	if (proc)
		closedir(proc);
	printf("{\"kind\":\"end\",\"tasks\":%d}\n", tasks);
	fflush(stdout);
	tcdrain(1);
	return 0;
}
