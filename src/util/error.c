/* SPDX-License-Identifier: MIT */
/*
 * vio_strerror (vio/error.h): vio's wording for the errnos its headers
 * give a meaning, the system's for the rest.  Only constant strings are
 * returned, so any thread may call it.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include <vio/error.h>

static const struct {
	int err;
	const char *text;
} vio_errors[] = {
    {EPROTO, "peer broke the protocol"},
    {EIO, "I/O error, or the queue is broken (a peer violated the ring "
	  "protocol or the device needs a reset)"},
    {ENOTCONN, "backend gone (the connection ended or it stopped "
	       "answering)"},
    {ECONNRESET, "connection ended (the peer left or sent a bad message)"},
    {ECANCELED, "queue stopped (a reset, a disable or the driver's "
		"removal)"},
    {ENXIO, "no such queue (the device has fewer queues)"},
    {ERANGE, "offset or length outside the device"},
    {ENODEV, "no matching driver, or not a device this call serves"},
    {ETIMEDOUT, "the peer did not answer in time"},
    {EDEADLK, "called from a completion callback of the same queue"},
    {EOPNOTSUPP, "the device does not offer this feature"},
    {EROFS, "the device is read-only"},
    {EINVAL, "invalid argument, or not allowed in the device's current "
	     "state"},
};

const char *vio_strerror(int err)
{
	if (err == 0)
		return "success";
	/* INT_MIN has no positive counterpart: no errno anyway */
	int e = err == INT_MIN ? 0 : err < 0 ? -err : err;
	for (unsigned i = 0; i < sizeof(vio_errors) / sizeof(vio_errors[0]);
	     i++)
		if (vio_errors[i].err == e)
			return vio_errors[i].text;
#if defined(__GLIBC__) &&                                                      \
    (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
	/* constant, unlike strerror's "Unknown error N" buffer */
	const char *d = e ? strerrordesc_np(e) : NULL;
	return d ? d : "unknown error";
#else
	/* musl and others: strerror returns constant table strings */
	return e ? strerror(e) : "unknown error";
#endif
}
