/* SPDX-License-Identifier: MIT */
/*
 * The NBD storage backend (blk_backend.h), through libnbd: an image named
 * by an NBD URI (nbd://HOST[:PORT]/EXPORT, nbd+unix:///EXPORT?socket=PATH,
 * parsed by libnbd's nbd_aio_connect_uri).
 *
 * Connections: one libnbd handle per queue, owned by that queue's thread.
 * Several queues need the server's multi-conn (NBD_FLAG_CAN_MULTI_CONN:
 * a FLUSH on one connection covers writes completed on every one, and
 * what one connection wrote, another reads); without it (or a read-only
 * export) the device is capped to one queue, with a warning.  The first
 * connection (made by open(), which reads the export's size and flags)
 * becomes queue 0's.
 *
 * I/O: asynchronous commands (nbd_aio_pread/pwrite/flush/trim/zero), one
 * per data iovec (libnbd takes a flat buffer; the server gets them
 * pipelined), FUA for writethrough when the server has it, else a FLUSH
 * after the data.  Completion callbacks only count (libnbd holds the
 * handle's lock while it runs them): a request whose commands all ended
 * is queued in fin[] and ended (blk_req_end) after libnbd returns.
 *
 * Events: libnbd wants its socket polled for reading and, while it has
 * bytes to send that the socket did not take, for writing; the engine's
 * loop watches readability only.  So each queue has an epoll fd of its
 * own holding the socket with EPOLLIN, plus EPOLLOUT while libnbd's
 * direction says WRITE; that epoll fd is what the loop watches (it is
 * readable while the socket is ready the way libnbd waits for).  While
 * libnbd only awaits replies, a wake-up reads every reply the socket
 * holds (SIOCINQ says when to stop) before the requests end, so that the
 * driver gets one call per batch (drain).
 *
 * Failures: a command the server fails ends its request with that errno
 * (IOERR to the driver).  A connection that dies (EOF, reset) or does not
 * answer within bd->io_timeout_ns (a timer while requests are in flight)
 * is closed: every request on it ends with an error, exactly once (the
 * handle is closed before the slots can be reused, so libnbd touches no
 * buffer afterwards).  The next request connects again, asynchronously:
 * requests wait for the handshake (bounded by the same timeout); after a
 * failed attempt, requests fail at once for NBD_RETRY_NS before the next
 * one.  Queue stop (queue.c: reap(wait) until nothing is in flight) is
 * bounded by the timeout.
 *
 * Blocking: none in the worker, except name resolution for a TCP host
 * name when a connection is made again (libnbd resolves synchronously).
 * open() and each queue's first connection block the caller (the device's
 * creation), bounded by the timeout.
 */
#include <errno.h>
#include <linux/sockios.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <libnbd.h>

#include "blk/blk_internal.h"
#include "blk/io_nbd.h"
#include <vio/device.h>

/* after a failed connection attempt, fail requests at once this long */
#define NBD_RETRY_NS 1000000000ull
/* reap(wait) sleeps at most this long per call */
#define NBD_WAIT_MS 100
/* a simple reply's header (NBD protocol) */
#define NBD_REPLY_HDR 16u
#define NBD_LEN_UNKNOWN UINT32_MAX

enum { CONN_DOWN, CONN_CONNECTING, CONN_UP };

struct nbd_q;
/* One slot's commands: the callbacks' user_data. */
struct nbd_ctx {
	struct nbd_q *nq;
	uint16_t slot;
	bool flushing; /* the data ended: the writethrough FLUSH runs */
	/* the payload of the slot's read command, for the reply's size
	 * (NBD_LEN_UNKNOWN: several commands, see nbd_event) */
	uint32_t rlen;
};

