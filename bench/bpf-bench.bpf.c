// SPDX-License-Identifier: GPL-2.0
/*
 * Reference programs for bench/bpf-bench.c, measured side by side with the
 * vhost-hist programs on the same hook:
 *
 * - bench_empty: an empty raw_tp program, the floor of what any program costs.
 * - bench_seed_tp / bench_seed_raw / seed_{rx,tx}_end_tp: the seed article's
 *   program as BCC builds it.
 *   BPF_HISTOGRAM(name) is BPF_TABLE("histogram", int, u64, name, 64): a shared
 *   64-slot array; `name.increment(bpf_log2l(v))` becomes a lookup and a
 *   non-atomic `(*leaf) += 1`. bench_seed_tp reads the classic tracepoint
 *   record (u64 header, int packets, int total_length) as the seed does;
 *   bench_seed_raw is the same body for raw_tp, so BPF_PROG_TEST_RUN can drive
 *   it from two CPUs at once.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#define BCC_HIST_SLOTS 64

#define BCC_HISTOGRAM(name)					\
	struct {						\
		__uint(type, BPF_MAP_TYPE_ARRAY);		\
		__uint(max_entries, BCC_HIST_SLOTS);		\
		__type(key, int);				\
		__type(value, __u64);				\
	} name SEC(".maps")

BCC_HISTOGRAM(rx_pkts_hist);
BCC_HISTOGRAM(rx_len_hist);
BCC_HISTOGRAM(tx_pkts_hist);
BCC_HISTOGRAM(tx_len_hist);

/* BCC's bpf_log2l(): floor(log2(v)) + 1 for v >= 1, and 1 for v == 0. */
static __always_inline unsigned int bcc_log2(unsigned int v)
{
	unsigned int r, shift;

	r = (v > 0xFFFF) << 4;
	v >>= r;
	shift = (v > 0xFF) << 3;
	v >>= shift;
	r |= shift;
	shift = (v > 0xF) << 2;
	v >>= shift;
	r |= shift;
	shift = (v > 0x3) << 1;
	v >>= shift;
	r |= shift;
	r |= (v >> 1);
	return r;
}

static __always_inline unsigned int bcc_log2l(unsigned long v)
{
	unsigned int hi = v >> 32;

	if (hi)
		return bcc_log2(hi) + 32 + 1;
	return bcc_log2(v) + 1;
}

static __always_inline void bcc_increment(void *map, int key)
{
	__u64 *leaf = bpf_map_lookup_elem(map, &key);

	if (leaf)
		(*leaf) += 1;
}

static __always_inline void seed_rx_end(int packets, int total_length)
{
	/* The seed passes ints to bpf_log2l(unsigned long): sign-extended. */
	bcc_increment(&rx_pkts_hist, bcc_log2l(packets));
	bcc_increment(&rx_len_hist, bcc_log2l(total_length));
}

static __always_inline void seed_tx_end(int packets, int total_length)
{
	bcc_increment(&tx_pkts_hist, bcc_log2l(packets));
	bcc_increment(&tx_len_hist, bcc_log2l(total_length));
}

struct seed_ktp_args {
	__u64 unused;
	int packets;
	int total_length;
};

SEC("tracepoint")
int bench_seed_tp(struct seed_ktp_args *args)
{
	seed_rx_end(args->packets, args->total_length);
	return 0;
}

/* The seed's two programs on the real vhost_net tracepoints (guest benchmark). */
SEC("tracepoint/vhost_net/vhost_net_rx_end")
int seed_rx_end_tp(struct seed_ktp_args *args)
{
	seed_rx_end(args->packets, args->total_length);
	return 0;
}

SEC("tracepoint/vhost_net/vhost_net_tx_end")
int seed_tx_end_tp(struct seed_ktp_args *args)
{
	seed_tx_end(args->packets, args->total_length);
	return 0;
}

SEC("raw_tp")
int BPF_PROG(bench_seed_raw, int packets, int total_length)
{
	seed_rx_end(packets, total_length);
	return 0;
}

/*
 * The in-kernel driver (bpf-bench section 4): BPF_PROG_TEST_RUN in live-frames
 * mode runs it `repeat` times inside one syscall, and each frame it redirects
 * to an ifindex that does not exist fires xdp:xdp_redirect_err once, so the
 * programs under test run back to back in kernel context, as on a vhost
 * worker, with no user/kernel switch (and, under PTI, no TLB flush) between
 * two events.
 */
SEC("xdp")
int bench_redirect_driver(struct xdp_md *ctx)
{
	return bpf_redirect(0x7fffffff, 0);
}

/*
 * The in-kernel driver where a kernel refuses live-frame test runs: a tc
 * program, which BPF_PROG_TEST_RUN also repeats inside one syscall, whose FIB
 * lookup fires fib:fib_table_lookup once a run (DIRECT and TBID: the local
 * table only, no rules). bpf-bench runs it in a network namespace of its own
 * whose lo forwards (the helper checks that first). Its arguments are a table
 * id and a pointer, not a run's packets and bytes: the programs under test
 * take other histogram slots, at the same cost. Returns the helper's result.
 */
SEC("tc")
int bench_fib_driver(struct __sk_buff *skb)
{
	struct bpf_fib_lookup p = {
		.family = 2,			/* AF_INET */
		.ifindex = 1,			/* lo */
		.ipv4_dst = 0x0100007f,		/* 127.0.0.1, network order */
		.tbid = 255,			/* RT_TABLE_LOCAL */
	};

	return bpf_fib_lookup(skb, &p, sizeof(p),
			      BPF_FIB_LOOKUP_DIRECT | BPF_FIB_LOOKUP_TBID | BPF_FIB_LOOKUP_SKIP_NEIGH);
}

SEC("raw_tp")
int bench_empty(void *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
