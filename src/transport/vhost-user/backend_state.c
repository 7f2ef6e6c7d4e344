/* SPDX-License-Identifier: MIT */
/*
 * Device state transfer (vhost-user.rst, "Migrating back-end state"):
 * SET_DEVICE_STATE_FD, CHECK_DEVICE_STATE.  Not offered yet (VU_PF_STATE
 * is 0).
 */
#include <errno.h>

#include "transport/vhost-user/backend_internal.h"

int vio_vu_h_set_device_state_fd(struct vio_backend *b, struct vio_vu_msg *m)
{
	(void)m;
	vio_log_limited(&b->rl,
			"vhost-user: connection %lu: SET_DEVICE_STATE_FD: "
			"device state transfer is not supported",
			b->conns);
	return -EPROTO;
}

int vio_vu_h_check_device_state(struct vio_backend *b, struct vio_vu_msg *m)
{
	(void)m;
	vio_log_limited(&b->rl,
			"vhost-user: connection %lu: CHECK_DEVICE_STATE: "
			"device state transfer is not supported",
			b->conns);
	return -EPROTO;
}
