// SPDX-License-Identifier: GPL-2.0
/*
 * vhost-traffic: move an exact workload through vhost-net, with no VM.
 *
 * It plays the guest's part itself: it opens a tap device and /dev/vhost-net,
 * hands vhost its own memory as the "guest" memory (one region, mapped 1:1),
 * sets up split virtqueues for RX (index 0) and TX (index 1) and attaches the
 * tap as their backend. Then it moves N frames of chosen sizes in batches of
 * B, one batch at a time, and prints what it did as one JSON object (with
 * move_ns, the CLOCK_MONOTONIC time the batches took).
 *
 * TX: B descriptor chains are written and published with a single avail->idx
 * store, then one kick; the next batch starts once vhost has used all of
 * them. The frames come out of the tap into the host stack, where a packet
 * socket counts them.
 *
 * RX: B frames are sent into the tap through a packet socket (bypassing the
 * qdisc) while the RX ring is empty, so they wait in the tap's queue; then B
 * buffers are published at once and kicked. The used ring gives back each
 * frame with its length, and every frame's payload is checked. With --post P
 * the buffers go out P at a time, each lot once the last is used: vhost then
 * runs out of buffers with frames still waiting, the RX ring starvation a
 * slow guest causes, and each of those runs ends by handle_rx's "goto out".
 *
 * Because each batch is published in one store and nothing else is posted
 * until it is done, vhost-net handles a batch in one run of its handler,
 * split only where the handler's weight limit ends a run. Stray traffic is
 * kept off the tap: IPv6 is disabled on it before it goes up, and it has
 * IFF_NOARP and no address.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/if.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <linux/vhost.h>
#include <linux/virtio_config.h>
#include <linux/virtio_net.h>
#include <linux/virtio_ring.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RX_INDEX 0
#define TX_INDEX 1
#define VNET_HDR_LEN ((int)sizeof(struct virtio_net_hdr_mrg_rxbuf))
#define ETHERTYPE_TEST 0x88b5 /* IEEE 802 local experimental */
#define MAGIC 0x56485452u     /* "VHTR" */
#define MAX_SIZES 64
#define MIN_FRAME 26          /* Ethernet header + magic, seq, size */
#define WAIT_MS 10000

struct frame_head {
	uint8_t dst[6];
	uint8_t src[6];
	uint16_t ethertype;
	uint32_t magic;
	uint32_t seq;
	uint32_t size;
} __attribute__((packed));

struct vq {
	int index;
	unsigned int num;
	struct vring ring;
	uint16_t avail_idx;
	uint16_t used_seen;
	int kick;
	int call;
	uint8_t *bufs;     /* num slots of slot_size bytes */
};

struct options {
	bool tx;
	long frames;
	int batch;
	int post;
	int sizes[MAX_SIZES];
	int nsizes;
	unsigned int ring;
	const char *ifname;
};

struct batch_result {
	int frames;
	long bytes;
};

static const uint8_t dst_mac[6] = { 0x02, 0x76, 0x74, 0x00, 0x00, 0x01 };
static const uint8_t src_mac[6] = { 0x02, 0x76, 0x74, 0x00, 0x00, 0x02 };

static size_t slot_size;

