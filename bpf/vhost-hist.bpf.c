// SPDX-License-Identifier: GPL-2.0
/*
 * vhost-hist: log2 histograms of packets and bytes per vhost-net worker run.
 *
 * Events come from vhost_net:vhost_net_rx_end / vhost_net_tx_end (raw_tp, or
 * classic tracepoint as a fallback), or, on a stock kernel without those
 * tracepoints, from fentry/fexit on handle_rx, handle_tx and
 * vhost_exceeds_weight. Every entry point calls vh_record(), the one handler.
 *
 * Per-VM keying: histograms are keyed by the worker's cgroup v2 id. Looking
 * the id up in a hash on every event is too slow (docs/bpf.md, benchmark), so
 * each worker task caches its histogram slot in task local storage, validated
 * by its css_set pointer: a task that changes cgroup gets a new css_set and
 * misses the cache once.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "vhost-hist.h"

/* Knobs, set by the loader before load (the verifier prunes dead branches). */
const volatile bool per_cgroup = true;		/* key by cgroup at all */
const volatile __u32 cache_mode = VH_CACHE_PERCPU;	/* enum vh_cache_mode */
const volatile __u32 max_cgroups = VH_DEFAULT_MAX_CGROUPS;
/*
 * Atomic adds: for fentry/fexit, which run with migration but not preemption
 * disabled, so two workers of one VM could interleave on a CPU on a fully
 * preemptible kernel. Tracepoint programs run with preemption disabled.
 */
const volatile bool atomic_updates = false;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, (VH_DEFAULT_MAX_CGROUPS + 1) * VH_NR_DIRS);
	__type(key, __u32);
	__type(value, struct vh_hist);
} hists SEC(".maps");

/* cgroup id -> slot; a slot is never reused while the maps live. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VH_DEFAULT_MAX_CGROUPS);
	__type(key, __u64);
	__type(value, __u32);
} cgroup_slots SEC(".maps");

/* Slot allocator: a map, not .bss, so that it survives a takeover. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} next_slot SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VH_NR_COUNTERS);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct vh_task);
} task_state SEC(".maps");

/* Per-CPU direct-mapped cache cgroup id -> slot (VH_CACHE_PERCPU). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vh_slot_cache);
} slot_cache SEC(".maps");

/* Written by the loader only; pinned so a successor knows the layout. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vh_meta);
} meta SEC(".maps");

static __always_inline void vh_count(__u32 which)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &which);

	if (c)
		(*c)++;
}

/* floor(log2(v)) for v >= 1, and 0 for v == 0: the slot of DESIGN.md. */
static __always_inline __u32 vh_log2(__u32 v)
{
	__u32 r = 0, shift;

	shift = (v >= 1U << 16) << 4;
	v >>= shift;
	r |= shift;
	shift = (v >= 1U << 8) << 3;
	v >>= shift;
	r |= shift;
	shift = (v >= 1U << 4) << 2;
	v >>= shift;
	r |= shift;
	shift = (v >= 1U << 2) << 1;
	v >>= shift;
	r |= shift;
	r |= v >> 1;
	return r;
}

/*
 * The slot as an index the verifier can bound. The barrier keeps clang from
 * folding the mask into vh_log2()'s last step, where 6.1's verifier loses
 * the bound of the OR.
 */
static __always_inline __u32 vh_slot(__u32 v)
{
	__u32 slot = vh_log2(v);

	barrier_var(slot);
	return slot & (VH_MAX_SLOTS - 1);
}

static __always_inline __u32 vh_slot_of_cgroup(__u64 cgid)
{
	__u32 zero = 0, n, *slot, *next;

	slot = bpf_map_lookup_elem(&cgroup_slots, &cgid);
	if (slot)
		return *slot;

	next = bpf_map_lookup_elem(&next_slot, &zero);
	if (!next || *next >= max_cgroups)
		goto refused;
	n = __sync_fetch_and_add(next, 1);
	if (n >= max_cgroups)
		goto refused;
	if (bpf_map_update_elem(&cgroup_slots, &cgid, &n, BPF_NOEXIST) == 0)
		return n;
	/* Another CPU inserted the same cgroup first; n stays unused. */
	slot = bpf_map_lookup_elem(&cgroup_slots, &cgid);
	if (slot)
		return *slot;
refused:
	vh_count(VH_CNT_KEYS_REFUSED);
	return max_cgroups;
}

