// SPDX-License-Identifier: GPL-2.0
/*
 * vhost-hist: log2 histograms of packets and bytes per vhost-net worker run.
 *
 * Events come from vhost_net:vhost_net_rx_end / vhost_net_tx_end (raw_tp, or
 * classic tracepoint as a fallback), or, on a stock kernel without those
 * tracepoints, from fentry/fexit on handle_rx, handle_tx and
 * vhost_exceeds_weight. Every entry point calls vh_record(), the one handler.
 *
 * Per-VM keying: histograms are keyed by the worker's cgroup v2 id. Finding
 * it costs a helper call (bpf_get_current_task_btf: ~10 ns where returns are
 * mitigated) and four dependent loads, too much for every event (docs/bpf.md,
 * benchmark). raw_tp programs run on the kernel stack of the task that hit the
 * tracepoint, so the page of the stack their ctx lives on names that task for
 * free: a per-CPU cache maps it to the slot. A stack outlives its task only
 * to be reused by another one, and a task can change cgroup: both bump a
 * global generation (sched_process_exit, cgroup_attach_task) that every cache
 * entry must match, so a hit is always the current task's own cgroup.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "vhost-hist.h"

/* Knobs, set by the loader before load (the verifier prunes dead branches). */
const volatile bool per_cgroup = true;		/* key by cgroup at all */
const volatile __u32 cache_mode = VH_CACHE_STACK;	/* enum vh_cache_mode */
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

/*
 * Generation of the stack-keyed slot caches (VH_CACHE_STACK). A global, so
 * the hit path reads it with one load instead of a map lookup; alone in its
 * section, whose map (an ARRAY of one u64, the shape of the cache_gen map it
 * replaced) the loader pins and reuses as "cache_gen", so that programs of an
 * old and a new loader, of this version or an earlier one, share it after a
 * takeover.
 */
__u64 cache_gen SEC(VH_CACHE_GEN_SEC);

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

/* Per-CPU direct-mapped slot cache (VH_CACHE_PERCPU, VH_CACHE_STACK). */
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

/* floor(log2(v)) for 1 <= v <= 255, and 0 for v == 0. */
static const __u8 vh_log2_byte[256] = {
#define VH_R2(n)	n, n
#define VH_R4(n)	VH_R2(n), VH_R2(n)
#define VH_R8(n)	VH_R4(n), VH_R4(n)
#define VH_R16(n)	VH_R8(n), VH_R8(n)
#define VH_R32(n)	VH_R16(n), VH_R16(n)
#define VH_R64(n)	VH_R32(n), VH_R32(n)
#define VH_R128(n)	VH_R64(n), VH_R64(n)
	0, 0, VH_R2(1), VH_R4(2), VH_R8(3), VH_R16(4), VH_R32(5), VH_R64(6), VH_R128(7)
};

/*
 * The barrier keeps clang from dropping the mask after the caller's range
 * check; the verifier needs it to bound the table index.
 */
static __always_inline __u32 vh_log2_low(__u32 byte)
{
	barrier_var(byte);
	return vh_log2_byte[byte & 0xff];
}

/*
 * The slot of docs/bpf.md ("Histogram convention"): floor(log2(v)) for v >= 1,
 * 0 for v == 0. BPF has no count-leading-zeros; a table lookup after one or
 * two well-predicted branches is ~5 ns cheaper per event than a branch-free
 * binary search.
 */
static __always_inline __u32 vh_slot(__u32 v)
{
	__u32 slot;

	if (v >> 16)
		slot = v >> 24 ? 24 + vh_log2_low(v >> 24) : 16 + vh_log2_low(v >> 16);
	else
		slot = v >> 8 ? 8 + vh_log2_low(v >> 8) : vh_log2_low(v);
	barrier_var(slot);
	return slot & (VH_MAX_SLOTS - 1);
}

/* Out of line: the fast paths stay compact; this runs once per cache miss. */
static __noinline __u32 vh_slot_of_cgroup(__u64 cgid)
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

/* Direct-mapped way of a cache key: folds in the bits above the stack page's. */
static __always_inline struct vh_slot_cache_entry *vh_way(struct vh_slot_cache *c, __u64 key)
{
	return &c->e[(key ^ key >> 4) & (VH_SLOT_CACHE_WAYS - 1)];
}

static __always_inline void vh_fill(struct vh_slot_cache_entry *e, __u64 key, __u32 slot)
{
	e->key = key;
	e->idx[VH_DIR_RX] = slot * VH_NR_DIRS + VH_DIR_RX;
	e->idx[VH_DIR_TX] = slot * VH_NR_DIRS + VH_DIR_TX;
}

/*
 * The per-CPU caches (VH_CACHE_STACK, VH_CACHE_PERCPU): the entry of the
 * current task, refilled on a miss. Its idx[] is the histograms' map key, so
 * the lookup reads it in place (one dependent step less than a key on the
 * stack).
 */
