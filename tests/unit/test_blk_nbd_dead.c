/* SPDX-License-Identifier: MIT */
/*
 * The NBD backend when the server is gone before a request is sent: an
 * nbdkit (memory, 1 MiB) serves a vio_blk_device kicked without a loop;
 * after a write and a read that work, nbdkit is SIGKILLed and the next
 * write is issued on the dead connection.  libnbd finds it dead while
 * sending the command and retires the command, calling its completion
 * callback before nbd_aio_pwrite returns (with the cookie).  The request
 * must end once, with IOERR: counted twice it wrapped the queue's count
 * of requests in flight, and the kick (which waits for everything in
 * flight without a loop) spun for ever.  SIGALRM bounds the test.
 *
 * SKIP (exit 77) without nbdkit or an NBD build.
 */
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>

#include "blk_env.h"

extern char **environ;

static void on_alarm(int sig)
{
	(void)sig;
	static const char m[] = "test_blk_nbd_dead: a request on a dead NBD "
				"connection did not end within 30 s\n";
	if (write(2, m, sizeof(m) - 1) < 0)
		_exit(1);
	_exit(1);
}

/* nbdkit on sock, listening once pidf exists (10 s); its PID or -1. */
static pid_t nbdkit_start(const char *sock, const char *pidf)
{
	char *argv[] = {"nbdkit",     "-f",	"-U", (char *)sock, "-P",
			(char *)pidf, "memory", "1M", NULL};
	pid_t pid;
	if (posix_spawnp(&pid, "nbdkit", NULL, NULL, argv, environ) != 0)
		return -1;
	for (int i = 0; i < 1000; i++) {
		if (access(pidf, F_OK) == 0)
			return pid;
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return -1;
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return -1;
}

int main(void)
{
#ifndef VIO_HAVE_NBD
	printf("SKIP: vio was built without libnbd\n");
	return 77;
#else
	signal(SIGPIPE, SIG_IGN);
	blk_tmpdir_setup();
	char sock[220], pidf[220], uri[260];
	snprintf(sock, sizeof(sock), "%.200s/nbd.sock", tmpdir);
	snprintf(pidf, sizeof(pidf), "%.200s/nbd.pid", tmpdir);
	snprintf(uri, sizeof(uri), "nbd+unix:///?socket=%s", sock);
	pid_t nbd = nbdkit_start(sock, pidf);
	if (nbd < 0) {
		printf("SKIP: nbdkit does not start here (Debian: nbdkit)\n");
		return 77;
	}

	struct tenv e;
	struct opts o = {.image = uri};
	REQUIRE(env_open(&e, &o));
	static uint8_t data[4096];
	fill_pattern(data, sizeof(data), 7);
	write_sectors(&e, 0, 8, data, sizeof(data), 2, VIRTIO_BLK_S_OK);
	read_sectors(&e, 0, 8, data, sizeof(data), 3);

	/* the server gone; the device has not looked at its socket since */
	kill(nbd, SIGKILL);
	waitpid(nbd, NULL, 0);
	signal(SIGALRM, on_alarm);
	alarm(30);
	write_sectors(&e, 0, 16, data, sizeof(data), 1, VIRTIO_BLK_S_IOERR);
	/* and the next: no server to connect to, an error at once */
	write_sectors(&e, 0, 24, data, sizeof(data), 1, VIRTIO_BLK_S_IOERR);
	env_close(&e);
	alarm(0);
	return test_result("blk_nbd_dead");
#endif
}