/* The cgroup v2 id of current, as bpf_get_current_cgroup_id() computes it, by BTF loads. */
static __always_inline __u64 vh_current_cgroup_id(void)
{
	struct task_struct *task = bpf_get_current_task_btf();

	return task->cgroups->dfl_cgrp->kn->id;
}

static __always_inline __u32 vh_current_slot(void)
{
	struct vh_slot_cache_entry *e;
	struct vh_slot_cache *c;
	struct task_struct *task;
	struct vh_task *st;
	__u32 zero = 0, slot;
	__u64 cgid;

	if (!per_cgroup)
		return max_cgroups;

	if (cache_mode == VH_CACHE_PERCPU) {
		/*
		 * Exact: cgroup ids are never reused, and a slot, once given to a
		 * cgroup id, stays its own while the maps live. The two stores of a
		 * refill are not atomic, so this cache is for programs that run
		 * with preemption disabled (tracepoints); stock mode uses the task
		 * cache, which only its own task touches.
		 */
		cgid = vh_current_cgroup_id();
		c = bpf_map_lookup_elem(&slot_cache, &zero);
		if (!c)
			return vh_slot_of_cgroup(cgid);
		e = &c->e[cgid & (VH_SLOT_CACHE_WAYS - 1)];
		if (e->cgid == cgid)
			return e->slot;
		vh_count(VH_CNT_SLOW_PATH);
		slot = vh_slot_of_cgroup(cgid);
		e->cgid = cgid;
		e->slot = slot;
		return slot;
	}

	if (cache_mode == VH_CACHE_NONE)
		return vh_slot_of_cgroup(bpf_get_current_cgroup_id());

	/*
	 * VH_CACHE_TASK: each task caches its slot with the cgroup id it was
	 * for (a task that moves cgroup misses once). Only the task itself
	 * touches its storage, so this is safe in preemptible programs.
	 */
	task = bpf_get_current_task_btf();
	cgid = task->cgroups->dfl_cgrp->kn->id;
	st = bpf_task_storage_get(&task_state, task, 0,
				  BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!st) {
		vh_count(VH_CNT_NO_STORAGE);
		return vh_slot_of_cgroup(cgid);
	}
	if (st->cgid == cgid)
		return st->slot;

	vh_count(VH_CNT_SLOW_PATH);
	slot = vh_slot_of_cgroup(cgid);
	st->slot = slot;
	st->cgid = cgid;
	return slot;
}

/* The one handler: every attach type ends here. */
static __always_inline void vh_record(__u32 dir, __u32 pkts, __u32 bytes)
{
	struct vh_hist *h;
	__u32 idx;

	idx = vh_current_slot() * VH_NR_DIRS + dir;
	h = bpf_map_lookup_elem(&hists, &idx);
	if (!h)
		return;
	if (atomic_updates) {
		__sync_fetch_and_add(&h->count, 1);
		__sync_fetch_and_add(&h->sum_pkts, pkts);
		__sync_fetch_and_add(&h->sum_bytes, bytes);
		__sync_fetch_and_add(&h->pkts[vh_slot(pkts)], 1);
		__sync_fetch_and_add(&h->bytes[vh_slot(bytes)], 1);
		return;
	}
	/* Per-CPU value, programs do not nest on one CPU: plain adds are exact. */
	h->count++;
	h->sum_pkts += pkts;
	h->sum_bytes += bytes;
	h->pkts[vh_slot(pkts)]++;
	h->bytes[vh_slot(bytes)]++;
}

