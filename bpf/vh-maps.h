/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Reading the maps into a snapshot: CPUs summed, each CPU's copy whole. */
#ifndef VH_MAPS_H
#define VH_MAPS_H

#include <linux/types.h>
#include "vhost-hist.h"

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

#endif /* VH_MAPS_H */
