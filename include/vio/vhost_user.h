/* SPDX-License-Identifier: MIT */
/*
 * vio/vhost_user.h - the vhost-user transport (QEMU docs/interop/
 * vhost-user.rst): a Unix socket for control, memfd memory passed with
 * SCM_RIGHTS, eventfds for kicks and calls.
 *
 * Backend (device side): serves one struct vio_device to one frontend at a
 * time (QEMU, Cloud Hypervisor, DPDK virtio-user, vio's own frontend).
 *
 *     struct vio_backend_opts c = {0};
 *     vio_run_backend_hooks(&c, busy_poll);        // vio/run.h workers
 *     struct vio_backend *b = vio_backend_new(dev, &c);
 *     vio_backend_listen(b, "/run/disk.sock");     // or _connect (client)
 *     for (;;) { poll(vio_backend_fd(b)); vio_backend_dispatch(b); }
 *
 * The backend owns no thread: it asks its hooks to start serving a queue
 * on a worker (given the queue's kick eventfd), to replace the kick fd,
 * and to stop it, synchronously, before it touches that queue or guest
 * memory again.
 *
 * Threads (device side; vio/device.h "Threads" says what a device may
 * rely on): the thread that calls vio_backend_dispatch() is the control
 * thread.  Every message is handled there, so the device's status, reset,
 * config_writable and config_write ops and the queue_start/queue_stop
 * hooks run on it; vio_backend_free() does the same work on its caller's
 * thread.  Call dispatch from one thread at a time, and not concurrently
 * with vio_backend_free.  vio_backend_queue_kick(), hence the device's
 * kick for that queue, and its queue_start/queue_stop, run on the worker
 * a hook gave the queue (vio/run.h: a group of workers made once, queue i
 * on worker i % N; a stop and start or a kick fd change keeps it).
 *
 * Mapping to the model: SET_FEATURES takes the device through ACKNOWLEDGE,
 * DRIVER, the features and FEATURES_OK.  DRIVER_OK: with the STATUS
 * protocol feature negotiated and used (the frontend has sent a
 * SET_STATUS), only the frontend's SET_STATUS sets it, and no ring starts
 * (no buffer is used) before it (VIRTIO 1.x 3.1.1); without STATUS, or
 * when the frontend never sends SET_STATUS (QEMU 7.2's vhost-user-rng),
 * vhost-user has no handshake and the first ring that starts sets it.
 * SET_STATUS 0 resets; FAILED is applied as written.  A disconnect stops every
 * queue, resets the device (its config space back to the device's own) and
 * unmaps all memory.
 *
 * SET_CONFIG writes only the fields the device type declares writable
 * (vio_device_ops.config_writable); anything else ends the connection with a
 * log line.  A queue that breaks (a protocol violation in its ring) sets
 * DEVICE_NEEDS_RESET, is logged with its index and reason, and signals the
 * queue's error eventfd (SET_VRING_ERR) when the frontend gave one.  Kick,
 * call and error fds must be eventfds (else the connection ends); they are
 * made non-blocking.
 *
 * Config changes (vio_device_config_update, e.g. vio_blk_device_resize):
 * with the protocol features BACKEND_REQ and CONFIG negotiated and the
 * frontend's socket given (SET_BACKEND_REQ_FD, a Unix stream socket, else
 * the connection ends), the backend sends BACKEND_CONFIG_CHANGE_MSG on it,
 * from whatever thread made the change, never blocking (a frontend that
 * does not read it misses the message).  With REPLY_ACK it asks for an
 * ack and waits for it, at most 1 s, unless it runs on the control thread
 * (the frontend answers only after its GET_CONFIG, which that thread
 * serves): then the ack is collected before the next change.  A frontend
 * that misbehaves on that channel loses it; the connection goes on.
 */
#ifndef VIO_VHOST_USER_H
#define VIO_VHOST_USER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vio/device.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- backend ---- */

struct vio_backend;