static __always_inline struct vh_slot_cache_entry *vh_cached_entry(void *ctx)
{
	struct vh_slot_cache_entry *e;
	struct vh_slot_cache *c;
	__u32 zero = 0;
	__u64 key;

	c = bpf_map_lookup_elem(&slot_cache, &zero);
	if (!c)
		return NULL;
	if (cache_mode == VH_CACHE_PERCPU) {
		/*
		 * Exact: cgroup ids are never reused, and a slot, once given to a
		 * cgroup id, stays its own while the maps live. A refill is not
		 * atomic, so both caches are for programs that run with preemption
		 * disabled (tracepoints); stock mode uses the task cache, which
		 * only its own task touches.
		 */
		key = vh_current_cgroup_id();
		e = vh_way(c, key);
		if (e->key != key) {
			vh_count(VH_CNT_SLOW_PATH);
			vh_fill(e, key, vh_slot_of_cgroup(key));
		}
		return e;
	}

	/*
	 * VH_CACHE_STACK. ctx is the argument array bpf_trace_run*() keeps on
	 * the stack of current (vhost_net's tracepoints fire in worker context
	 * only). The verifier lets a tracing program with CAP_PERFMON store a
	 * pointer but not shift it: the store and the volatile load make it a
	 * number. Pages, not stacks: right for any THREAD_SIZE.
	 */
	c->scratch = (__u64)ctx;
	key = *(volatile __u64 *)&c->scratch >> 12;
	e = vh_way(c, key);
	if (e->key == key && e->gen == *(volatile __u64 *)&cache_gen)
		return e;
	vh_count(VH_CNT_SLOW_PATH);
	/*
	 * The generation first, with a full barrier (an atomic add of 0): a
	 * move that this read of the cgroup misses bumps it afterwards.
	 */
	e->gen = __sync_fetch_and_add(&cache_gen, 0);
	vh_fill(e, key, vh_slot_of_cgroup(vh_current_cgroup_id()));
	return e;
}

/* The histogram slot of the current task, without the per-CPU caches. */
static __always_inline __u32 vh_current_slot(void)
{
	struct task_struct *task;
	struct vh_task *st;
	__u32 slot;
	__u64 cgid;

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

static __always_inline struct vh_hist *vh_current_hist(void *ctx, __u32 dir)
{
	struct vh_slot_cache_entry *e;
	__u32 idx;

	if (per_cgroup && (cache_mode == VH_CACHE_STACK || cache_mode == VH_CACHE_PERCPU)) {
		e = vh_cached_entry(ctx);
		if (e)
			return bpf_map_lookup_elem(&hists, &e->idx[dir & 1]);
		idx = vh_slot_of_cgroup(vh_current_cgroup_id()) * VH_NR_DIRS + dir;
	} else if (per_cgroup) {
		idx = vh_current_slot() * VH_NR_DIRS + dir;
	} else {
		idx = max_cgroups * VH_NR_DIRS + dir;
	}
	return bpf_map_lookup_elem(&hists, &idx);
}

/* The one handler: every attach type ends here. */
static __always_inline void vh_record(void *ctx, __u32 dir, __u32 pkts, __u32 bytes)
{
	struct vh_hist *h = vh_current_hist(ctx, dir);

	if (!h)
		return;
	/* started first, count last: the loader's torn-copy check (vhost-hist.h). */
	if (atomic_updates) {
		__sync_fetch_and_add(&h->started, 1);
		__sync_fetch_and_add(&h->sum_pkts, pkts);
		__sync_fetch_and_add(&h->sum_bytes, bytes);
		__sync_fetch_and_add(&h->pkts[vh_slot(pkts)], 1);
		__sync_fetch_and_add(&h->bytes[vh_slot(bytes)], 1);
		__sync_fetch_and_add(&h->count, 1);
		return;
	}
	/*
	 * Per-CPU value, programs do not nest on one CPU: plain adds are exact.
	 * x86 keeps stores in order; the barriers keep the compiler from moving them.
	 */
	h->started++;
	barrier();
	h->sum_pkts += pkts;
	h->sum_bytes += bytes;
	h->pkts[vh_slot(pkts)]++;
	h->bytes[vh_slot(bytes)]++;
	barrier();
	h->count++;
}

/* raw_tp: the cheapest attach type, no BTF needed for the tracepoint. */
SEC("raw_tp/vhost_net_rx_end")
int BPF_PROG(vh_rx_raw, int recv_pkts, int total_len)
{
	vh_record(ctx, VH_DIR_RX, recv_pkts, total_len);
	return 0;
}

SEC("raw_tp/vhost_net_tx_end")
int BPF_PROG(vh_tx_raw, int sent_pkts, int total_len)
{
	vh_record(ctx, VH_DIR_TX, sent_pkts, total_len);
	return 0;
}

/*
 * VH_CACHE_STACK invalidation. A task's stack is freed, and may go to a new
 * task, only after the task has exited; sched_process_exit fires in do_exit()
 * before that, and a vhost worker hits no vhost_net tracepoint after it. A
 * task that moves cgroup (cgroup_attach_task fires once the move is done)
 * must not keep its old slot either. Both are rare next to vhost events.
 */
static __always_inline void vh_gen_bump(void)
{
	__sync_fetch_and_add(&cache_gen, 1);
}

SEC("raw_tp/sched_process_exit")
int BPF_PROG(vh_gen_exit)
{
	vh_gen_bump();
	return 0;
}

SEC("raw_tp/cgroup_attach_task")
int BPF_PROG(vh_gen_attach)
{
	vh_gen_bump();
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
	vh_record(ev, VH_DIR_RX, ev->pkts, ev->total_len);
	return 0;
}

SEC("tracepoint/vhost_net/vhost_net_tx_end")
int vh_tx_tp(struct vh_tp_event *ev)
{
	vh_record(ev, VH_DIR_TX, ev->pkts, ev->total_len);
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

static __always_inline void vh_stock_exit(void *ctx, __u32 dir)
{
	struct vh_task *st;

	st = bpf_task_storage_get(&task_state, bpf_get_current_task_btf(), 0, 0);
	if (!st || st->stock_dir != dir + 1) {
		vh_count(VH_CNT_STOCK_UNPAIRED);
		return;
	}
	st->stock_dir = 0;
	if (st->stock_armed)
		vh_record(ctx, dir, st->stock_pkts, st->stock_bytes);
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
	vh_stock_exit(ctx, VH_DIR_RX);
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
	vh_stock_exit(ctx, VH_DIR_TX);
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
