/* SPDX-License-Identifier: MIT */
/*
 * vio serve net / vio serve switch: virtio-net devices (vio/net.h) over
 * vhost-user, served like blk (tools/serve_common.h: the same sockets,
 * --client reconnect, readiness, signals).
 *
 * net: one device on one socket, its frames going to one port (--port:
 * echo, sink[:check], gen, tap:NAME).  The workers (vio/run.h) take queues in
 * groups of two (vio_run_opts.group = 2): a receiveq and its transmitq,
 * which is a queue pair, run on one worker, as the port contract requires
 * (vio/net.h); by default one worker per pair, at most one per CPU.
 *
 * switch: one learning switch (vio_net_switch), one device per --socket,
 * each on a switch port of its own, and every queue of every backend on
 * ONE worker: the switch copies frames ring to ring between devices and
 * requires that all of them run on one thread.
 *
 * Counters: at SIGINT/SIGTERM (after the queues stopped: final figures),
 * on SIGUSR1 (the service goes on) and every --stats-interval seconds,
 * the device's counters (vio_net_device_stats: per pair and the total)
 * and the port's (vio_net_port_stats, vio_net_switch_stats) go to stdout,
 * as one JSON line with --json (what the interop tests read), else as
 * readable lines.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <vio/net.h>
#include <vio/run.h>
#include <vio/vhost_user.h>

#include "net.h"
#include "serve_common.h"
#include "serve_net.h"
#include "util.h"

/* ---- counters ---- */

struct net_srv {
	const struct serve_net_opts *o;
	struct serve_sock socks[MAX_SOCKETS];
	struct vio_net_device *nd[MAX_SOCKETS];
	unsigned n;		   /* devices made */
	struct vio_net_port *port; /* net */
	struct vio_net_switch *sw; /* switch */
};

static void json_dev(FILE *f, const struct vio_net_stats *s)
{
	fprintf(f,
		"\"rx_packets\":%" PRIu64 ",\"rx_bytes\":%" PRIu64
		",\"rx_no_buffer\":%" PRIu64 ",\"rx_dropped\":%" PRIu64
		",\"rx_filtered\":%" PRIu64 ",\"tx_packets\":%" PRIu64
		",\"tx_bytes\":%" PRIu64 ",\"tx_dropped\":%" PRIu64
		",\"tx_errors\":%" PRIu64 ",\"ctrl_ok\":%" PRIu64
		",\"ctrl_err\":%" PRIu64,
		s->rx_packets, s->rx_bytes, s->rx_no_buffer, s->rx_dropped,
		s->rx_filtered, s->tx_packets, s->tx_bytes, s->tx_dropped,
		s->tx_errors, s->ctrl_ok, s->ctrl_err);
}

static void text_dev(FILE *f, const char *who, const struct vio_net_stats *s)
{
	fprintf(f,
		"%s: to driver %" PRIu64 " packets %" PRIu64 " bytes (%" PRIu64
		" no buffer, %" PRIu64 " dropped, %" PRIu64
		" filtered); from driver %" PRIu64 " packets %" PRIu64
		" bytes (%" PRIu64 " dropped, %" PRIu64 " errors)\n",
		who, s->rx_packets, s->rx_bytes, s->rx_no_buffer, s->rx_dropped,
		s->rx_filtered, s->tx_packets, s->tx_bytes, s->tx_dropped,
		s->tx_errors);
}