struct vio_backend_opts {
	/* memory slots offered with CONFIGURE_MEM_SLOTS; 0 = 509 */
	unsigned max_mem_slots;
	/* socket file mode when listening; 0 = 0600 */
	unsigned socket_mode;
	/*
	 * Start serving queue idx (the vq exists): on the thread that will
	 * run its kicks, vio_device_queue_start(vio_backend_device(b), idx,
	 * loop) (loop: that thread's event loop, or NULL), then
	 * vio_backend_queue_kick(b, idx) once, then whenever kick_fd is
	 * readable (after draining it), and again while it returns true.
	 * Return a handle, or NULL on failure (the queue does not start).
	 * The queue is stopped (queue_stop) before the rings or the memory
	 * change, at a reset and at the end of the connection; not for a
	 * new call or error fd, and not for a new kick fd when
	 * queue_kick_fd takes it.  vio/run.h's hooks (vio_run_hooks) do all
	 * of this on their workers.
	 */
	void *(*queue_start)(void *opaque, struct vio_backend *b, unsigned idx,
			     int kick_fd);
	/* Stop that queue: call vio_device_queue_stop(dev, idx) on the
	 * queue's thread (the device completes or hands back what it
	 * holds), and return only once no kick of it runs any more; the
	 * backend then reads the ring position and frees the vq. */
	void (*queue_stop)(void *opaque, void *handle);
	/* Optional: the frontend sent a new kick fd for a running queue.
	 * Return 0 once the worker waits on kick_fd and no longer on the old
	 * one (the backend closes that then), having kicked the queue once
	 * (a kick may have gone to the old fd); negative errno to have the
	 * queue stopped and started again instead.  NULL: stop and start. */
	int (*queue_kick_fd)(void *opaque, void *handle, int kick_fd);
	void *opaque;
};

/* dev is not owned and must outlive b. */
struct vio_backend *vio_backend_new(struct vio_device *dev,
				    const struct vio_backend_opts *cfg);
/* Ends any connection (queues stopped, device reset), closes sockets,
 * removes the socket file it created. */
void vio_backend_free(struct vio_backend *b);
/* Listen on a Unix socket.  -EADDRINUSE if a live listener has it; a
 * stale socket file is replaced. */
VIO_MUST_CHECK int vio_backend_listen(struct vio_backend *b, const char *path);
/*
 * Listen on fd, a socket that is already bound and listening (systemd
 * socket activation, sd_listen_fds: fd 3 and up).  It must be an AF_UNIX
 * SOCK_STREAM socket in the listening state: else -ENOTSOCK, -EAFNOSUPPORT,
 * -EPROTOTYPE or -EINVAL (not listening), and fd stays the caller's.  On
 * success the backend owns fd (sets FD_CLOEXEC, closes it at free) and
 * removes no socket file at free: whoever made it does.  -EBUSY if b
 * already listens or is connected.
 */
VIO_MUST_CHECK int vio_backend_listen_fd(struct vio_backend *b, int fd);
/* Client mode: connect to a frontend listening at path. */
VIO_MUST_CHECK int vio_backend_connect(struct vio_backend *b, const char *path);
/* The fd to wait on (readable): the connection, else the listener. */
int vio_backend_fd(const struct vio_backend *b);
bool vio_backend_connected(const struct vio_backend *b);
/* Connections accepted (or made, client mode) so far; the current one's
 * number, which the backend's log lines carry ("connection N: ...").
 * Control thread. */
unsigned long vio_backend_connections(const struct vio_backend *b);
/*
 * Accept a pending connection, or receive and handle one message.
 * Returns 0; -ECONNRESET when the connection ended (peer gone or a bad
 * message, which is logged); the backend is then ready for the next one
 * (listening) or idle (client mode); other negative errno on local errors.
 */
int vio_backend_dispatch(struct vio_backend *b);
/* Worker entry: queue idx was kicked.  Does a bounded amount of work;
 * true if chains are still available (call again). */
bool vio_backend_queue_kick(struct vio_backend *b, unsigned idx);
/* The device b serves (for the hooks: vio_device_queue_start/stop). */
struct vio_device *vio_backend_device(const struct vio_backend *b);

/* ---- frontend (driver side) ----
 *
 * Connects to a backend's socket (vio serve, qemu-storage-daemon, any
 * vhost-user device) and presents it as a struct vio_drvdev, so that the
 * model's drivers (vio/driver.h, vio/bus.h) run over it unchanged.
 * vhost-user does not say which device type a backend is: the caller
 * names it (device_id), and the driver's probe checks that the config
 * space and features make sense for that type.
 *
 * Threads: the data path (the vq's notify, vio_drvdev_wait_used, the call
 * fd) may run on several threads at once, and concurrently with control
 * (reset, queue setup, config, status, vio_bus_remove) on another.  Each
 * queue's kick and call eventfds are made at connect and closed only by
 * vio_frontend_free, so a kick never lands on an fd number that a reset
 * freed and something else reused; a notify on a stopped queue writes
 * nothing.  A wait on a queue that is stopped (reset, disable, removal),
 * or that a stop reaches while it sleeps, returns -ECANCELED at once;
 * on a dead frontend -ENOTCONN.  What the frontend cannot guard is the
 * vq itself: vio_bus_remove frees it (after the driver's remove), so the
 * driver's remove must stop and join its I/O threads before returning
 * (their waits end with -ECANCELED by then), and vio_frontend_free must
 * come after every data-path call has returned.
 */

