/* SPDX-License-Identifier: MIT */
/*
 * vio/error.h - what vio's error numbers mean.
 *
 * Every vio action returns 0 or a negative errno (constructors: NULL with
 * errno set).  vio gives a few errnos a meaning of its own, the same in
 * every header; vio_strerror() words them for a person:
 *
 *   -EPROTO      the peer broke the protocol (a malformed vhost-user
 *                message, a reply that does not match the request)
 *   -EIO         an I/O error the device reported, or the queue is broken:
 *                a peer violated the ring protocol, or the device needs a
 *                reset; a broken queue fails everything until a reset
 *   -ENOTCONN    the backend is gone (its connection ended or it stopped
 *                answering)
 *   -ECONNRESET  the connection ended (the peer left, or sent a message
 *                that ended it); the backend takes the next one
 *   -ECANCELED   the queue was stopped while waiting (a reset, a
 *                disable, the driver's removal)
 *   -ENXIO       no such queue: the index is not below the number of
 *                queues the device has (or the device gave it no size)
 *   -ERANGE      offset or length outside the device (past a disk's
 *                capacity)
 *   -ENODEV      no driver matches the device, the device lacks what
 *                vio requires (VERSION_1), or it is not bound to the
 *                driver the call belongs to
 *   -ETIMEDOUT   the peer did not answer or complete in time
 *   -EDEADLK     called from a completion callback of the same queue
 *   -EOPNOTSUPP  the device does not offer the feature the request needs
 *   -EROFS       the device is read-only
 *   -EINVAL      a bad argument, or a call the device's state does not
 *                allow now (a queue before FEATURES_OK, an illegal
 *                status transition)
 *
 * Any other value is the system's errno, passed through (vio_strerror
 * falls back to strerror's text).
 */
#ifndef VIO_ERROR_H
#define VIO_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

/*
 * A description of err, a negative errno as vio returns it (a positive
 * errno is taken as its negation; 0 gives "success").  vio's own wording
 * for the values above, else the system's.  Thread-safe; the string is
 * constant and never freed.
 */
const char *vio_strerror(int err);

#ifdef __cplusplus
}
#endif
#endif