static void stats_net(FILE *f, const struct net_srv *v, const char *event)
{
	const struct serve_sock *s = &v->socks[0];
	struct vio_net_device *nd = v->nd[0];
	unsigned pairs = vio_net_device_queue_pairs(nd);
	struct vio_net_stats t = {0};
	vio_net_device_stats(nd, VIO_NET_MAX_PAIRS, &t);
	struct vio_net_port_stats ps;
	bool has_ps = vio_net_port_stats(v->port, &ps) == 0;
	char mac[18];
	uint8_t m[VIO_NET_ETH_ALEN];
	vio_net_device_mac(nd, m);
	net_mac_str(m, mac);
	if (v->o->json) {
		fprintf(f,
			"{\"event\":\"%s\",\"device\":\"net\",\"pid\":%d,"
			"\"socket\":\"%s\",\"mac\":\"%s\",\"connections\":%lu,"
			"\"connected\":%s,\"pairs\":[",
			event, (int)getpid(), s->where, mac, s->conns,
			s->be && vio_backend_connected(s->be) ? "true"
							      : "false");
		for (unsigned q = 0; q < pairs; q++) {
			struct vio_net_stats ss = {0};
			vio_net_device_stats(nd, q, &ss);
			fprintf(f, "%s{\"pair\":%u,", q ? "," : "", q);
			json_dev(f, &ss);
			fputc('}', f);
		}
		fputs("],\"total\":{", f);
		json_dev(f, &t);
		fprintf(f, "},\"port\":{\"kind\":\"%s\"", v->port->kind);
		if (has_ps)
			fprintf(f,
				",\"packets\":%" PRIu64 ",\"bytes\":%" PRIu64
				",\"bad\":%" PRIu64 ",\"made\":%" PRIu64,
				ps.packets, ps.bytes, ps.bad, ps.made);
		fputs("}}\n", f);
		return;
	}
	fprintf(f, "vio serve net %s (%s, %s): %lu connection%s\n", s->where,
		mac, event, s->conns, s->conns == 1 ? "" : "s");
	char who[32];
	for (unsigned q = 0; pairs > 1 && q < pairs; q++) {
		struct vio_net_stats ss = {0};
		vio_net_device_stats(nd, q, &ss);
		snprintf(who, sizeof(who), "  pair %u", q);
		text_dev(f, who, &ss);
	}
	text_dev(f, "  total", &t);
	fprintf(f, "  control queue: %" PRIu64 " ok, %" PRIu64 " refused\n",
		t.ctrl_ok, t.ctrl_err);
	if (has_ps)
		fprintf(f,
			"  port %s: %" PRIu64 " packets %" PRIu64
			" bytes taken, %" PRIu64 " bad, %" PRIu64 " made\n",
			v->port->kind, ps.packets, ps.bytes, ps.bad, ps.made);
}

static void stats_switch(FILE *f, const struct net_srv *v, const char *event)
{
	if (v->o->json)
		fprintf(f,
			"{\"event\":\"%s\",\"device\":\"switch\",\"pid\":%d,"
			"\"ports\":[",
			event, (int)getpid());
	else
		fprintf(f, "vio serve switch (%s): %u ports\n", event, v->n);
	for (unsigned i = 0; i < v->n; i++) {
		const struct serve_sock *s = &v->socks[i];
		struct vio_net_stats t = {0};
		vio_net_device_stats(v->nd[i], VIO_NET_MAX_PAIRS, &t);
		struct vio_net_switch_stats w = {0};
		bool has_w = vio_net_switch_stats(v->sw, i, &w) == 0;
		char mac[18];
		uint8_t m[VIO_NET_ETH_ALEN];
		vio_net_device_mac(v->nd[i], m);
		net_mac_str(m, mac);
		if (!v->o->json) {
			fprintf(f, "  port %u %s (%s): %lu connection%s\n", i,
				s->where, mac, s->conns,
				s->conns == 1 ? "" : "s");
			text_dev(f, "    device", &t);
			if (has_w)
				fprintf(f,
					"    switch: from driver %" PRIu64
					" packets %" PRIu64
					" bytes, to driver %" PRIu64
					" packets %" PRIu64 " bytes, %" PRIu64
					" flooded, %" PRIu64 " dropped\n",
					w.rx_packets, w.rx_bytes, w.tx_packets,
					w.tx_bytes, w.flooded, w.dropped);
			continue;
		}
		fprintf(f,
			"%s{\"port\":%u,\"socket\":\"%s\",\"mac\":\"%s\","
			"\"connections\":%lu,\"connected\":%s,\"device\":{",
			i ? "," : "", i, s->where, mac, s->conns,
			s->be && vio_backend_connected(s->be) ? "true"
							      : "false");
		json_dev(f, &t);
		fputc('}', f);
		if (has_w)
			fprintf(f,
				",\"switch\":{\"rx_packets\":%" PRIu64
				",\"rx_bytes\":%" PRIu64
				",\"tx_packets\":%" PRIu64
				",\"tx_bytes\":%" PRIu64 ",\"flooded\":%" PRIu64
				",\"dropped\":%" PRIu64 "}",
				w.rx_packets, w.rx_bytes, w.tx_packets,
				w.tx_bytes, w.flooded, w.dropped);
		fputc('}', f);
	}
	if (v->o->json)
		fputs("]}\n", f);
}