struct vio_frontend;

struct vio_frontend_opts {
	/* The driver's memory (vio/mem.h); every region is shared with the
	 * backend.  Not owned; must outlive the frontend. */
	struct vio_mem *mem;
	/* The virtio device id the backend serves (VIRTIO_ID_BLOCK, ...). */
	uint32_t device_id;
	/* Queues to offer the driver; 0: what the backend has (MQ), else 1. */
	unsigned num_queues;
	/* Bytes of config space (every GET_CONFIG asks for this many; reads
	 * beyond fail with -EINVAL).  0: the bound driver's
	 * vio_driver.config_size (the device type declares it), and if it
	 * has none, each read asks for bytes 0 up to its end.  The
	 * transport knows no device type's layout.  At most 256. */
	unsigned config_size;
	/* Connect timeout in ms (a backend still starting); 0: no retry. */
	int connect_timeout_ms;
	/*
	 * The largest ring per queue; 0: 256.  At most VIO_VQ_MAX_SIZE.
	 * vhost-user has no message that tells a backend's maximum, so with
	 * REPLY_ACK the connect sends each queue's SET_VRING_NUM with
	 * NEED_REPLY and halves the size on each refusal (connecting again
	 * if the backend ends the connection after refusing; vio's
	 * backend keeps it): the driver is offered the largest size
	 * the backend took (vio_drvdev_queue_max_size).  Without REPLY_ACK
	 * the size is used as it is; a backend that does not take it ends
	 * the connection at queue setup, and the error says to set
	 * queue_size to the backend's maximum.
	 */
	unsigned queue_size;
	/* How long to wait for each reply, in ms; 0: 10000.  A backend that
	 * does not answer in time is treated as gone. */
	int reply_timeout_ms;
	/* Protocol features (1 << VHOST_USER_PROTOCOL_F_*: MQ 0, REPLY_ACK
	 * 3, BACKEND_REQ 5, CONFIG 9, RESET_DEVICE 13, CONFIGURE_MEM_SLOTS
	 * 15, STATUS 16) not to negotiate even when offered: tests, backend
	 * workarounds. */
	uint64_t protocol_features_off;
	/*
	 * Reconnect (docs/vhost-user-frontend.md "Reconnect"): when the
	 * backend goes away (its socket hangs up, a message fails), wait up
	 * to this many ms for one to listen at the path again, redo the
	 * handshake (the features negotiated before must all be offered
	 * again, else the frontend fails for good), share the same memory
	 * and give it every ring with the buffers still in flight available
	 * again: they are redone, and the driver sees only completions.
	 * Meanwhile kicks and waits block (up to this wait), and after it
	 * everything fails with -ENOTCONN.  Requests must be idempotent
	 * (blk's are).  The rings are split: with a wait set, RING_PACKED
	 * is not offered to the driver (a packed ring's descriptors are
	 * overwritten by used elements, so an unused buffer cannot be
	 * handed to a new backend).  0: no reconnect (a lost backend is
	 * final; vio_frontend_alive() turns false).
	 */
	int reconnect_ms;
	/* Listen at the path (mode 0600; a socket file there is replaced,
	 * and removed at free) and take the backend that connects to it
	 * (vio serve --client, the role QEMU's server=on plays), instead of
	 * connecting.  connect_timeout_ms bounds the wait for it (0: no
	 * limit); with reconnect_ms, a new one is accepted after a loss. */
	bool listen;
};

/*
 * Connect and do the vhost-user handshake (features, protocol features,
 * owner, memory).  NULL on failure with errno set and a one-line reason
 * in err ("nothing listens at PATH", "backend closed the connection", ...).
 */
struct vio_frontend *vio_frontend_connect(const char *path,
					  const struct vio_frontend_opts *cfg,
					  char *err, size_t errlen);
/* The device, for vio_bus_add() or direct use.  Owned by the frontend. */
struct vio_drvdev *vio_frontend_vdev(struct vio_frontend *f);
/* false once the backend went away or broke the protocol (the vdev's
 * queues then fail: waits return -ENOTCONN instead of hanging). */
bool vio_frontend_alive(const struct vio_frontend *f);
/*
 * The control socket, to notice a backend that goes away while nothing
 * is in flight: poll it for POLLRDHUP (a backend never speaks first, so
 * POLLIN works too); when it fires and vio_frontend_alive() is false,
 * the device is gone: vio_bus_remove() its vdev (from the thread that
 * owns the bus; the I/O threads see -ENOTCONN or -ECANCELED and the
 * driver's remove joins them), then vio_frontend_free().  A new
 * vio_frontend_connect() (and vio_bus_add) brings it back once a backend
 * listens again.
 */