struct nbd_q {
	struct blk_queue *q;
	struct nbd_img *img;
	struct nbd_handle *h;
	int state;	 /* CONN_* */
	int sock;	 /* the handle's socket in ep, or -1 */
	uint32_t events; /* what ep watches it for */
	int ep;		 /* the epoll fd the loop watches */
	bool closing;	 /* nbd_close runs: callbacks do nothing */
	bool inq_ok;	 /* SIOCINQ works on the socket (and no TLS) */
	/* while nbd_event reads replies: bytes surely still unread in the
	 * socket, and replies taken so far (cmd_done keeps both) */
	uint64_t inq;
	unsigned replies;
	uint64_t failed; /* when the last connection attempt failed */
	struct vio_loop *loop;
	bool timer_on;
	uint64_t period;     /* the timeout check's period, ns */
	struct nbd_ctx *ctx; /* [nreqs] */
	/* [2 * nreqs] slots whose commands all ended: a slot is queued at
	 * most twice per fin_run (its data, then its writethrough FLUSH) */
	uint16_t *fin;
	unsigned nfin;
	uint16_t *wait; /* [nreqs] slots waiting for the handshake, FIFO */
	char why[128];	/* what the last failed notification said */
	unsigned nwait;
};

static void conn_fail(struct nbd_q *nq, int err, const char *why);

/* ---- the queue's epoll fd ---- */

/* Watch the handle's socket the way libnbd waits for it now (exactly: a
 * readable socket libnbd does not want to read from must not keep the
 * loop busy; a hang-up is reported whatever the mask). */
static void ep_sync(struct nbd_q *nq)
{
	if (!nq->h || nq->sock < 0)
		return;
	int dir = nbd_aio_get_direction(nq->h);
	uint32_t want = (dir & LIBNBD_AIO_DIRECTION_READ ? EPOLLIN : 0) |
			(dir & LIBNBD_AIO_DIRECTION_WRITE ? EPOLLOUT : 0);
	if (want == nq->events)
		return;
	struct epoll_event ev = {.events = want, .data.u32 = 0};
	if (epoll_ctl(nq->ep, EPOLL_CTL_MOD, nq->sock, &ev) == 0)
		nq->events = want;
}