static void die(const char *fmt, ...)
{
	va_list ap;
	int err = errno;

	fprintf(stderr, "vhost-traffic: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (err)
		fprintf(stderr, ": %s", strerror(err));
	fputc('\n', stderr);
	exit(1);
}

static void usage(int status)
{
	fprintf(status ? stderr : stdout,
		"usage: vhost-traffic --tx|--rx --frames N --batch B --sizes S[,S...]\n"
		"                     [--ring NUM] [--post P] [--ifname NAME]\n"
		"Frame sizes are Ethernet frame lengths without FCS (%d..9014), used\n"
		"in turn. --post (RX only): the frames of a batch wait in the tap and\n"
		"the RX buffers for them are posted P at a time, each lot once the\n"
		"last is used, so vhost runs out of buffers P frames in (default: B).\n"
		"Prints one JSON object describing what was moved.\n",
		MIN_FRAME);
	exit(status);
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int frame_size(const struct options *o, long seq)
{
	return o->sizes[seq % o->nsizes];
}

static int max_size(const struct options *o)
{
	int i, m = 0;

	for (i = 0; i < o->nsizes; i++)
		if (o->sizes[i] > m)
			m = o->sizes[i];
	return m;
}

static void fill_frame(uint8_t *p, long seq, int size)
{
	struct frame_head h = {
		.ethertype = htons(ETHERTYPE_TEST),
		.magic = htonl(MAGIC),
		.seq = htonl((uint32_t)seq),
		.size = htonl((uint32_t)size),
	};
	int i;

	memcpy(h.dst, dst_mac, 6);
	memcpy(h.src, src_mac, 6);
	memcpy(p, &h, sizeof(h));
	for (i = sizeof(h); i < size; i++)
		p[i] = (uint8_t)(seq + i);
}

/* Returns the sequence number of one of our frames, or -1 for anything else. */
static long check_frame(const uint8_t *p, int len)
{
	struct frame_head h;
	int i;

	if (len < MIN_FRAME)
		return -1;
	memcpy(&h, p, sizeof(h));
	if (h.ethertype != htons(ETHERTYPE_TEST) || h.magic != htonl(MAGIC) ||
	    (int)ntohl(h.size) != len)
		return -1;
	for (i = sizeof(h); i < len; i++)
		if (p[i] != (uint8_t)(ntohl(h.seq) + i))
			return -1;
	return ntohl(h.seq);
}

static void write_sysctl(const char *path, const char *value)
{
	int fd = open(path, O_WRONLY);

	if (fd < 0) {
		if (errno == ENOENT)
			return; /* e.g. IPv6 disabled on the whole system */
		die("open %s", path);
	}
	if (write(fd, value, strlen(value)) < 0)
		die("write %s", path);
	close(fd);
}

static int open_tap(const char *want, char *name)
{
	struct ifreq ifr = { 0 };
	int hdr_len = VNET_HDR_LEN;
	int fd = open("/dev/net/tun", O_RDWR);

	if (fd < 0)
		die("open /dev/net/tun");
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", want);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0)
		die("TUNSETIFF %s", want);
	if (ioctl(fd, TUNSETVNETHDRSZ, &hdr_len) < 0)
		die("TUNSETVNETHDRSZ");
	snprintf(name, IFNAMSIZ, "%s", ifr.ifr_name);
	return fd;
}

/* IPv6 off, no ARP, MTU and queue length for the workload, then up. */
static int bring_up(const char *name, int mtu, int qlen)
{
	char path[128];
	struct ifreq ifr = { 0 };
	int s = socket(AF_INET, SOCK_DGRAM, 0);

	if (s < 0)
		die("socket");
	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", name);
	write_sysctl(path, "1");
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
	if (mtu > 1500) {
		ifr.ifr_mtu = mtu;
		if (ioctl(s, SIOCSIFMTU, &ifr) < 0)
			die("SIOCSIFMTU %d", mtu);
	}
	if (qlen > 500) {
		ifr.ifr_qlen = qlen;
		if (ioctl(s, SIOCSIFTXQLEN, &ifr) < 0)
			die("SIOCSIFTXQLEN %d", qlen);
	}
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		die("SIOCGIFFLAGS");
	ifr.ifr_flags |= IFF_UP | IFF_NOARP;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		die("SIOCSIFFLAGS");
	if (ioctl(s, SIOCGIFINDEX, &ifr) < 0)
		die("SIOCGIFINDEX");
	close(s);
	return ifr.ifr_ifindex;
}

static int open_packet_socket(int ifindex)
{
	struct sockaddr_ll sll = {
		.sll_family = AF_PACKET,
		.sll_protocol = htons(ETH_P_ALL),
		.sll_ifindex = ifindex,
	};
	int one = 1, rcvbuf = 64 << 20;
	int s = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK, htons(ETH_P_ALL));

	if (s < 0)
		die("packet socket");
	/* Room for a whole batch of jumbo frames between two drains. */
	if (setsockopt(s, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0)
		die("SO_RCVBUFFORCE");
	if (bind(s, (struct sockaddr *)&sll, sizeof(sll)) < 0)
		die("bind packet socket");
	/* Straight to the tap's xmit: each sendto() is queued when it returns. */
	if (setsockopt(s, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one)) < 0)
		die("PACKET_QDISC_BYPASS");
	return s;
}

static size_t ring_bytes(unsigned int num)
{
	return (vring_size(num, 4096) + 4095) & ~(size_t)4095;
}

static void setup_vq(int vhost, struct vq *q, int index, unsigned int num,
		     uint8_t *ring_mem, uint8_t *bufs, int tap)
{
	struct vhost_vring_state state = { .index = index };
	struct vhost_vring_addr addr = { .index = index };
	struct vhost_vring_file file = { .index = index };

	q->index = index;
	q->num = num;
	q->bufs = bufs;
	vring_init(&q->ring, num, ring_mem, 4096);
	q->kick = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	q->call = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (q->kick < 0 || q->call < 0)
		die("eventfd");

	state.num = num;
	if (ioctl(vhost, VHOST_SET_VRING_NUM, &state) < 0)
		die("VHOST_SET_VRING_NUM %u", num);
	state.num = 0;
	if (ioctl(vhost, VHOST_SET_VRING_BASE, &state) < 0)
		die("VHOST_SET_VRING_BASE");
	addr.desc_user_addr = (uintptr_t)q->ring.desc;
	addr.avail_user_addr = (uintptr_t)q->ring.avail;
	addr.used_user_addr = (uintptr_t)q->ring.used;
	if (ioctl(vhost, VHOST_SET_VRING_ADDR, &addr) < 0)
		die("VHOST_SET_VRING_ADDR");
	file.fd = q->kick;
	if (ioctl(vhost, VHOST_SET_VRING_KICK, &file) < 0)
		die("VHOST_SET_VRING_KICK");
	file.fd = q->call;
	if (ioctl(vhost, VHOST_SET_VRING_CALL, &file) < 0)
		die("VHOST_SET_VRING_CALL");
	file.fd = tap;
	if (ioctl(vhost, VHOST_NET_SET_BACKEND, &file) < 0)
		die("VHOST_NET_SET_BACKEND %d", index);
}

/* Post one descriptor per slot in [first, first + n), publish them at once, kick. */
static void post(struct vq *q, int n, const int *lens, bool device_writes)
{
	uint64_t one = 1;
	int i;

	for (i = 0; i < n; i++) {
		unsigned int d = (q->avail_idx + i) % q->num;

		q->ring.desc[d].addr = (uintptr_t)(q->bufs + d * slot_size);
		q->ring.desc[d].len = lens[i];
		q->ring.desc[d].flags = device_writes ? VRING_DESC_F_WRITE : 0;
		q->ring.desc[d].next = 0;
		q->ring.avail->ring[(q->avail_idx + i) % q->num] = d;
	}
	q->avail_idx += n;
	__atomic_store_n(&q->ring.avail->idx, q->avail_idx, __ATOMIC_RELEASE);
	if (write(q->kick, &one, sizeof(one)) != sizeof(one))
		die("kick");
}

/* Wait until vhost has used everything posted; returns the new used entries. */
static int wait_used(struct vq *q, struct vring_used_elem *out)
{
	long deadline = now_ms() + WAIT_MS;
	int n = 0;

	for (;;) {
		uint16_t used = __atomic_load_n(&q->ring.used->idx, __ATOMIC_ACQUIRE);
		struct pollfd pfd = { .fd = q->call, .events = POLLIN };
		uint64_t v;

		while (q->used_seen != used) {
			out[n++] = q->ring.used->ring[q->used_seen % q->num];
			q->used_seen++;
		}
		if (q->used_seen == q->avail_idx)
			return n;
		if (now_ms() > deadline) {
			errno = 0;
			die("vq %d: vhost used %u of %u buffers in %d ms", q->index,
			    (unsigned int)(uint16_t)(q->used_seen), q->avail_idx, WAIT_MS);
		}
		if (poll(&pfd, 1, 100) > 0 && read(q->call, &v, sizeof(v)) < 0 && errno != EAGAIN)
			die("read call eventfd");
	}
}

/* Read what the packet socket has, counting our frames coming in from vhost. */
static long drain_incoming(int s, uint8_t *buf, size_t len, long *foreign)
{
	long ours = 0;

	for (;;) {
		struct sockaddr_ll from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(s, buf, len, MSG_TRUNC, (struct sockaddr *)&from, &fl);

		if (n < 0) {
			if (errno == EAGAIN)
				return ours;
			die("recvfrom");
		}
		if (from.sll_pkttype == PACKET_OUTGOING)
			continue;
		if (check_frame(buf, n) >= 0)
			ours++;
		else
			++*foreign;
	}
}

static void parse_sizes(struct options *o, const char *arg)
{
	char *copy = strdup(arg), *tok, *save = NULL;

	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *end;
		long v = strtol(tok, &end, 10);

		if (*end || v < MIN_FRAME || v > 9014 || o->nsizes == MAX_SIZES)
			usage(2);
		o->sizes[o->nsizes++] = (int)v;
	}
	free(copy);
}