/* One write to stdout: the counters are not interleaved with anything. */
static void print_stats(const struct net_srv *v, const char *event)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f) {
		tool_err("stats: %s", strerror(errno));
		return;
	}
	if (v->sw)
		stats_switch(f, v, event);
	else
		stats_net(f, v, event);
	if (fclose(f) == 0 && buf)
		serve_write_all(STDOUT_FILENO, buf, len);
	free(buf);
}

static void on_usr1(void *arg)
{
	print_stats(arg, "stats");
}

static void on_tick(void *arg)
{
	print_stats(arg, "interval");
}

/* ---- setting up ---- */

/* The port of vio serve net (--port). */
static struct vio_net_port *make_port(const struct serve_net_opts *o)
{
	const char *k = o->port ? o->port : "echo";
	struct vio_net_port *p = NULL;
	char err[256] = "";
	if (strcmp(k, "echo") == 0)
		p = vio_net_port_echo_new();
	else if (strcmp(k, "sink") == 0)
		p = vio_net_port_sink_new();
	else if (strcmp(k, "sink:check") == 0)
		p = vio_net_port_sink_check_new();
	else if (strncmp(k, "gen", 3) == 0)
		p = vio_net_port_gen_new(k[3] == ':' ? (uint32_t)atoi(k + 4)
						     : 0);
	else if (strncmp(k, "tap:", 4) == 0)
		p = vio_net_port_tap_new(k + 4, o->queues, err, sizeof(err));
	if (!p)
		tool_err("--port %s: %s", k, err[0] ? err : strerror(errno));
	return p;
}

static int make_device(struct net_srv *v, unsigned i, struct vio_net_port *p,
		       const char *name)
{
	const struct serve_net_opts *o = v->o;
	struct vio_net_device_opts c = {
	    .name = name,
	    .mtu = (uint16_t)o->mtu,
	    .queue_pairs = o->queues,
	    .queue_size = (uint16_t)o->queue_size,
	    .port = p,
	    .packed = o->packed,
	    .no_event_idx = o->no_evidx,
	    .no_mrg_rxbuf = o->no_mrg,
	    .no_ctrl_vq = o->no_ctrl,
	    .tx_wait_ns = o->tx_wait_ns,
	};
	if (o->has_mac)
		memcpy(c.mac, o->mac, sizeof(c.mac));
	char err[256] = "";
	v->nd[i] = vio_net_device_new(&c, err, sizeof(err));
	if (!v->nd[i]) {
		tool_err("%s: %s", name, err[0] ? err : strerror(errno));
		return TOOL_EXIT_FAIL;
	}
	v->n = i + 1;
	return 0;
}