/* The handle has a socket: watch it.  0 or negative errno. */
static int ep_add(struct nbd_q *nq)
{
	int fd = nbd_aio_get_fd(nq->h);
	if (fd < 0)
		return blk_nbd_err(-EIO);
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 0};
	if (epoll_ctl(nq->ep, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -errno;
	nq->sock = fd;
	/* (a handle still connecting: settled by conn_up) */
	nq->inq_ok =
	    nbd_aio_is_ready(nq->h) && nbd_get_tls_negotiated(nq->h) != 1;
	nq->events = EPOLLIN;
	ep_sync(nq);
	return 0;
}

/* Close the handle (no callback acts meanwhile). */
static void handle_drop(struct nbd_q *nq)
{
	if (nq->sock >= 0)
		epoll_ctl(nq->ep, EPOLL_CTL_DEL, nq->sock, NULL);
	nq->sock = -1;
	nq->events = 0;
	if (nq->h) {
		nq->closing = true;
		nbd_close(nq->h);
		nq->closing = false;
	}
	nq->h = NULL;
	nq->state = CONN_DOWN;
}

/* ---- requests ---- */

static int cmd_done(void *user_data, int *error)
{
	struct nbd_ctx *c = user_data;
	struct nbd_q *nq = c->nq;
	if (nq->closing)
		return 1; /* conn_fail ends the request */
	struct blk_req *req = &nq->q->reqs[c->slot];
	/* a simple reply: the header, and a read's data unless it failed */
	uint64_t used = NBD_REPLY_HDR;
	if (req->op == BLK_OP_READ && !c->flushing && !*error)
		used = c->rlen == NBD_LEN_UNKNOWN ? UINT64_MAX : used + c->rlen;
	nq->inq = nq->inq > used ? nq->inq - used : 0;
	nq->replies++;
	if (*error && !req->err)
		req->err = -*error;
	if (--req->pending == 0)
		nq->fin[nq->nfin++] = c->slot;
	return 1;
}

/*
 * One command: counted in req->pending before the nbd_aio_* call that
 * queues it (CMD: that call), because libnbd may run its completion
 * callback before the call returns: a connection found dead while the
 * command is sent retires every command at once, this one too, and the
 * call still returns its cookie.  Counted after, that callback would
 * take pending to 0 (the slot queued in fin[]) and issue()'s own
 * decrement to 0 again: the request ended twice, q->inflight wrapped,
 * and queue stop waited for ever.  -1: never queued, no callback comes;
 * the request's error.
 */
#define CMD_ISSUE(nq, req, cmd)                                                \
	do {                                                                   \
		(req)->pending++;                                              \
		if ((cmd) < 0)                                                 \
			cmd_refused(nq, req);                                  \
	} while (0)

static void cmd_refused(struct nbd_q *nq, struct blk_req *req)
{
	req->pending--;
	if (!req->err)
		req->err = blk_nbd_err(-EIO);
	vio_log_limited(&nq->q->rl, "%s q%u: NBD: %s", nq->q->bd->name,
			nq->q->idx, blk_nbd_why());
}

static bool wants_flush(const struct nbd_img *img, const struct blk_req *req)
{
	return req->writethrough && !img->can_fua && img->can_flush &&
	       (req->op == BLK_OP_WRITE || req->op == BLK_OP_DISCARD ||
		req->op == BLK_OP_WRITE_ZEROES);
}

/* A request's data commands (or its writethrough FLUSH) to the server. */
static void issue(struct nbd_q *nq, struct blk_req *req)
{
	struct nbd_img *img = nq->img;
	struct nbd_handle *h = nq->h;
	unsigned slot = (unsigned)(req - nq->q->reqs);
	struct nbd_ctx *c = &nq->ctx[slot];
	nbd_completion_callback cb = {.callback = cmd_done, .user_data = c};
	uint32_t fua =
	    req->writethrough && img->can_fua ? LIBNBD_CMD_FLAG_FUA : 0;

	req->pending = 1; /* ours, until every command is sent */
	if (c->flushing || req->op == BLK_OP_FLUSH) {
		CMD_ISSUE(nq, req, nbd_aio_flush(h, cb, 0));
	} else if (req->op == BLK_OP_READ || req->op == BLK_OP_WRITE) {
		uint64_t off = req->offset;
		c->rlen = req->iovcnt == 1 && req->len <= img->max_cmd
			      ? (uint32_t)req->len
			      : NBD_LEN_UNKNOWN;
		for (unsigned i = 0; i < req->iovcnt && !req->err; i++) {
			uint8_t *p = req->iov[i].iov_base;
			size_t left = req->iov[i].iov_len;
			while (left && !req->err) {
				size_t n =
				    left < img->max_cmd ? left : img->max_cmd;
				CMD_ISSUE(
				    nq, req,
				    req->op == BLK_OP_READ
					? nbd_aio_pread(h, p, n, off, cb, 0)
					: nbd_aio_pwrite(h, p, n, off, cb,
							 fua));
				p += n;
				off += n;
				left -= n;
			}
		}
	} else if (req->op == BLK_OP_DISCARD) {
		CMD_ISSUE(nq, req,
			  nbd_aio_trim(h, req->len, req->offset, cb, fua));
	} else {
		uint32_t f = fua | (req->unmap ? 0 : LIBNBD_CMD_FLAG_NO_HOLE);
		CMD_ISSUE(nq, req,
			  nbd_aio_zero(h, req->len, req->offset, cb, f));
	}
	if (--req->pending == 0)
		nq->fin[nq->nfin++] = (uint16_t)slot;
}

/* End the requests whose commands all ended (or start their FLUSH). */
static void fin_run(struct nbd_q *nq)
{
	for (unsigned i = 0; i < nq->nfin; i++) {
		struct blk_req *req = &nq->q->reqs[nq->fin[i]];
		struct nbd_ctx *c = &nq->ctx[nq->fin[i]];
		if (!req->err && !c->flushing && wants_flush(nq->img, req) &&
		    nq->state == CONN_UP) {
			c->flushing = true;
			issue(nq,
			      req); /* may append to fin[]: this loop sees it */
			continue;
		}
		blk_req_end(nq->q, req, req->err);
	}
	nq->nfin = 0;
}

/* ---- the connection ---- */

/* Every request of the queue ends with err: its connection is gone. */
static void conn_fail(struct nbd_q *nq, int err, const char *why)
{
	struct blk_queue *q = nq->q;
	vio_log_limited(&q->rl,
			"%s q%u: NBD connection to %s lost (%s): %u request%s "
			"failed; the next request connects again",
			q->bd->name, q->idx, nq->img->uri, why, q->inflight,
			q->inflight == 1 ? "" : "s");
	/* first what finished before (their own results), then the rest */
	fin_run(nq);
	/* a handshake that failed holds the next attempt back; a lost
	 * connection is made again by the next request at once */
	if (nq->state == CONN_CONNECTING)
		nq->failed = vio_now_ns();
	handle_drop(nq);
	nq->nwait = 0;
	for (unsigned i = 0; i < q->nreqs && q->inflight; i++)
		if (q->reqs[i].state == BLK_SLOT_INFLIGHT)
			blk_req_end(q, &q->reqs[i], err);
}

/* The handshake finished: send what waited for it. */
static void conn_up(struct nbd_q *nq)
{
	nq->state = CONN_UP;
	if (nbd_get_size(nq->h) < (int64_t)nq->img->size)
		vio_log_warn("%s q%u: NBD export %s shrank: requests past its "
			     "end will fail",
			     nq->q->bd->name, nq->q->idx, nq->img->uri);
	for (unsigned i = 0; i < nq->nwait; i++)
		issue(nq, &nq->q->reqs[nq->wait[i]]);
	nq->nwait = 0;
}

/* Start connecting again (asynchronously).  0 or negative errno. */
static int conn_start(struct nbd_q *nq)
{
	char err[160];
	nq->h = blk_nbd_handle_new(err, sizeof(err));
	if (!nq->h)
		return -ENOMEM;
	int r = 0;
	if (nbd_aio_connect_uri(nq->h, nq->img->uri) < 0)
		r = blk_nbd_err(-ECONNREFUSED);
	else
		r = ep_add(nq);
	if (r < 0) {
		vio_log_limited(&nq->q->rl, "%s q%u: NBD connect to %s: %s",
				nq->q->bd->name, nq->q->idx, nq->img->uri,
				blk_nbd_why());
		handle_drop(nq);
		nq->failed = vio_now_ns();
		return r;
	}
	nq->state = CONN_CONNECTING;
	return 0;
}

/* After libnbd ran: finished requests, the handshake, a dead handle. */
static void settle(struct nbd_q *nq)
{
	fin_run(nq);
	struct nbd_handle *h = nq->h;
	if (!h)
		return;
	if (nbd_aio_is_dead(h) || nbd_aio_is_closed(h)) {
		conn_fail(nq, -EIO,
			  nq->why[0] ? nq->why : "closed by the server");
		return;
	}
	if (nq->state == CONN_CONNECTING && !nbd_aio_is_connecting(h)) {
		nq->inq_ok = nbd_get_tls_negotiated(h) != 1;
		conn_up(nq);
		fin_run(nq);
	}
	ep_sync(nq);
}

/*
 * Let libnbd read and write what the socket allows.  Only on a real
 * event: a read notification on a socket with nothing to read moves
 * libnbd from sending a write's payload to awaiting a reply, which may
 * never come (the server waits for the payload).
 */
static void drive(struct nbd_q *nq, bool readable, bool writable)
{
	if (!nq->h)
		return;
	int r = 0;
	nq->why[0] = '\0';
	if (readable &&
	    (nbd_aio_get_direction(nq->h) & LIBNBD_AIO_DIRECTION_READ))
		r = nbd_aio_notify_read(nq->h);
	if (r == 0 && writable &&
	    (nbd_aio_get_direction(nq->h) & LIBNBD_AIO_DIRECTION_WRITE))
		r = nbd_aio_notify_write(nq->h);
	if (r < 0)
		snprintf(nq->why, sizeof(nq->why), "%s", blk_nbd_why());
	settle(nq);
}

/* The oldest request waited longer than the timeout: fail them all. */
static void expire(struct nbd_q *nq)
{
	struct blk_queue *q = nq->q;
	if (!q->inflight)
		return;
	uint64_t now = vio_now_ns(), limit = q->bd->io_timeout_ns;
	for (unsigned i = 0; i < q->nreqs; i++) {
		const struct blk_req *req = &q->reqs[i];
		if (req->state == BLK_SLOT_INFLIGHT &&
		    now - req->tick >= limit) {
			char why[64];
			snprintf(why, sizeof(why), "no answer within %llu s",
				 (unsigned long long)(limit / 1000000000u));
			conn_fail(nq, -ETIMEDOUT, why);
			return;
		}
	}
}

/* The timeout check, while requests are in flight (with a loop). */
static void tick(void *arg)
{
	struct blk_queue *q = arg;
	struct nbd_q *nq = q->io_priv;
	nq->timer_on = false;
	expire(nq);
	blk_queue_event(q); /* push what failed */
	if (q->inflight && nq->loop &&
	    nq->loop->set_timer(nq->loop, nq->period, tick, q) == 0)
		nq->timer_on = true;
}

static void timer_arm(struct nbd_q *nq)
{
	if (nq->loop && !nq->timer_on && nq->q->inflight &&
	    nq->loop->set_timer(nq->loop, nq->period, tick, nq->q) == 0)
		nq->timer_on = true;
}

/* ---- struct blk_io_ops ---- */

static void nbd_submit(struct blk_queue *q, struct blk_req *req)
{
	struct nbd_q *nq = q->io_priv;
	req->tick = vio_now_ns();
	req->err = 0;
	req->pending = 0;
	nq->ctx[req - q->reqs].flushing = false;
	if (req->op == BLK_OP_FLUSH && !nq->img->can_flush) {
		blk_req_end(q, req, 0); /* nothing to make durable */
		return;
	}
	if (nq->state == CONN_DOWN &&
	    (vio_now_ns() - nq->failed < NBD_RETRY_NS || conn_start(nq) < 0)) {
		blk_req_end(q, req, -ENOTCONN);
		return;
	}
	if (nq->state == CONN_UP) {
		/* settle may fail the connection, ending req with the rest:
		 * req is not touched after it */
		issue(nq, req);
		settle(nq);
	} else {
		/* the handshake runs on the socket's events */
		nq->wait[nq->nwait++] = (uint16_t)(req - q->reqs);
	}
	timer_arm(nq);
}

static void nbd_commit(struct blk_queue *q)
{
	(void)q; /* libnbd sends each command as it is issued */
}

static unsigned nbd_reap(struct blk_queue *q, bool wait)
{
	struct nbd_q *nq = q->io_priv;
	fin_run(nq);
	if (!wait || !q->inflight)
		return q->inflight;
	if (nq->h && nq->sock >= 0) {
		struct pollfd p = {.fd = nq->sock,
				   .events = blk_nbd_poll_events(nq->h)};
		uint64_t left = q->bd->io_timeout_ns;
		int ms = NBD_WAIT_MS;
		if (left / 1000000u < (uint64_t)ms)
			ms = (int)(left / 1000000u) + 1;
		if (poll(&p, 1, ms) > 0)
			drive(nq, p.revents & (POLLIN | POLLHUP | POLLERR),
			      p.revents & POLLOUT);
	}
	expire(nq);
	fin_run(nq);
	return q->inflight;
}

/* The socket's unread bytes (SIOCINQ), or 0. */
static uint64_t sock_inq(struct nbd_q *nq)
{
	int n = 0;
	if (ioctl(nq->sock, SIOCINQ, &n) < 0) {
		nq->inq_ok = false;
		return 0;
	}
	return n > 0 ? (uint64_t)n : 0;
}

/*
 * Read every reply the socket holds, then end the requests: the driver
 * gets one completion call per batch.  Only while libnbd waits for
 * replies alone (direction READ: no write's payload half sent, see
 * drive()) and some are owed.  A read notification is given only while
 * the socket surely has bytes (drive() says why): nq->inq, a lower
 * bound of its unread bytes, is set from SIOCINQ and lowered by each
 * reply's size (cmd_done: a simple reply is its header and a read's
 * data; a notification that ends no reply read an unknown part of one:
 * bound 0); at 0, SIOCINQ is asked again, and a 0 ends the batch.  So a
 * batch of k replies costs about two SIOCINQ calls, not k loop turns.
 * With TLS the socket's bytes are records, not replies: not used.
 * false: not applicable (nothing read).
 */
static bool drain(struct nbd_q *nq)
{
	struct nbd_handle *h = nq->h;
	if (!h || nq->sock < 0 || !nq->inq_ok ||
	    nbd_aio_get_direction(h) != LIBNBD_AIO_DIRECTION_READ ||
	    nbd_aio_in_flight(h) <= 0 || !(nq->inq = sock_inq(nq)))
		return false;
	nq->why[0] = '\0';
	int r = 0;
	while (nq->inq) {
		unsigned before = nq->replies;
		r = nbd_aio_notify_read(h);
		if (r < 0) {
			snprintf(nq->why, sizeof(nq->why), "%s", blk_nbd_why());
			break;
		}
		if (nq->replies == before)
			nq->inq = 0; /* part of a reply: how much is unknown */
		if (nbd_aio_get_direction(h) != LIBNBD_AIO_DIRECTION_READ ||
		    nbd_aio_in_flight(h) <= 0)
			break;
		if (!nq->inq)
			nq->inq = sock_inq(nq);
	}
	nq->inq = 0;
	settle(nq);
	return true;
}

/* The loop's callback: the socket is ready as libnbd waits for it. */
static void nbd_event(void *arg)
{
	struct blk_queue *q = arg;
	struct nbd_q *nq = q->io_priv;
	struct epoll_event ev;
	/* else (a write to finish, a handshake, a hang-up: SIOCINQ says 0)
	 * ep says which way the socket is ready */
	if (!drain(nq) && epoll_wait(nq->ep, &ev, 1, 0) == 1)
		drive(nq, ev.events & (EPOLLIN | EPOLLHUP | EPOLLERR),
		      ev.events & EPOLLOUT);
	blk_queue_event(q);
	timer_arm(nq);
}

static int nbd_attach(struct blk_queue *q, struct vio_loop *loop)
{
	struct nbd_q *nq = q->io_priv;
	int r = loop->add_fd(loop, nq->ep, 0, nbd_event, q);
	if (r < 0)
		return r;
	nq->loop = loop;
	timer_arm(nq);
	return 0;
}

static void nbd_detach(struct blk_queue *q)
{
	struct nbd_q *nq = q->io_priv;
	if (!nq->loop)
		return;
	nq->loop->cancel_timer(nq->loop, tick, q);
	nq->loop->del_fd(nq->loop, nq->ep);
	nq->loop = NULL;
	nq->timer_on = false;
}

static void nbd_fini(struct blk_queue *q)
{
	struct nbd_q *nq = q->io_priv;
	if (!nq)
		return;
	handle_drop(nq);
	if (nq->ep >= 0)
		close(nq->ep);
	free(nq->ctx);
	free(nq->fin);
	free(nq->wait);
	free(nq);
	q->io_priv = NULL;
}

static int nbd_init(struct blk_queue *q, unsigned depth)
{
	struct vio_blk_device *bd = q->bd;
	struct nbd_img *img = bd->img;
	struct nbd_q *nq = calloc(1, sizeof(*nq));
	if (!nq)
		return -ENOMEM;
	(void)depth; /* one slot per ring entry: q->nreqs */
	q->io_priv = nq;
	nq->q = q;
	nq->img = img;
	nq->sock = -1;
	nq->period = bd->io_timeout_ns / 4 < 1000000000u ? bd->io_timeout_ns / 4
							 : 1000000000u;
	if (nq->period < 10000000u)
		nq->period = 10000000u;
	nq->ep = epoll_create1(EPOLL_CLOEXEC);
	nq->ctx = calloc(q->nreqs, sizeof(*nq->ctx));
	nq->fin = calloc(2u * q->nreqs, sizeof(*nq->fin));
	nq->wait = calloc(q->nreqs, sizeof(*nq->wait));
	int r = -ENOMEM;
	if (nq->ep < 0 || !nq->ctx || !nq->fin || !nq->wait) {
		r = nq->ep < 0 ? -errno : -ENOMEM;
		goto fail;
	}
	for (unsigned i = 0; i < q->nreqs; i++) {
		nq->ctx[i].nq = nq;
		nq->ctx[i].slot = (uint16_t)i;
	}
	if (img->spare) {
		nq->h = img->spare;
		img->spare = NULL;
	} else {
		char err[200];
		nq->h = blk_nbd_connect_sync(img->uri, bd->io_timeout_ns, err,
					     sizeof(err));
		if (!nq->h) {
			r = errno ? -errno : -EIO;
			vio_log_err("%s q%u: NBD connect to %s: %s", bd->name,
				    q->idx, img->uri, err);
			goto fail;
		}
	}
	r = ep_add(nq);
	if (r < 0)
		goto fail;
	nq->state = CONN_UP;
	return 0;
fail:
	nbd_fini(q);
	return r;
}

const struct blk_io_ops blk_nbd_io = {
    .name = "nbd",
    .init = nbd_init,
    .fini = nbd_fini,
    .submit = nbd_submit,
    .commit = nbd_commit,
    .reap = nbd_reap,
    .attach = nbd_attach,
    .detach = nbd_detach,
};