static void parse_options(struct options *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "tx", no_argument, NULL, 't' },
		{ "rx", no_argument, NULL, 'r' },
		{ "frames", required_argument, NULL, 'n' },
		{ "batch", required_argument, NULL, 'b' },
		{ "sizes", required_argument, NULL, 's' },
		{ "ring", required_argument, NULL, 'q' },
		{ "post", required_argument, NULL, 'p' },
		{ "ifname", required_argument, NULL, 'i' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	int mode = 0, c;

	memset(o, 0, sizeof(*o));
	o->ring = 256;
	o->ifname = "vhtap%d";
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 't': o->tx = true; mode++; break;
		case 'r': o->tx = false; mode++; break;
		case 'n': o->frames = atol(optarg); break;
		case 'b': o->batch = atoi(optarg); break;
		case 's': parse_sizes(o, optarg); break;
		case 'q': o->ring = (unsigned int)atoi(optarg); break;
		case 'p': o->post = atoi(optarg); break;
		case 'i': o->ifname = optarg; break;
		case 'h': usage(0); break;
		default: usage(2);
		}
	}
	if (mode != 1 || o->frames <= 0 || o->batch <= 0 || !o->nsizes || optind != argc)
		usage(2);
	if (o->ring < 2 || o->ring > 32768 || (o->ring & (o->ring - 1)))
		usage(2);
	if (o->post < 0 || (o->post && o->tx))
		usage(2);
	if (!o->post || o->post > o->batch)
		o->post = o->batch;
	if ((unsigned int)o->batch > o->ring) {
		fprintf(stderr, "vhost-traffic: --batch must not exceed --ring\n");
		exit(2);
	}
}