int serve_net_main(int argc, char **argv, const char *type, int nfds,
		   const char *fdname)
{
	struct serve_net_opts o = {.queues = 1};
	o.is_switch = strcmp(type, "switch") == 0;
	int r = serve_net_parse(argc, argv, &o, nfds > 0);
	if (r)
		return r < 0 ? TOOL_EXIT_OK : r;
	char where[128] = "";
	if ((r = serve_activation(nfds, fdname, where, sizeof(where))))
		return r;
	bool inherited = nfds == 1;
	if ((r = serve_sigbus_guard()))
		return r;

	struct net_srv v = {.o = &o};
	unsigned nsock = inherited ? 1 : o.nsockets;
	int rc = TOOL_EXIT_FAIL;
	int sfd = -1;
	struct vio_run *run = NULL;
	struct tool_pidfile pidfile = {0};

	/* the devices and their ports */
	if (o.is_switch) {
		v.sw = vio_net_switch_new();
		if (!v.sw) {
			tool_err("switch: %s", strerror(errno));
			goto out;
		}
		for (unsigned i = 0; i < nsock; i++) {
			struct vio_net_port *p =
			    vio_net_switch_port(v.sw, o.sockets[i]);
			if (!p) {
				tool_err("switch port %s: %s", o.sockets[i],
					 strerror(errno));
				goto out;
			}
			if (make_device(&v, i, p, o.sockets[i]))
				goto out;
		}
	} else {
		v.port = make_port(&o);
		if (!v.port || make_device(&v, 0, v.port, "net"))
			goto out;
	}

	/* signals through a signalfd: blocked before any thread starts */
	if ((sfd = serve_signals()) < 0)
		goto out;
	/*
	 * The workers, made once.  net: a receiveq and its transmitq (a
	 * pair) on one worker (group = 2), pair k on worker k % threads, by
	 * default one per pair (at most one per CPU).  switch: one worker
	 * for every queue of every device.
	 */
	struct vio_run_opts ro = {
	    .threads = o.is_switch	      ? 1
		       : o.threads > o.queues ? o.queues
					      : o.threads,
	    .num_queues = o.queues,
	    .cpus = o.cpus,
	    .poll = o.poll,
	    .group = 2,
	};
	char rerr[160];
	run = vio_run_new(&ro, rerr, sizeof(rerr));
	if (!run) {
		tool_err("--threads/--cpus: %s", rerr);
		goto out;
	}
	for (unsigned i = 0; i < nsock; i++) {
		struct serve_sock *s = &v.socks[i];
		struct vio_backend_opts bc = {0};
		vio_run_hooks(run, &bc);
		s->path = inherited ? NULL : o.sockets[i];
		snprintf(s->where, sizeof(s->where), "%s",
			 inherited ? where : o.sockets[i]);
		s->be = vio_backend_new(vio_net_device_dev(v.nd[i]), &bc);
		if (!s->be) {
			tool_err("vhost-user backend: %s", strerror(errno));
			goto out;
		}
		if (serve_sock_start(s, o.client, inherited))
			goto out;
	}
	const char *how = o.client ? "connected to" : "listening on";
	char status[256];
	if (o.is_switch) {
		fprintf(stderr, "vio serve: switch, %u port%s, %s", nsock,
			nsock == 1 ? "" : "s", how);
		for (unsigned i = 0; i < nsock; i++)
			fprintf(stderr, " %s", v.socks[i].where);
		fputc('\n', stderr);
		snprintf(status, sizeof(status), "switch: %u ports %s", nsock,
			 how);
	} else {
		char mac[18];
		uint8_t m[VIO_NET_ETH_ALEN];
		vio_net_device_mac(v.nd[0], m);
		net_mac_str(m, mac);
		fprintf(stderr,
			"vio serve: net %s, port %s, MTU %u, %u pair%s, %s "
			"%s\n",
			mac, v.port->kind, o.mtu ? o.mtu : 1500, o.queues,
			o.queues == 1 ? "" : "s", how, v.socks[0].where);
		snprintf(status, sizeof(status), "%s %s (0 connections so far)",
			 how, v.socks[0].where);
	}
	/* ready: every socket accepts connections (or is connected) */
	if (serve_ready(&pidfile, o.pidfile, status))
		goto out;
	struct serve_loop_ops lo = {
	    .usr1 = on_usr1,
	    .tick = on_tick,
	    .tick_ms = o.interval_s * 1000,
	    .arg = &v,
	};
	rc = serve_loop(v.socks, nsock, sfd, o.client, o.once, &lo);
	serve_stopping();

out:
	/* the queues stop (ports detach their fds) before the counters are
	 * read: final figures */
	for (unsigned i = 0; i < nsock; i++)
		if (v.socks[i].be) {
			vio_backend_free(v.socks[i].be);
			v.socks[i].be = NULL;
		}
	if (rc == TOOL_EXIT_OK)
		print_stats(&v, "exit");
	vio_run_free(run);
	for (unsigned i = 0; i < v.n; i++)
		vio_net_device_free(v.nd[i]);
	vio_net_port_free(v.port);
	if (v.sw)
		vio_net_switch_free(v.sw);
	if (sfd >= 0)
		close(sfd);
	/* last: the file disappears once the socket is gone */
	tool_pidfile_remove(&pidfile);
	return rc;
}
