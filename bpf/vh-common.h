/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* User-space helpers shared by vhost-hist, its test runner and the benchmark. */
#ifndef VH_COMMON_H
#define VH_COMMON_H

#include <stdbool.h>
#include <stdio.h>
#include <linux/types.h>
#include "vhost-hist.h"

/* Exit codes of vhost-hist (docs/bpf.md). */
enum vh_exit {
	VH_EXIT_OK = 0,
	VH_EXIT_ERROR = 1,		/* anything not listed below */
	VH_EXIT_USAGE = 2,
	VH_EXIT_NO_TRACEPOINT = 3,	/* no tracepoints and no stock-mode targets */
	VH_EXIT_NO_BTF = 4,		/* /sys/kernel/btf/vmlinux missing */
	VH_EXIT_NO_PERMISSION = 5,	/* EPERM/EACCES from bpf() */
	VH_EXIT_NO_BPFFS = 6,		/* --pin but the pin dir is not on bpffs */
	VH_EXIT_PIN_MISMATCH = 7,	/* pinned state from another layout */
};

/*
 * Renderer of BCC's print_log2_hist (Python, table.py), byte for byte.
 * `slots` use vhosttrace's convention (slot 0 = 0..1, slot k = 2^k..); BCC's
 * index is slot + 1, and its layout widens when that index passes 32.
 * nslots may be up to 64.
 */
#define VH_RENDER_MAX_SLOTS 64
void vh_print_log2_hist(FILE *out, const __u64 *slots, int nslots,
			const char *val_type);

/* The four sections the seed article's BCC script prints on Ctrl-C. */
void vh_print_seed_text(FILE *out, const __u64 rx_pkts[VH_MAX_SLOTS],
			const __u64 rx_bytes[VH_MAX_SLOTS],
			const __u64 tx_pkts[VH_MAX_SLOTS],
			const __u64 tx_bytes[VH_MAX_SLOTS]);
extern const char vh_seed_banner[];

/* A cumulative snapshot read from the maps, CPUs summed. */
struct vh_entry {
	__u64 cgroup_id;	/* 0: overflow / unattributed */
	__u32 dir;
	struct vh_hist h;
};

struct vh_prog_stat {
	char name[16];
	__u64 run_cnt;
	__u64 run_time_ns;
};

struct vh_snapshot {
	struct vh_entry *entries;
	int nr_entries;
	__u64 counters[VH_NR_COUNTERS];
	__u64 overflow_events;
	struct vh_prog_stat stats[8];
	int nr_stats;
};

struct vh_maps {
	int hists_fd;
	int cgroup_slots_fd;
	int counters_fd;
	__u32 max_cgroups;
};

int vh_read_snapshot(const struct vh_maps *maps, struct vh_snapshot *snap);
void vh_free_snapshot(struct vh_snapshot *snap);
/* Fills snap->stats from BPF link fds (program behind each link). */
void vh_read_link_stats(const int *link_fds, int n, struct vh_snapshot *snap);

struct vh_json_ctx {
	const char *mode;
	const char *kernel;
	bool takeover;
	bool stats;
	__u32 max_cgroups;
	double interval_s;
	__u64 seq;
};

/* The seed's four histograms of a snapshot, all cgroups summed. */
void vh_print_snapshot_text(FILE *out, const struct vh_snapshot *snap);

/* One JSON line (schema: src/loader/schema.json). */
void vh_print_json(FILE *out, const struct vh_json_ctx *ctx,
		   const struct vh_snapshot *snap);

const char *vh_mode_name(enum vh_mode mode);
int vh_parse_cache_mode(const char *s, enum vh_cache_mode *mode);

#endif /* VH_COMMON_H */
