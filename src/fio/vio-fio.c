/* SPDX-License-Identifier: MIT */
/*
 * vio-fio.so: an external fio ioengine that drives any vhost-user-blk
 * backend (vio serve blk, qemu-storage-daemon, ...) with vio's vhost-user
 * frontend and virtio-blk driver, through vio's public API only.
 *
 *     fio --ioengine=external:PATH/vio-fio.so --socket=/run/disk.sock \
 *         [--queues=N] [--queue_size=N] [--packed=0|1] ...
 *
 * Built against the headers of the installed fio (scripts/fetch-fio-src.sh):
 * fio checks FIO_IOOPS_VERSION when it loads the engine, and the structures
 * the engine reads (thread_data, io_u, fio_file) are that version's.
 *
 * Connections: one per socket per process, shared by the jobs of that
 * process (with fio's `thread` option, every job; without it each job is
 * a process of its own, with a connection of its own: a backend that
 * takes one connection at a time then needs numjobs=1 or `thread`).  Each
 * job takes a queue of its own (vio's driver: one thread per queue at a
 * time); `queues` is how many the connection negotiates, so with `thread`
 * it must be at least the number of jobs.  The first job to connect sets
 * queues, queue_size and packed for everyone.
 *
 * Data goes through the driver's bounce buffers (fio allocates its own
 * buffers): one copy per request.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <linux/virtio_ids.h>

/* fio's own headers, from the configured source tree (system includes:
 * their warnings are not ours) */
#include "fio.h"
#include "optgroup.h"

#include <vio/blk.h>
#include <vio/bus.h>
#include <vio/mem.h>
#include <vio/vhost_user.h>

/* engine options (td->eo); fio wants a pointer-sized pad first */
struct vio_fio_opts {
	void *pad;
	char *socket;
	unsigned int queues;
	unsigned int queue_size;
	unsigned int packed;
	unsigned int connect_timeout;
};

static struct fio_option vio_fio_options[] = {
    {
	.name = "socket",
	.lname = "vhost-user socket",
	.type = FIO_OPT_STR_STORE,
	.off1 = offsetof(struct vio_fio_opts, socket),
	.help = "path of the vhost-user-blk backend's UNIX socket (required)",
	.category = FIO_OPT_C_ENGINE,
	.group = FIO_OPT_G_INVALID,
    },
    {
	.name = "queues",
	.lname = "virtqueues",
	.type = FIO_OPT_INT,
	.off1 = offsetof(struct vio_fio_opts, queues),
	.def = "1",
	.minval = 1,
	.maxval = 256,
	.help = "queues the connection negotiates; each job of the process "
		"takes one",
	.category = FIO_OPT_C_ENGINE,
	.group = FIO_OPT_G_INVALID,
    },
    {
	.name = "queue_size",
	.lname = "virtqueue size",
	.type = FIO_OPT_INT,
	.off1 = offsetof(struct vio_fio_opts, queue_size),
	.def = "0",
	.minval = 0,
	.maxval = 32768,
	.help = "descriptors per ring (0: 256, or the backend's maximum)",
	.category = FIO_OPT_C_ENGINE,
	.group = FIO_OPT_G_INVALID,
    },
    {
	.name = "packed",
	.lname = "packed virtqueues",
	.type = FIO_OPT_BOOL,
	.off1 = offsetof(struct vio_fio_opts, packed),
	.def = "1",
	.help = "use packed rings when the backend offers them (0: split)",
	.category = FIO_OPT_C_ENGINE,
	.group = FIO_OPT_G_INVALID,
    },
    {
	.name = "connect_timeout",
	.lname = "connect timeout",
	.type = FIO_OPT_INT,
	.off1 = offsetof(struct vio_fio_opts, connect_timeout),
	.def = "5000",
	.help = "ms to retry connecting to a backend still starting",
	.category = FIO_OPT_C_ENGINE,
	.group = FIO_OPT_G_INVALID,
    },
    {
	.name = NULL,
    },
};

/* ---- connections, shared by the jobs (threads) of one process ---- */

struct vio_conn {
	struct vio_conn *next;
	char *path;
	struct vio_mem *mem;
	struct vio_bus *bus;
	struct vio_driver *drv;
	struct vio_frontend *f;
	struct vio_blk *b;
	unsigned refs;
	unsigned nq;
	bool *busy; /* queue taken by a job */
};

static pthread_mutex_t conns_lock = PTHREAD_MUTEX_INITIALIZER;
static struct vio_conn *conns;

static void conn_free(struct vio_conn *c)
{
	if (c->f) {
		vio_bus_remove(c->bus, vio_frontend_vdev(c->f));
		vio_frontend_free(c->f);
	}
	vio_bus_free(c->bus);
	vio_blk_driver_free(c->drv);
	vio_mem_free(c->mem);
	free(c->busy);
	free(c->path);
	free(c);
}

