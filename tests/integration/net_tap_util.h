/* SPDX-License-Identifier: MIT */
/*
 * Helpers of test_net_tap.c: the TAP interface set up with ioctls (up,
 * address, MAC, a neighbour entry, deletion over rtnetlink), an AF_PACKET
 * socket on it, test frames with a sequence number, and IPv4/UDP frames
 * and checksums for the offload cases.  Every helper is bounded.
 */
#ifndef VIO_TEST_NET_TAP_UTIL_H
#define VIO_TEST_NET_TAP_UTIL_H

/* glibc's net/if.h first: the kernel's linux/if.h then steps aside */
#include <net/if.h>
#include <net/if_arp.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/virtio_ids.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "test.h"
#include <vio/bus.h>
#include <vio/log.h>
#include <vio/mem.h>
#include <vio/net.h>
#include <vio/run.h>
#include <vio/vhost_user.h>

#define ETYPE 0x88b5 /* local experimental: no stack answers it */
#define TAP_IP "10.77.0.1"
#define DEV_IP "10.77.0.2"
#define UDP_TAP 5555
#define UDP_DEV 4444
#define FLOOD 400 /* frames sent at a driver that does not read */

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- interface set-up with ioctls ---- */

static int ctl_sock(void)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	REQUIRE(s >= 0);
	return s;
}

static void if_up(const char *name, const char *ip)
{
	int s = ctl_sock();
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
	if (ip) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ifr.ifr_addr;
		a->sin_family = AF_INET;
		REQUIRE(inet_pton(AF_INET, ip, &a->sin_addr) == 1);
		REQUIRE(ioctl(s, SIOCSIFADDR, &ifr) == 0);
		REQUIRE(inet_pton(AF_INET, "255.255.255.0", &a->sin_addr) == 1);
		REQUIRE(ioctl(s, SIOCSIFNETMASK, &ifr) == 0);
	}
	REQUIRE(ioctl(s, SIOCGIFFLAGS, &ifr) == 0);
	ifr.ifr_flags |= IFF_UP;
	REQUIRE(ioctl(s, SIOCSIFFLAGS, &ifr) == 0);
	close(s);
}

static void if_mac(const char *name, uint8_t mac[6])
{
	int s = ctl_sock();
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
	REQUIRE(ioctl(s, SIOCGIFHWADDR, &ifr) == 0);
	memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
	close(s);
}

/* A permanent neighbour entry: the kernel sends to ip without asking. */
static void arp_add(const char *name, const char *ip, const uint8_t mac[6])
{
	int s = ctl_sock();
	struct arpreq ar;
	memset(&ar, 0, sizeof(ar));
	struct sockaddr_in *a = (struct sockaddr_in *)&ar.arp_pa;
	a->sin_family = AF_INET;
	REQUIRE(inet_pton(AF_INET, ip, &a->sin_addr) == 1);
	ar.arp_ha.sa_family = ARPHRD_ETHER;
	memcpy(ar.arp_ha.sa_data, mac, 6);
	ar.arp_flags = ATF_COM | ATF_PERM;
	snprintf(ar.arp_dev, sizeof(ar.arp_dev), "%s", name);
	REQUIRE(ioctl(s, SIOCSARP, &ar) == 0);
	close(s);
}

/* An AF_PACKET socket on the interface for ETYPE frames coming in (the
 * ones the port wrote), not the ones it sends itself. */
static int pkt_sock(const char *name, struct sockaddr_ll *sll)
{
	int s = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETYPE));
	REQUIRE(s >= 0);
	memset(sll, 0, sizeof(*sll));
	sll->sll_family = AF_PACKET;
	sll->sll_protocol = htons(ETYPE);
	sll->sll_ifindex = (int)if_nametoindex(name);
	sll->sll_halen = 6;
	REQUIRE(sll->sll_ifindex > 0);
	REQUIRE(bind(s, (struct sockaddr *)sll, sizeof(*sll)) == 0);
	int one = 1;
	REQUIRE(setsockopt(s, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one,
			   sizeof(one)) == 0);
	return s;
}

