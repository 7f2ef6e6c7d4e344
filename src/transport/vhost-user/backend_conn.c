/* SPDX-License-Identifier: MIT */
/*
 * The vhost-user backend's sockets and connection life: create and free,
 * listen (published atomically) or connect (client mode), accept, and
 * dispatch one message at a time to the handlers in backend.c.  A
 * connection ends on EOF, a bad message or a memory fault; the backend
 * then serves the next one.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "transport/vhost-user/backend_internal.h"

/* ---- sockets ---- */

struct vio_backend *vio_backend_new(struct vio_device *dev,
				    const struct vio_backend_opts *cfg)
{
	if (!dev) {
		errno = EINVAL;
		return NULL;
	}
	struct vio_backend *b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	b->dev = dev;
	if (cfg)
		b->cfg = *cfg;
	if (!b->cfg.max_mem_slots)
		b->cfg.max_mem_slots = DEFAULT_SLOTS;
	if (!b->cfg.socket_mode)
		b->cfg.socket_mode = 0600;
	b->nq = vio_device_num_queues(dev);
	b->listen_fd = b->conn_fd = -1;
	vio_vu_backend_req_init(b);
	for (unsigned i = 0; i < VIO_MAX_QUEUES; i++) {
		b->q[i].kick_fd = b->q[i].call_fd = b->q[i].err_fd = -1;
		pthread_mutex_init(&b->q[i].fd_lock, NULL);
	}
	unsigned slots = b->cfg.max_mem_slots > VIO_VU_MAX_TABLE_REGIONS
			     ? b->cfg.max_mem_slots
			     : VIO_VU_MAX_TABLE_REGIONS;
	b->mt = vio_memtable_new(slots);
	if (!b->mt) {
		free(b);
		return NULL;
	}
	vio_device_attach(dev, &vio_vu_backend_hooks, b);
	return b;
}

void vio_backend_free(struct vio_backend *b)
{
	if (!b)
		return;
	vio_vu_backend_end(b);
	vio_vu_close_fd(&b->listen_fd);
	if (b->path) {
		unlink(b->path);
		free(b->path);
	}
	vio_memtable_free(b->mt);
	vio_device_attach(b->dev, NULL, NULL);
	vio_vu_backend_req_fini(b);
	for (unsigned i = 0; i < VIO_MAX_QUEUES; i++)
		pthread_mutex_destroy(&b->q[i].fd_lock);
	free(b);
}

static int make_addr(const char *path, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (!path || strlen(path) >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	strcpy(sa->sun_path, path);
	return 0;
}

/*
 * Listen on path, published atomically: bind and listen on a temporary
 * name beside it, then rename() it into place.  Whoever sees the socket
 * file can connect at once (no ECONNREFUSED window between bind and
 * listen), and a second server's stale-socket probe never finds a socket
 * that is bound but not yet listening (and so never unlinks a live one).
 */
int vio_backend_listen(struct vio_backend *b, const char *path)
{
	struct sockaddr_un sa, tmp;
	int r = make_addr(path, &sa);
	if (r)
		return r;
	char tmp_path[sizeof(sa.sun_path) + 32];
	snprintf(tmp_path, sizeof(tmp_path), "%s.%d.tmp", path, (int)getpid());
	if (make_addr(tmp_path, &tmp)) {
		/* no room in sun_path for a name beside it: bind in place
		 * (a client may see the file a moment before it listens) */
		snprintf(tmp_path, sizeof(tmp_path), "%s", path);
		tmp = sa;
	}
	struct stat st;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return -EEXIST;
		/* in use by a live listener?  else a stale file */
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		bool live = probe >= 0 && connect(probe, (struct sockaddr *)&sa,
						  sizeof(sa)) == 0;
		if (probe >= 0)
			close(probe);
		if (live)
			return -EADDRINUSE;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	unlink(tmp_path); /* left by a crashed server of our pid, or the
			     stale file itself when binding in place */
	mode_t old = umask(0777 & ~b->cfg.socket_mode);
	r = bind(fd, (struct sockaddr *)&tmp, sizeof(tmp));
	umask(old);
	if (r == 0 && (chmod(tmp_path, b->cfg.socket_mode) || listen(fd, 16) ||
		       rename(tmp_path, path)))
		r = -1;
	if (r) {
		r = -errno;
		unlink(tmp_path);
		close(fd);
		return r;
	}
	b->listen_fd = fd;
	b->path = strdup(path);
	if (!b->path) {
		unlink(path);
		vio_vu_close_fd(&b->listen_fd);
		return -ENOMEM;
	}
	return 0;
}

/*
 * Serve on a socket someone else made and listens on (systemd socket
 * activation): checked to be a listening AF_UNIX stream socket, so that a
 * wrong fd fails here with a clear errno rather than at the first accept.
 * The backend owns it from then on (closed by vio_backend_free) and, not
 * having created the socket file, never unlinks anything.
 */
int vio_backend_listen_fd(struct vio_backend *b, int fd)
{
	if (fd < 0)
		return -EBADF;
	if (b->listen_fd >= 0 || b->conn_fd >= 0)
		return -EBUSY;
	int v;
	socklen_t len = sizeof(v);
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &len))
		return -errno; /* -ENOTSOCK, -EBADF */
	if (v != AF_UNIX)
		return -EAFNOSUPPORT;
	len = sizeof(v);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &len))
		return -errno;
	if (v != SOCK_STREAM)
		return -EPROTOTYPE;
	len = sizeof(v);
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len))
		return -errno;
	if (!v)
		return -EINVAL; /* bound perhaps, but not listening */
	int fl = fcntl(fd, F_GETFD);
	if (fl < 0 || fcntl(fd, F_SETFD, fl | FD_CLOEXEC))
		return -errno;
	b->listen_fd = fd;
	return 0;
}