/* Connect and probe; NULL (and a log line) on failure. */
static struct vio_conn *conn_new(const struct vio_fio_opts *o, unsigned depth)
{
	char err[256] = "out of memory";
	struct vio_conn *c = calloc(1, sizeof(*c));
	if (!c)
		goto fail;
	unsigned qs = o->queue_size ? o->queue_size : 256;
	struct vio_blk_driver_opts dc = {
	    .queue_depth = depth < qs ? depth : qs,
	    .num_queues = o->queues,
	    .no_packed = !o->packed,
	};
	struct vio_frontend_opts fc = {
	    .device_id = VIRTIO_ID_BLOCK,
	    .num_queues = o->queues,
	    .queue_size = o->queue_size,
	    .connect_timeout_ms = (int)o->connect_timeout,
	};
	c->path = strdup(o->socket);
	c->mem = vio_mem_new();
	c->bus = vio_bus_new();
	c->drv = vio_blk_driver_new(&dc);
	if (!c->path || !c->mem || !c->bus || !c->drv)
		goto fail;
	if (vio_bus_register(c->bus, c->drv) < 0)
		goto fail;
	fc.mem = c->mem;
	c->f = vio_bus_connect(c->bus, o->socket, &fc, err, sizeof(err));
	if (!c->f)
		goto fail;
	c->b = vio_blk_from_vdev(vio_frontend_vdev(c->f));
	c->nq = vio_blk_num_queues(c->b);
	c->busy = calloc(c->nq, sizeof(*c->busy));
	if (!c->b || !c->busy) {
		snprintf(err, sizeof(err), "no blk driver bound");
		goto fail;
	}
	return c;
fail:
	log_err("vio: %s: %s\n", o->socket, err);
	if (c)
		conn_free(c);
	return NULL;
}

/* ---- per job ---- */

struct vio_job {
	struct vio_conn *c;
	unsigned q;
	unsigned max;		   /* iodepth: the most requests in flight */
	struct vio_blk_req **done; /* poll's output */
	struct io_u **events;	   /* what getevents found, for ->event */
};

static const struct vio_fio_opts *opts_of(struct thread_data *td)
{
	return td->eo;
}

/*
 * Before the jobs start (in fio's main process): connect once to learn
 * the capacity, and describe the disk as the job's one file.  The
 * connection is closed again: jobs may be processes (fork), and each
 * connects in ->init.
 */
static int vio_fio_setup(struct thread_data *td)
{
	const struct vio_fio_opts *o = opts_of(td);
	if (!o || !o->socket || !*o->socket) {
		log_err("vio: the socket option is required "
			"(--socket=PATH of a vhost-user-blk backend)\n");
		return 1;
	}
	if (!td->files_index) {
		add_file(td, o->socket, 0, 0);
		td->o.nr_files = td->o.nr_files ? td->o.nr_files : 1;
		td->o.open_files++;
	}
	struct vio_conn *c = conn_new(o, 1);
	if (!c)
		return 1;
	uint64_t size = vio_blk_capacity_bytes(c->b);
	conn_free(c);
	for (unsigned i = 0; i < td->o.nr_files; i++) {
		struct fio_file *f = td->files[i];
		f->real_file_size = size;
		fio_file_set_size_known(f);
	}
	return 0;
}

static void vio_fio_cleanup(struct thread_data *td)
{
	struct vio_job *j = td->io_ops_data;
	if (!j)
		return;
	if (j->c) {
		pthread_mutex_lock(&conns_lock);
		j->c->busy[j->q] = false;
		if (--j->c->refs == 0) {
			struct vio_conn **p = &conns;
			while (*p != j->c)
				p = &(*p)->next;
			*p = j->c->next;
			conn_free(j->c);
		}
		pthread_mutex_unlock(&conns_lock);
	}
	free(j->done);
	free(j->events);
	free(j);
	td->io_ops_data = NULL;
}

/* In the job's thread (or process): attach to the process's connection
 * for the socket, making it if needed, and take a free queue. */
static int vio_fio_init(struct thread_data *td)
{
	const struct vio_fio_opts *o = opts_of(td);
	struct vio_job *j = calloc(1, sizeof(*j));
	if (!j)
		return 1;
	td->io_ops_data = j;
	j->max = td->o.iodepth ? td->o.iodepth : 1;
	j->done = calloc(j->max, sizeof(*j->done));
	j->events = calloc(j->max, sizeof(*j->events));
	if (!j->done || !j->events)
		goto fail;

	pthread_mutex_lock(&conns_lock);
	struct vio_conn *c = conns;
	while (c && strcmp(c->path, o->socket))
		c = c->next;
	if (!c) {
		c = conn_new(o, j->max);
		if (c) {
			c->next = conns;
			conns = c;
		}
	}
	unsigned q = 0;
	while (c && q < c->nq && c->busy[q])
		q++;
	if (c && q < c->nq) {
		c->busy[q] = true;
		c->refs++;
		j->c = c;
		j->q = q;
	} else if (c) {
		log_err("vio: %s: all %u queues are taken by other jobs "
			"(raise queues=)\n",
			o->socket, c->nq);
		if (!c->refs) {
			conns = c->next;
			conn_free(c);
		}
	}
	pthread_mutex_unlock(&conns_lock);
	if (!j->c)
		goto fail;
	return 0;
fail:
	vio_fio_cleanup(td);
	return 1;
}