int vio_frontend_fd(const struct vio_frontend *f);
/* Why the frontend died ("" while alive). */
const char *vio_frontend_error(const struct vio_frontend *f);
/*
 * The backend channel (protocol feature BACKEND_REQ, negotiated when the
 * backend offers it): the backend says on it that its config space
 * changed (a disk was resized), and the bound driver's config_changed
 * runs (vio/driver.h; blk reads its capacity again).  The frontend owns
 * no thread: the channel is served by a thread that waits for used
 * buffers (vio_drvdev_wait_used, one waiter at a time), or on demand:
 * vio_frontend_backend_fd() is readable when the backend asked something
 * (-1: no channel, e.g. the backend does not offer it), and
 * vio_frontend_serve_backend() handles what is there without blocking:
 * the driver's config_changed runs on the caller's thread (not
 * concurrently with vio_bus_remove of the vdev), then the ack goes back
 * if the backend asked for one.  Returns how many requests were handled
 * (0: none), or negative errno: the channel broke (the backend sent
 * something malformed or closed it; logged) and is gone, the device
 * itself goes on.
 */
int vio_frontend_backend_fd(const struct vio_frontend *f);
int vio_frontend_serve_backend(struct vio_frontend *f);
/*
 * Dirty-page logging (live migration's, measured by vio blk bench
 * --dirty-log): on: give the backend a log (a memfd bitmap, one bit per
 * 4 KiB page of device address, sized for the memory shared and grown
 * with it; SET_LOG_BASE) and turn VHOST_F_LOG_ALL on, at once if the
 * features went out, else with them; it stays on across a reconnect.
 * Off: VHOST_F_LOG_ALL off; the log keeps its bits.  Any thread.  0;
 * -EOPNOTSUPP: the backend offers no LOG_SHMFD or no VHOST_F_LOG_ALL;
 * -ENOTCONN; -EIO: the backend refused the log.
 */
int vio_frontend_dirty_log(struct vio_frontend *f, bool on);
/* Pages the backend marked in the log so far (0: no log). */
uint64_t vio_frontend_dirty_pages(struct vio_frontend *f);
/* Closes the connection, the queues' fds, and frees the vdev (remove it
 * from its bus first; no notify or wait may still run). */
void vio_frontend_free(struct vio_frontend *f);

/*
 * Moving a running device to another backend (docs/device-state.md):
 * the device state transfer of vhost-user (protocol feature
 * DEVICE_STATE, negotiated when the backend offers it; vio serve does).
 * The driver goes on as if nothing happened: requests it has in flight
 * are completed once, by the old backend or the new one.
 */
struct vio_frontend_move_opts {
	/* Wait this long for the new backend to listen; 0: 5000 ms. */
	int connect_timeout_ms;
	/* Optional: sees the state blob saved by the old backend before
	 * the new one loads it (*len bytes in blob, which has room for
	 * cap); may keep a copy or change it (tests).  0 to go on, or
	 * negative errno to call the move off. */
	int (*state_filter)(void *arg, uint8_t *blob, size_t *len, size_t cap);
	void *arg;
};
/*
 * Move f's device to the backend listening at path: connect to it (and
 * check it offers the features the driver uses and DEVICE_STATE), stop
 * every ring on the old backend (it completes what it took), save its
 * state, give the new one the handshake, the memory, the state (which it
 * checks) and the rings at the same positions, then close the old
 * connection.  Any thread (it takes the frontend's control lock; the
 * driver's data path keeps running, its kicks wait in the kick fds).
 * 0: the device is at path (a later reconnect goes there too).
 * Negative errno with a one-line reason in err: the move did not happen
 * and the device carries on with the old backend (-EOPNOTSUPP: no
 * DEVICE_STATE or a listening frontend; -ENOENT/-ECONNREFUSED: nothing
 * at path; -EPROTO: the new backend lacks features; -EIO: a backend
 * refused the state), except -ENOTCONN: the old backend was lost (the
 * frontend is dead, or reconnecting).
 */
int vio_frontend_move(struct vio_frontend *f, const char *path,
		      const struct vio_frontend_move_opts *opts, char *err,
		      size_t errlen);

struct vio_bus;
/*
 * Connect to the backend at path (as vio_frontend_connect; the older
 * "vhost-user:PATH" form is accepted too) and add the device to bus: the
 * driver registered for cfg->device_id probes it.  NULL with errno and a
 * one-line reason in err if the connection or the probe fails (nothing
 * stays on the bus then).  Free: vio_bus_remove(bus,
 * vio_frontend_vdev(f)), vio_frontend_free(f).
 */
struct vio_frontend *vio_bus_connect(struct vio_bus *bus, const char *path,
				     const struct vio_frontend_opts *cfg,
				     char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