/* A frontend that stops in the middle of a message (or stops reading our
 * replies) must not hold the control thread: each read or write of the
 * connection may block this long, then the connection ends. */
#define CONN_IO_TIMEOUT_S 5

static void adopt_connection(struct vio_backend *b, int fd)
{
	struct timeval tv = {.tv_sec = CONN_IO_TIMEOUT_S};
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)))
		vio_log_err("vhost-user: socket timeouts: %m");
	b->conn_fd = fd;
	b->conns++;
	/* guest memory truncated under us (SIGBUS guard): the connection
	 * is shut down, dispatch sees it end (the table is empty here) */
	vio_memtable_set_fault_fd(b->mt, fd);
}

int vio_backend_connect(struct vio_backend *b, const char *path)
{
	struct sockaddr_un sa;
	int r = make_addr(path, &sa);
	if (r)
		return r;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		r = -errno;
		close(fd);
		return r;
	}
	vio_vu_backend_end(b);
	adopt_connection(b, fd);
	return 0;
}

int vio_backend_fd(const struct vio_backend *b)
{
	return b->conn_fd >= 0 ? b->conn_fd : b->listen_fd;
}

bool vio_backend_connected(const struct vio_backend *b)
{
	return b->conn_fd >= 0;
}

unsigned long vio_backend_connections(const struct vio_backend *b)
{
	return b->conns;
}

int vio_backend_dispatch(struct vio_backend *b)
{
	if (b->conn_fd < 0) {
		if (b->listen_fd < 0)
			return -ENOTCONN;
		int fd = accept4(b->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -errno;
		adopt_connection(b, fd);
		vio_log("vhost-user: %s: connection %lu: frontend connected",
			b->path ? b->path : "inherited socket", b->conns);
		return 0;
	}
	if (vio_memtable_faulted(b->mt)) {
		/* messages still queued are not worth reading */
		vio_log_warn("vhost-user: connection %lu: frontend truncated "
			     "its guest memory (fault at gpa 0x%" PRIx64
			     "): connection ended",
			     b->conns, vio_memtable_fault_addr(b->mt));
		vio_vu_backend_end(b);
		return -ECONNRESET;
	}
	struct vio_vu_msg m;
	char why[160] = "";
	int r = vio_vu_recv(b->conn_fd, &m, why, sizeof(why));
	if (r == 0)
		r = vio_vu_backend_handle(b, &m);
	else if (why[0]) /* -EPROTO, or -EPIPE for a truncated message */
		vio_log_limited(&b->rl,
				"vhost-user: connection %lu: bad message: %s",
				b->conns, why);
	if (r == 0)
		return 0;
	if (r == -ECONNRESET)
		vio_log("vhost-user: connection %lu: frontend disconnected",
			b->conns);
	else
		vio_log_limited(&b->rl,
				"vhost-user: connection %lu: closed (%s)",
				b->conns, strerror(-r));
	vio_vu_backend_end(b);
	return -ECONNRESET;
}