/* Delete an interface (RTM_DELLINK), as "ip link del" does. */
static void link_del(const char *name)
{
	int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	REQUIRE(s >= 0);
	struct {
		struct nlmsghdr nh;
		struct ifinfomsg ifi;
	} req;
	memset(&req, 0, sizeof(req));
	req.nh.nlmsg_len = sizeof(req);
	req.nh.nlmsg_type = RTM_DELLINK;
	req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	req.nh.nlmsg_seq = 1;
	req.ifi.ifi_family = AF_UNSPEC;
	req.ifi.ifi_index = (int)if_nametoindex(name);
	REQUIRE(req.ifi.ifi_index > 0);
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
	REQUIRE(sendto(s, &req, sizeof(req), 0, (struct sockaddr *)&sa,
		       sizeof(sa)) == (ssize_t)sizeof(req));
	union {
		struct nlmsghdr nh;
		char b[512];
	} ans;
	REQUIRE(recv(s, &ans, sizeof(ans), 0) >=
		(ssize_t)(sizeof(struct nlmsghdr) + sizeof(struct nlmsgerr)));
	REQUIRE(ans.nh.nlmsg_type == NLMSG_ERROR);
	CHECK_EQ(((struct nlmsgerr *)NLMSG_DATA(&ans.nh))->error, 0);
	close(s);
}

/* Wait (bounded) until *v reaches want. */
static bool wait_count(int *v, int want)
{
	uint64_t deadline = now_ms() + 5000;
	while (__atomic_load_n(v, __ATOMIC_RELAXED) < want) {
		if (now_ms() >= deadline)
			return false;
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
	return true;
}

/* count UDP datagrams from count sockets (so count flows, which the
 * kernel spreads over the TAP's queues), payload "<tag><i>", to the
 * driver's address. */
static void udp_flows(char tag, unsigned count)
{
	struct sockaddr_in to = {.sin_family = AF_INET,
				 .sin_port = htons(UDP_DEV)};
	REQUIRE(inet_pton(AF_INET, DEV_IP, &to.sin_addr) == 1);
	for (unsigned i = 0; i < count; i++) {
		int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		REQUIRE(s >= 0);
		char m[16];
		int l = snprintf(m, sizeof(m), "%c%03u", tag, i);
		CHECK_EQ(sendto(s, m, (size_t)l, 0, (struct sockaddr *)&to,
				sizeof(to)),
			 l);
		close(s);
	}
}

/* Datagrams of udp_flows(tag) at the driver, on pairs 0..pairs-1, until
 * want of them came (or 5 s).  How many came. */
static unsigned udp_recv(struct vio_net *n, unsigned pairs, char tag,
			 unsigned want)
{
	bool seen[64] = {0};
	unsigned got = 0, turn = 0;
	REQUIRE(want <= 64);
	uint64_t deadline = now_ms() + 5000;
	while (got < want && now_ms() < deadline) {
		struct vio_net_pkt p[32];
		int r = vio_net_recv(n, turn++ % pairs, p, 32, 10);
		REQUIRE(r >= 0);
		for (int j = 0; j < r; j++) {
			const uint8_t *d = p[j].data;
			unsigned i;
			if (p[j].len < 46 || d[12] != 0x08 || d[13] != 0 ||
			    d[23] != IPPROTO_UDP ||
			    (d[36] << 8 | d[37]) != UDP_DEV || d[42] != tag ||
			    sscanf((const char *)d + 43, "%3u", &i) != 1 ||
			    i >= 64)
				continue;
			CHECK(!seen[i]);
			got += !seen[i];
			seen[i] = true;
		}
	}
	return got;
}

/* ---- frames ---- */

static size_t frame_len(uint32_t seq)
{
	return 60 + (seq * 97u) % (1514 - 60 + 1);
}

static void make_frame(uint8_t *f, size_t len, const uint8_t *dst,
		       const uint8_t *src, uint32_t seq)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	f[12] = ETYPE >> 8;
	f[13] = ETYPE & 0xff;
	memcpy(f + 14, &seq, 4);
	for (size_t i = 18; i < len; i++)
		f[i] = (uint8_t)(seq * 31u + i);
}

