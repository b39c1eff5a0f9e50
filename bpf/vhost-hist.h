/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Layout shared by vhost-hist.bpf.c (kernel side) and vhost-hist.c (loader).
 * One place defines it; neither side guesses it.
 */
#ifndef VHOST_HIST_H
#define VHOST_HIST_H

/*
 * Log2 slots per histogram. Slot 0 holds values 0..1, slot k holds
 * 2^k..2^(k+1)-1 (docs/bpf.md). The tracepoint arguments are ints; the
 * programs treat them as u32, so 32 slots hold every possible value and no
 * event is ever clamped.
 */
#define VH_MAX_SLOTS		32

#define VH_DIR_RX		0
#define VH_DIR_TX		1
#define VH_NR_DIRS		2

/* Default number of distinct cgroups (VMs) one node keeps apart. */
#define VH_DEFAULT_MAX_CGROUPS	128

/*
 * One histogram pair (packets and bytes per run) for one (cgroup, direction).
 * Lives in a per-CPU array at index slot * VH_NR_DIRS + dir; the loader sums
 * the CPUs. Slot index max_cgroups is the overflow slot: events of cgroups
 * that did not fit, still counted, reported under cgroup id 0.
 *
 * The loader's copy of a CPU's value can overlap that CPU's update (the
 * kernel copies it word by word, in address order). So an update bumps
 * `started` (the last word) first and `count` (the first word) last: a copy
 * with count == started saw no update half-done (vh-maps.c retries others).
 */
struct vh_hist {
	__u64 count;		/* events (runs) finished: written last, copied first */
	__u64 sum_pkts;		/* exact sum of packets over all runs */
	__u64 sum_bytes;	/* exact sum of bytes over all runs */
	__u64 pkts[VH_MAX_SLOTS];
	__u64 bytes[VH_MAX_SLOTS];
	__u64 started;		/* events begun: written first, copied last */
};

/* Per-task state (BPF_MAP_TYPE_TASK_STORAGE), one per vhost worker. */
struct vh_task {
	__u64 cgid;		/* cgroup id the cached slot is for (0: none) */
	__u32 slot;		/* cached histogram slot of that cgroup */
	__u32 stock_dir;	/* stock mode: 0 idle, 1 + dir inside handle_{rx,tx} */
	__u32 stock_pkts;	/* stock mode: last vhost_exceeds_weight() args */
	__u32 stock_bytes;
	__u32 stock_armed;	/* stock mode: vhost_disable_notify() seen, loop reached */
	__u32 pad;
};

/* How the per-VM programs find the histogram slot of the current task. */
enum vh_cache_mode {
	VH_CACHE_PERCPU = 0,	/* per-CPU cache cgroup id -> slot */
	VH_CACHE_TASK,		/* task local storage, validated by cgroup id */
	VH_CACHE_NONE,		/* cgroup id + hash lookup on every event */
	VH_CACHE_STACK,		/* per-CPU cache stack page -> slot (raw_tp default) */
};

#define VH_SLOT_CACHE_WAYS	16

/*
 * One way of the per-CPU slot cache. VH_CACHE_PERCPU: key is the cgroup id
 * (0: empty, no cgroup has id 0), gen unused. VH_CACHE_STACK: key is the page
 * of current's kernel stack, valid while gen equals the global generation.
 */
struct vh_slot_cache_entry {
	__u64 key;
	__u64 gen;
	__u32 idx[VH_NR_DIRS];	/* the histograms' keys: slot * VH_NR_DIRS + dir */
	__u64 pad;		/* 32 bytes: a way is a shift away */
};

struct vh_slot_cache {
	__u64 scratch;		/* VH_CACHE_STACK: turns the ctx pointer into a number */
	struct vh_slot_cache_entry e[VH_SLOT_CACHE_WAYS];
};

/* Indices of the global counters array (`counters`, per-CPU). */
enum vh_counter {
	VH_CNT_KEYS_REFUSED = 0,	/* new cgroups that did not fit */
	VH_CNT_SLOW_PATH,		/* cache misses: cgroup id looked up */
	VH_CNT_NO_STORAGE,		/* task storage unavailable */
	VH_CNT_STOCK_UNPAIRED,		/* stock mode: exit without entry */
	VH_NR_COUNTERS,
};

/* Attach modes; the loader's `mode` in JSON uses these names. */
enum vh_mode {
	VH_MODE_RAW_TP = 1,	/* raw_tp on vhost_net_{rx,tx}_end */
	VH_MODE_TRACEPOINT,	/* classic tracepoint, fallback */
	VH_MODE_FENTRY,		/* stock kernel: fentry/fexit */
};

/* Pinned with the maps so a new loader knows what it takes over. */
struct vh_meta {
	__u32 magic;		/* VH_META_MAGIC */
	__u32 layout;		/* VH_LAYOUT_VERSION */
	__u32 mode;		/* enum vh_mode */
	__u32 max_cgroups;
	__u64 started_ns;	/* CLOCK_REALTIME ns of the first start */
	__u32 cache;		/* enum vh_cache_mode the programs were loaded with */
	__u32 per_cgroup;	/* 0: loaded with --no-cgroup */
};

/*
 * The section of the cache_gen global, and the name its map is pinned under
 * (that of the map it was before it became a global: the layout is unchanged).
 */
#define VH_CACHE_GEN_SEC	".data.gen"
#define VH_CACHE_GEN_PIN	"cache_gen"

#define VH_META_MAGIC		0x76686973	/* "vhis" */
#define VH_LAYOUT_VERSION	2

#endif /* VHOST_HIST_H */