/* raw_tp: the cheapest attach type, no BTF needed for the tracepoint. */
SEC("raw_tp/vhost_net_rx_end")
int BPF_PROG(vh_rx_raw, int recv_pkts, int total_len)
{
	vh_record(VH_DIR_RX, recv_pkts, total_len);
	return 0;
}

SEC("raw_tp/vhost_net_tx_end")
int BPF_PROG(vh_tx_raw, int sent_pkts, int total_len)
{
	vh_record(VH_DIR_TX, sent_pkts, total_len);
	return 0;
}

/* Classic tracepoint: the event record of TRACE_EVENT(vhost_net_*_end). */
struct vh_tp_event {
	__u64 common;		/* common_type, flags, preempt_count, pid */
	int pkts;
	int total_len;
};

SEC("tracepoint/vhost_net/vhost_net_rx_end")
int vh_rx_tp(struct vh_tp_event *ev)
{
	vh_record(VH_DIR_RX, ev->pkts, ev->total_len);
	return 0;
}

SEC("tracepoint/vhost_net/vhost_net_tx_end")
int vh_tx_tp(struct vh_tp_event *ev)
{
	vh_record(VH_DIR_TX, ev->pkts, ev->total_len);
	return 0;
}

/*
 * Stock kernel: the loop of handle_rx / handle_tx_{copy,zerocopy} ends with
 * `while (!vhost_exceeds_weight(vq, ++pkts, total_len))`. The last call's
 * arguments are the run's totals (0, 0 when the first iteration breaks out),
 * emitted when handle_rx / handle_tx return. Both handlers call
 * vhost_disable_notify() after their early exits (no backend, metadata
 * prefetch failed) and before the loop; the tracepoints report only runs that
 * got that far, so stock mode emits only runs that called it ("armed").
 */
static __always_inline void vh_stock_enter(__u32 dir)
{
	struct vh_task *st;

	st = bpf_task_storage_get(&task_state, bpf_get_current_task_btf(), 0,
				  BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!st) {
		vh_count(VH_CNT_NO_STORAGE);
		return;
	}
	st->stock_dir = dir + 1;
	st->stock_pkts = 0;
	st->stock_bytes = 0;
	st->stock_armed = 0;
}

static __always_inline void vh_stock_exit(__u32 dir)
{
	struct vh_task *st;

	st = bpf_task_storage_get(&task_state, bpf_get_current_task_btf(), 0, 0);
	if (!st || st->stock_dir != dir + 1) {
		vh_count(VH_CNT_STOCK_UNPAIRED);
		return;
	}
	st->stock_dir = 0;
	if (st->stock_armed)
		vh_record(dir, st->stock_pkts, st->stock_bytes);
}

SEC("fentry/handle_rx")
int BPF_PROG(vh_stock_rx_enter)
{
	vh_stock_enter(VH_DIR_RX);
	return 0;
}

SEC("fexit/handle_rx")
int BPF_PROG(vh_stock_rx_exit)
{
	vh_stock_exit(VH_DIR_RX);
	return 0;
}

SEC("fentry/handle_tx")
int BPF_PROG(vh_stock_tx_enter)
{
	vh_stock_enter(VH_DIR_TX);
	return 0;
}

SEC("fexit/handle_tx")
int BPF_PROG(vh_stock_tx_exit)
{
	vh_stock_exit(VH_DIR_TX);
	return 0;
}

SEC("fentry/vhost_disable_notify")
int BPF_PROG(vh_stock_arm)
{
	struct vh_task *st;

	st = bpf_task_storage_get(&task_state, bpf_get_current_task_btf(), 0, 0);
	if (st && st->stock_dir)
		st->stock_armed = 1;
	return 0;
}

SEC("fentry/vhost_exceeds_weight")
int BPF_PROG(vh_stock_weight, void *vq, int pkts, int total_len)
{
	struct vh_task *st;

	st = bpf_task_storage_get(&task_state, bpf_get_current_task_btf(), 0, 0);
	if (st && st->stock_dir) {
		st->stock_pkts = pkts;
		st->stock_bytes = total_len;
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
