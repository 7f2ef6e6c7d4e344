/* SPDX-License-Identifier: MIT */
#include "ready.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

int tool_pidfile_write(struct tool_pidfile *pf, const char *path)
{
	size_t n = strlen(path);
	char *tmp = malloc(n + sizeof(".XXXXXX"));
	if (!tmp)
		return -ENOMEM;
	memcpy(tmp, path, n);
	memcpy(tmp + n, ".XXXXXX", sizeof(".XXXXXX"));
	/* beside the target: rename() stays in one file system */
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		int e = -errno;
		free(tmp);
		return e;
	}
	char buf[24];
	int len = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	struct stat st;
	int r = 0;
	errno = 0;
	if (write(fd, buf, (size_t)len) != len || fchmod(fd, 0644) ||
	    fstat(fd, &st))
		r = errno ? -errno : -EIO;
	if (close(fd) && !r)
		r = -errno;
	if (!r && rename(tmp, path))
		r = -errno;
	if (r) {
		unlink(tmp);
	} else {
		pf->path = path;
		pf->dev = st.st_dev;
		pf->ino = st.st_ino;
	}
	free(tmp);
	return r;
}

void tool_pidfile_remove(struct tool_pidfile *pf)
{
	struct stat st;
	/* another process may have replaced it since: leave that one */
	if (pf->path && lstat(pf->path, &st) == 0 && st.st_dev == pf->dev &&
	    st.st_ino == pf->ino)
		unlink(pf->path);
	pf->path = NULL;
}

/* A decimal number with nothing around it, at most max. */
static bool parse_num(const char *s, unsigned long max, unsigned long *v)
{
	if (!s || *s < '0' || *s > '9')
		return false;
	char *end;
	errno = 0;
	*v = strtoul(s, &end, 10);
	return !errno && !*end && *v <= max;
}

int tool_listen_fds(char *name, size_t namelen)
{
	const char *spid = getenv("LISTEN_PID");
	const char *sfds = getenv("LISTEN_FDS");
	const char *names = getenv("LISTEN_FDNAMES");
	unsigned long pid = 0, n = 0;
	int r = 0;
	if (namelen)
		name[0] = '\0';
	if (!sfds) {
		r = 0;
	} else if (!parse_num(spid, (unsigned long)INT32_MAX, &pid) ||
		   !parse_num(sfds, 1024, &n)) {
		r = -EINVAL;
	} else if (pid != (unsigned long)getpid()) {
		r = 0; /* meant for another process (our parent's child) */
	} else {
		for (unsigned long i = 0; i < n; i++) {
			int fd = TOOL_LISTEN_FDS_START + (int)i;
			int fl = fcntl(fd, F_GETFD);
			if (fl < 0 || fcntl(fd, F_SETFD, fl | FD_CLOEXEC)) {
				r = -EBADF;
				break;
			}
		}
		if (r == 0) {
			r = (int)n;
			if (names && namelen) {
				size_t k = strcspn(names, ":");
				if (k >= namelen)
					k = namelen - 1;
				memcpy(name, names, k);
				name[k] = '\0';
			}
		}
	}
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return r;
}

int tool_notify(const char *fmt, ...)
{
	const char *e = getenv("NOTIFY_SOCKET");
	if (!e || !*e)
		return 0;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t n = strlen(e);
	if (e[0] != '/' && e[0] != '@')
		return -EAFNOSUPPORT; /* e.g. "vsock:CID:PORT" */
	if (n >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, e, n);
	if (e[0] == '@')
		sa.sun_path[0] = '\0'; /* abstract: the name is the n bytes */
	socklen_t salen =
	    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);

	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	int len = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (len < 0)
		return -EINVAL;
	if ((size_t)len >= sizeof(msg))
		len = sizeof(msg) - 1; /* a long STATUS= text is cut */

	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int r = 0;
	errno = 0;
	if (sendto(fd, msg, (size_t)len, MSG_NOSIGNAL, (struct sockaddr *)&sa,
		   salen) != len)
		r = errno ? -errno : -EIO;
	close(fd);
	return r;
}
