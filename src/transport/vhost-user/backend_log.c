/* SPDX-License-Identifier: MIT */
/*
 * Dirty-page logging for live migration (vhost-user.rst, "Migration"):
 * SET_LOG_BASE, SET_LOG_FD.  Not offered yet (VU_PF_LOG is 0).
 */
#include <errno.h>

#include "transport/vhost-user/backend_internal.h"

int vio_vu_h_set_log_base(struct vio_backend *b, struct vio_vu_msg *m)
{
	(void)m;
	vio_log_limited(&b->rl,
			"vhost-user: connection %lu: SET_LOG_BASE: dirty "
			"logging is not supported",
			b->conns);
	return -EPROTO;
}

int vio_vu_h_set_log_fd(struct vio_backend *b, struct vio_vu_msg *m)
{
	(void)m;
	vio_log_limited(&b->rl,
			"vhost-user: connection %lu: SET_LOG_FD: dirty "
			"logging is not supported",
			b->conns);
	return -EPROTO;
}