static int vio_fio_io_u_init(struct thread_data *td, struct io_u *io_u)
{
	struct vio_blk_req *r = calloc(1, sizeof(*r));
	if (!r)
		return 1;
	r->user = io_u;
	io_u->engine_data = r;
	return 0;
}

static void vio_fio_io_u_free(struct thread_data *td, struct io_u *io_u)
{
	free(io_u->engine_data);
	io_u->engine_data = NULL;
}

static enum fio_q_status vio_fio_queue(struct thread_data *td,
				       struct io_u *io_u)
{
	struct vio_job *j = td->io_ops_data;
	struct vio_blk_req *r = io_u->engine_data;
	int op;

	fio_ro_check(td, io_u);
	switch (io_u->ddir) {
	case DDIR_READ:
		op = VIO_BLK_OP_READ;
		break;
	case DDIR_WRITE:
		op = VIO_BLK_OP_WRITE;
		break;
	case DDIR_TRIM:
		op = VIO_BLK_OP_DISCARD;
		break;
	case DDIR_SYNC:
	case DDIR_DATASYNC:
		op = VIO_BLK_OP_FLUSH;
		break;
	default:
		io_u->error = EINVAL;
		return FIO_Q_COMPLETED;
	}
	*r = (struct vio_blk_req){.op = op, .user = io_u};
	if (op != VIO_BLK_OP_FLUSH) {
		r->offset = io_u->offset;
		r->buf = io_u->xfer_buf;
		r->len = io_u->xfer_buflen;
	}
	int ret = vio_blk_submit(j->c->b, j->q, r);
	if (ret < 0) {
		io_u->error = -ret;
		return FIO_Q_COMPLETED;
	}
	return FIO_Q_QUEUED;
}

/* vio_blk_submit sends at once: nothing waits for a commit. */
static int vio_fio_commit(struct thread_data *td)
{
	return 0;
}

/* Complete at least min requests (waiting up to t for each batch; NULL:
 * as long as needed) and at most max. */
static int vio_fio_getevents(struct thread_data *td, unsigned int min,
			     unsigned int max, const struct timespec *t)
{
	struct vio_job *j = td->io_ops_data;
	int timeout = t ? (int)(t->tv_sec * 1000 + t->tv_nsec / 1000000) : -1;
	unsigned n = 0;

	if (max > j->max)
		max = j->max;
	while (n < max) {
		/* harvest without waiting once min is reached */
		int r = vio_blk_poll(j->c->b, j->q, j->done, max - n,
				     n >= min ? 0 : timeout);
		if (r < 0)
			return n ? (int)n : r;
		if (r == 0)
			break; /* timeout, or nothing in flight */
		for (int i = 0; i < r; i++) {
			struct vio_blk_req *req = j->done[i];
			struct io_u *io_u = req->user;
			io_u->error = req->result < 0 ? -req->result : 0;
			io_u->resid = req->result < 0 ? io_u->xfer_buflen : 0;
			j->events[n++] = io_u;
		}
	}
	return (int)n;
}

static struct io_u *vio_fio_event(struct thread_data *td, int event)
{
	struct vio_job *j = td->io_ops_data;
	return j->events[event];
}

static int vio_fio_open_file(struct thread_data *td, struct fio_file *f)
{
	return 0;
}

static int vio_fio_close_file(struct thread_data *td, struct fio_file *f)
{
	return 0;
}

/* The size setup learned; a file fio added itself (filename=) gets it
 * from another connection. */
static int vio_fio_get_file_size(struct thread_data *td, struct fio_file *f)
{
	if (fio_file_size_known(f))
		return 0;
	struct vio_conn *c = conn_new(opts_of(td), 1);
	if (!c)
		return EIO;
	f->real_file_size = vio_blk_capacity_bytes(c->b);
	conn_free(c);
	fio_file_set_size_known(f);
	return 0;
}

/* no page cache to drop */
static int vio_fio_invalidate(struct thread_data *td, struct fio_file *f)
{
	return 0;
}

/* What fio looks up in the shared object (dlsym "ioengine"). */
__attribute__((visibility("default"))) struct ioengine_ops ioengine = {
    .name = "vio",
    .version = FIO_IOOPS_VERSION,
    .flags = FIO_DISKLESSIO | FIO_NOEXTEND | FIO_NODISKUTIL,
    .setup = vio_fio_setup,
    .init = vio_fio_init,
    .cleanup = vio_fio_cleanup,
    .queue = vio_fio_queue,
    .commit = vio_fio_commit,
    .getevents = vio_fio_getevents,
    .event = vio_fio_event,
    .open_file = vio_fio_open_file,
    .close_file = vio_fio_close_file,
    .get_file_size = vio_fio_get_file_size,
    .invalidate = vio_fio_invalidate,
    .io_u_init = vio_fio_io_u_init,
    .io_u_free = vio_fio_io_u_free,
    .options = vio_fio_options,
    .option_struct_size = sizeof(struct vio_fio_opts),
};