/* An ETYPE frame from src with a sequence number in [seq0, seq0 + n):
 * its index, or -1 (another frame); bad: one that is ETYPE but wrong. */
static int frame_check(const uint8_t *f, size_t len, const uint8_t *dst,
		       const uint8_t *src, uint32_t seq0, unsigned n,
		       unsigned *bad)
{
	if (len < 18 || f[12] != (ETYPE >> 8) || f[13] != (ETYPE & 0xff))
		return -1;
	uint32_t seq;
	memcpy(&seq, f + 14, 4);
	static uint8_t want[2048];
	if (seq - seq0 >= n || len != frame_len(seq)) {
		(*bad)++;
		return -1;
	}
	make_frame(want, len, dst, src, seq);
	if (memcmp(f, want, len) != 0) {
		(*bad)++;
		return -1;
	}
	return (int)(seq - seq0);
}

static uint16_t csum_fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

static uint32_t csum_add(uint32_t s, const uint8_t *p, size_t len)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		s += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		s += (uint32_t)p[len - 1] << 8;
	return s;
}

/* Pseudo-header sum of an IPv4 UDP datagram at ip (not folded). */
static uint32_t udp_pseudo(const uint8_t *ip, uint16_t ulen)
{
	uint32_t s = csum_add(0, ip + 12, 8);
	return s + IPPROTO_UDP + ulen;
}

/* An Ethernet + IPv4 + UDP frame from the device to the TAP's address;
 * partial: the UDP checksum field holds the pseudo-header sum only (the
 * NEEDS_CSUM convention), else the full checksum. */
static size_t make_udp(uint8_t *f, const uint8_t *dst, const uint8_t *src,
		       const char *payload, bool partial)
{
	size_t plen = strlen(payload);
	uint16_t ulen = (uint16_t)(8 + plen), tlen = (uint16_t)(20 + ulen);
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	f[12] = 0x08;
	f[13] = 0x00;
	uint8_t *ip = f + 14, *u = ip + 20;
	memset(ip, 0, 20);
	ip[0] = 0x45;
	ip[2] = (uint8_t)(tlen >> 8);
	ip[3] = (uint8_t)tlen;
	ip[6] = 0x40; /* DF */
	ip[8] = 64;
	ip[9] = IPPROTO_UDP;
	REQUIRE(inet_pton(AF_INET, DEV_IP, ip + 12) == 1);
	REQUIRE(inet_pton(AF_INET, TAP_IP, ip + 16) == 1);
	uint16_t ic = (uint16_t)~csum_fold(csum_add(0, ip, 20));
	ip[10] = (uint8_t)(ic >> 8);
	ip[11] = (uint8_t)ic;
	u[0] = UDP_DEV >> 8;
	u[1] = UDP_DEV & 0xff;
	u[2] = UDP_TAP >> 8;
	u[3] = UDP_TAP & 0xff;
	u[4] = (uint8_t)(ulen >> 8);
	u[5] = (uint8_t)ulen;
	u[6] = u[7] = 0;
	memcpy(u + 8, payload, plen);
	uint32_t ps = udp_pseudo(ip, ulen);
	uint16_t c = partial ? csum_fold(ps)
			     : (uint16_t)~csum_fold(csum_add(ps, u, ulen));
	if (!partial && c == 0)
		c = 0xffff;
	u[6] = (uint8_t)(c >> 8);
	u[7] = (uint8_t)c;
	return 14u + tlen;
}

#endif