int main(int argc, char **argv)
{
	struct options o;
	struct vq rx, tx, *q;
	struct vhost_memory *mem;
	struct vring_used_elem *used;
	struct batch_result *batches;
	char ifname[IFNAMSIZ];
	uint64_t features, offered;
	uint8_t *area, *pktbuf;
	size_t rings, area_len;
	long seq = 0, total_bytes = 0, frame_bytes = 0, tap_seen = 0, foreign = 0;
	long nbatches, b, started;
	long long move_start, move_ns;
	struct rusage ru0, ru1;
	int tap, vhost, psock, ifindex, *lens, i;

	parse_options(&o, argc, argv);
	slot_size = (VNET_HDR_LEN + max_size(&o) + 63) & ~(size_t)63;

	tap = open_tap(o.ifname, ifname);
	ifindex = bring_up(ifname, max_size(&o) - ETH_HLEN, o.batch);
	psock = open_packet_socket(ifindex);

	vhost = open("/dev/vhost-net", O_RDWR);
	if (vhost < 0)
		die("open /dev/vhost-net");
	if (ioctl(vhost, VHOST_SET_OWNER) < 0)
		die("VHOST_SET_OWNER");
	if (ioctl(vhost, VHOST_GET_FEATURES, &offered) < 0)
		die("VHOST_GET_FEATURES");
	/*
	 * VERSION_1 makes the virtio-net header 12 bytes, as the tap was told;
	 * no mergeable RX buffers, so each frame takes exactly one buffer; no
	 * event index, so every kick and every used buffer is signalled.
	 */
	features = 1ULL << VIRTIO_F_VERSION_1;
	if ((offered & features) != features) {
		errno = 0;
		die("vhost-net does not offer VIRTIO_F_VERSION_1");
	}
	if (ioctl(vhost, VHOST_SET_FEATURES, &features) < 0)
		die("VHOST_SET_FEATURES");

	/* One region of "guest" memory: both rings, then both buffer areas. */
	rings = ring_bytes(o.ring);
	area_len = 2 * rings + 2 * (size_t)o.ring * slot_size;
	area = mmap(NULL, area_len, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (area == MAP_FAILED)
		die("mmap %zu", area_len);
	mem = calloc(1, sizeof(*mem) + sizeof(mem->regions[0]));
	mem->nregions = 1;
	mem->regions[0].guest_phys_addr = (uintptr_t)area;
	mem->regions[0].userspace_addr = (uintptr_t)area;
	mem->regions[0].memory_size = area_len;
	if (ioctl(vhost, VHOST_SET_MEM_TABLE, mem) < 0)
		die("VHOST_SET_MEM_TABLE");

	memset(&rx, 0, sizeof(rx));
	memset(&tx, 0, sizeof(tx));
	setup_vq(vhost, &rx, RX_INDEX, o.ring, area, area + 2 * rings, tap);
	setup_vq(vhost, &tx, TX_INDEX, o.ring, area + rings,
		 area + 2 * rings + (size_t)o.ring * slot_size, tap);
	q = o.tx ? &tx : &rx;

	nbatches = (o.frames + o.batch - 1) / o.batch;
	batches = calloc(nbatches, sizeof(*batches));
	used = calloc(o.ring, sizeof(*used));
	lens = calloc(o.batch, sizeof(*lens));
	pktbuf = malloc(65536);
	if (!batches || !used || !lens || !pktbuf)
		die("calloc");

	started = now_ms();
	/* The driver's own context switches while it moves: whether it blocks (bench/datapath.ts). */
	getrusage(RUSAGE_SELF, &ru0);
	move_start = now_ns();
	for (b = 0; b < nbatches; b++) {
		int n = o.frames - seq < o.batch ? (int)(o.frames - seq) : o.batch;
		int got;

		for (i = 0; i < n; i++) {
			unsigned int slot = (q->avail_idx + i) % q->num;
			uint8_t *p = q->bufs + slot * slot_size;
			int size = frame_size(&o, seq + i);

			if (o.tx) {
				memset(p, 0, VNET_HDR_LEN);
				fill_frame(p + VNET_HDR_LEN, seq + i, size);
				lens[i] = VNET_HDR_LEN + size;
			} else {
				struct sockaddr_ll to = {
					.sll_family = AF_PACKET,
					.sll_ifindex = ifindex,
					.sll_halen = ETH_ALEN,
				};

				fill_frame(pktbuf, seq + i, size);
				memcpy(to.sll_addr, dst_mac, 6);
				if (sendto(psock, pktbuf, size, 0, (struct sockaddr *)&to,
					   sizeof(to)) != size)
					die("send frame %ld into the tap", seq + i);
				lens[i] = (int)slot_size;
			}
		}
		/* RX may hand out buffers fewer at a time than the frames waiting. */
		for (got = 0, i = 0; i < n; i += o.post) {
			int k = n - i < o.post ? n - i : o.post;

			post(q, k, lens + i, !o.tx);
			got += wait_used(q, used + got);
		}
		if (got != n) {
			errno = 0;
			die("batch %ld: %d buffers used, %d posted", b, got, n);
		}
		for (i = 0; i < n; i++) {
			int size = frame_size(&o, seq + i);

			if (o.tx) {
				batches[b].bytes += lens[i];
			} else {
				uint8_t *p = q->bufs + used[i].id * slot_size;
				long s = check_frame(p + VNET_HDR_LEN, used[i].len - VNET_HDR_LEN);

				if (s != seq + i) {
					errno = 0;
					die("rx buffer %d of batch %ld: frame %ld, expected %ld (len %u)",
					    i, b, s, seq + i, used[i].len);
				}
				batches[b].bytes += used[i].len;
			}
			frame_bytes += size;
		}
		batches[b].frames = n;
		total_bytes += batches[b].bytes;
		seq += n;
		if (o.tx)
			tap_seen += drain_incoming(psock, pktbuf, 65536, &foreign);
		else
			drain_incoming(psock, pktbuf, 65536, &foreign);
	}
	/* The batches alone, without setup and the wait for stragglers (bench/datapath.ts). */
	move_ns = now_ns() - move_start;
	getrusage(RUSAGE_SELF, &ru1);
	if (o.tx) {
		long deadline = now_ms() + 2000;

		while (tap_seen < o.frames && now_ms() < deadline) {
			usleep(10000);
			tap_seen += drain_incoming(psock, pktbuf, 65536, &foreign);
		}
	}

	printf("{\"direction\":\"%s\",\"frames\":%ld,\"bytes\":%ld,\"frame_bytes\":%ld,"
	       "\"vnet_hdr_len\":%d,\"batch\":%d,\"post\":%d,\"ring\":%u,\"sizes\":[",
	       o.tx ? "tx" : "rx", seq, total_bytes, frame_bytes, VNET_HDR_LEN, o.batch, o.post,
	       o.ring);
	for (i = 0; i < o.nsizes; i++)
		printf("%s%d", i ? "," : "", o.sizes[i]);
	printf("],\"batches\":[");
	for (b = 0; b < nbatches; b++)
		printf("%s{\"frames\":%d,\"bytes\":%ld}", b ? "," : "", batches[b].frames,
		       batches[b].bytes);
	printf("],\"tap\":\"%s\",\"features\":\"0x%llx\",", ifname,
	       (unsigned long long)features);
	if (o.tx) {
		struct tpacket_stats st = { 0 };
		socklen_t sl = sizeof(st);

		if (getsockopt(psock, SOL_PACKET, PACKET_STATISTICS, &st, &sl) < 0)
			die("PACKET_STATISTICS");
		printf("\"tap_seen\":%ld,\"tap_socket_drops\":%u,", tap_seen, st.tp_drops);
	}
	printf("\"foreign_frames\":%ld,\"move_ns\":%lld,\"blocked\":%ld,\"preempted\":%ld,"
	       "\"elapsed_ms\":%ld}\n", foreign, move_ns, ru1.ru_nvcsw - ru0.ru_nvcsw,
	       ru1.ru_nivcsw - ru0.ru_nivcsw, now_ms() - started);

	close(vhost);
	close(tap);
	return 0;
}
