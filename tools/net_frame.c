/* SPDX-License-Identifier: MIT */
/*
 * vio net: the test frames (tools/net.h).  UDP over IPv4, checksums
 * valid so that a real stack (a TAP interface, a guest) would take them;
 * the payload starts with a tag, "vioN" and a 64-bit sequence number, and
 * the rest is a pattern of that number, so a receiver can tell a frame
 * of ours that came back intact from one that was cut or altered.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "net.h"

#define F_ETH 14u
#define F_IP 20u
#define F_UDP 8u
#define TAG_OFF (F_ETH + F_IP + F_UDP) /* 42 */
_Static_assert(TAG_OFF == NET_FRAME_HDR, "the headers of tools/net.h");
#define TAG_LEN 12u /* "vioN" + seq */
#define UDP_PORT 4789u

static const uint8_t ip_src[4] = {10, 0, 0, 1};
static const uint8_t ip_dst[4] = {10, 0, 0, 2};

static void put16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint32_t get16(const uint8_t *p)
{
	return (uint32_t)p[0] << 8 | p[1];
}

/* Ones' complement sum of len bytes (big-endian 16-bit words). */
static uint32_t sum16(const uint8_t *p, size_t len, uint32_t s)
{
	size_t i = 0;
	for (; i + 1 < len; i += 2)
		s += get16(p + i);
	if (i < len)
		s += (uint32_t)p[i] << 8;
	return s;
}

static uint16_t fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

/* The UDP checksum over the pseudo-header, the UDP header and payload
 * (the checksum field counted as it is: 0 to compute, the value to
 * check, which then folds to 0). */
static uint16_t udp_csum(const uint8_t *ip, const uint8_t *udp, uint32_t ulen)
{
	uint32_t s = sum16(ip + 12, 8, 0); /* source and destination */
	s += 17 + ulen;
	return fold(sum16(udp, ulen, s));
}

static uint8_t pattern(uint64_t seq, uint32_t k)
{
	return (uint8_t)(seq * 131u + k * 7u + (k >> 8));
}

static void fill_udp_csum(uint8_t *buf, uint32_t len)
{
	uint8_t *ip = buf + F_ETH, *udp = ip + F_IP;
	uint32_t ulen = len - F_ETH - F_IP;
	put16(udp + 6, 0);
	uint16_t c = udp_csum(ip, udp, ulen);
	put16(udp + 6, c ? c : 0xffff); /* 0 means "none" in UDP */
}

void net_frame_build(uint8_t *buf, uint32_t len, const uint8_t *dst,
		     const uint8_t *src, uint64_t seq)
{
	memcpy(buf, dst, 6);
	memcpy(buf + 6, src, 6);
	put16(buf + 12, 0x0800);
	uint8_t *ip = buf + F_ETH;
	memset(ip, 0, F_IP);
	ip[0] = 0x45;
	put16(ip + 2, len - F_ETH);
	put16(ip + 4, (uint32_t)seq & 0xffff);
	put16(ip + 6, 0x4000); /* don't fragment */
	ip[8] = 64;
	ip[9] = 17; /* UDP */
	memcpy(ip + 12, ip_src, 4);
	memcpy(ip + 16, ip_dst, 4);
	put16(ip + 10, fold(sum16(ip, F_IP, 0)));
	uint8_t *udp = ip + F_IP;
	put16(udp, UDP_PORT);
	put16(udp + 2, UDP_PORT);
	put16(udp + 4, len - F_ETH - F_IP);
	net_frame_set_seq(buf, len, seq);
}

void net_frame_set_seq(uint8_t *buf, uint32_t len, uint64_t seq)
{
	uint8_t *t = buf + TAG_OFF;
	memcpy(t, "vioN", 4);
	for (int i = 0; i < 8; i++)
		t[4 + i] = (uint8_t)(seq >> (56 - 8 * i));
	for (uint32_t k = TAG_OFF + TAG_LEN; k < len; k++)
		buf[k] = pattern(seq, k);
	fill_udp_csum(buf, len);
}

enum net_frame_verdict net_frame_check(const uint8_t *buf, uint32_t len,
				       uint64_t *seq)
{
	if (len < F_ETH)
		return NF_BAD;
	if (get16(buf + 12) != 0x0800)
		return NF_OTHER;
	const uint8_t *ip = buf + F_ETH;
	if (len < F_ETH + F_IP || (ip[0] >> 4) != 4)
		return NF_BAD;
	uint32_t ihl = (ip[0] & 15u) * 4, tot = get16(ip + 2);
	if (ihl < F_IP || F_ETH + ihl > len || tot < ihl || F_ETH + tot > len ||
	    fold(sum16(ip, ihl, 0)) != 0)
		return NF_BAD;
	if (ip[9] != 17 || ihl != F_IP || tot < F_IP + F_UDP + TAG_LEN)
		return NF_OTHER;
	const uint8_t *t = buf + TAG_OFF;
	if (memcmp(t, "vioN", 4) != 0)
		return NF_OTHER;
	/* ours: exact length, UDP length and checksum, the pattern */
	const uint8_t *udp = ip + F_IP;
	uint32_t ulen = tot - F_IP;
	if (F_ETH + tot != len || get16(udp + 4) != ulen ||
	    (get16(udp + 6) && udp_csum(ip, udp, ulen) != 0))
		return NF_BAD;
	uint64_t s = 0;
	for (int i = 0; i < 8; i++)
		s = s << 8 | t[4 + i];
	for (uint32_t k = TAG_OFF + TAG_LEN; k < len; k++)
		if (buf[k] != pattern(s, k))
			return NF_BAD;
	*seq = s;
	return NF_OURS;
}

int net_parse_mac(const char *s, uint8_t mac[VIO_NET_ETH_ALEN])
{
	for (unsigned i = 0; i < VIO_NET_ETH_ALEN; i++) {
		unsigned v = 0;
		for (int d = 0; d < 2; d++, s++) {
			int c = *s;
			if (c >= '0' && c <= '9')
				v = v * 16 + (unsigned)(c - '0');
			else if (c >= 'a' && c <= 'f')
				v = v * 16 + (unsigned)(c - 'a' + 10);
			else if (c >= 'A' && c <= 'F')
				v = v * 16 + (unsigned)(c - 'A' + 10);
			else
				return -EINVAL;
		}
		mac[i] = (uint8_t)v;
		if (i + 1 == VIO_NET_ETH_ALEN)
			break;
		if (*s != ':' && *s != '-')
			return -EINVAL;
		s++;
	}
	return *s ? -EINVAL : 0;
}

void net_mac_str(const uint8_t m[VIO_NET_ETH_ALEN], char out[18])
{
	snprintf(out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2],
		 m[3], m[4], m[5]);
}
