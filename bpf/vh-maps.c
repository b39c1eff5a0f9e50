// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Reading the maps into a snapshot: CPUs summed, each CPU's copy whole. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "vh-maps.h"

/* A CPU's value copied while no update of it was half-done (vhost-hist.h). */
static bool vh_hist_whole(const struct vh_hist *h)
{
	__u64 pkts = 0, bytes = 0;
	int k;

	if (h->count != h->started)
		return false;
	for (k = 0; k < VH_MAX_SLOTS; k++) {
		pkts += h->pkts[k];
		bytes += h->bytes[k];
	}
	return pkts == h->count && bytes == h->count;
}

/*
 * Tries per histogram; after the first few, 1 ms apart: an fentry program
 * preempted mid-update keeps its CPU's value torn until it runs again.
 */
#define VH_READ_TRIES		40
#define VH_READ_FAST_TRIES	4

/* Sums the CPUs' values of one histogram, each from a copy that is whole. */
static int vh_read_percpu_hist(int fd, __u32 idx, struct vh_hist *sum)
{
	int ncpus = libbpf_num_possible_cpus(), missing, c, k, t, err = 0;
	const struct timespec pause = { .tv_nsec = 1000000 };
	struct vh_hist *vals, *whole;
	bool *have;

	if (ncpus <= 0)
		return -EINVAL;
	vals = calloc(2 * (size_t)ncpus, sizeof(*vals));
	have = calloc(ncpus, sizeof(*have));
	if (!vals || !have) {
		err = -ENOMEM;
		goto out;
	}
	whole = vals + ncpus;
	for (t = 0, missing = ncpus; missing && t < VH_READ_TRIES; t++) {
		if (t >= VH_READ_FAST_TRIES)
			nanosleep(&pause, NULL);
		if (bpf_map_lookup_elem(fd, &idx, vals)) {
			err = -errno;
			goto out;
		}
		for (c = 0; c < ncpus; c++) {
			if (have[c] || !vh_hist_whole(&vals[c]))
				continue;
			whole[c] = vals[c];
			have[c] = true;
			missing--;
		}
	}
	if (missing) {
		err = -EAGAIN;
		goto out;
	}
	memset(sum, 0, sizeof(*sum));
	for (c = 0; c < ncpus; c++) {
		sum->count += whole[c].count;
		sum->started += whole[c].started;
		sum->sum_pkts += whole[c].sum_pkts;
		sum->sum_bytes += whole[c].sum_bytes;
		for (k = 0; k < VH_MAX_SLOTS; k++) {
			sum->pkts[k] += whole[c].pkts[k];
			sum->bytes[k] += whole[c].bytes[k];
		}
	}
out:
	free(vals);
	free(have);
	return err;
}

static int vh_entry_cmp(const void *a, const void *b)
{
	const struct vh_entry *x = a, *y = b;

	if (x->cgroup_id != y->cgroup_id)
		return x->cgroup_id < y->cgroup_id ? -1 : 1;
	return (int)x->dir - (int)y->dir;
}

static int vh_add_slot(const struct vh_maps *maps, struct vh_snapshot *snap,
		       __u64 cgid, __u32 slot)
{
	struct vh_hist h;
	__u32 dir;
	int err;

	for (dir = 0; dir < VH_NR_DIRS; dir++) {
		err = vh_read_percpu_hist(maps->hists_fd, slot * VH_NR_DIRS + dir, &h);
		if (err)
			return err;
		if (slot == maps->max_cgroups)
			snap->overflow_events += h.count;
		if (!h.count)
			continue;
		snap->entries[snap->nr_entries].cgroup_id = cgid;
		snap->entries[snap->nr_entries].dir = dir;
		snap->entries[snap->nr_entries].h = h;
		snap->nr_entries++;
	}
	return 0;
}

int vh_read_snapshot(const struct vh_maps *maps, struct vh_snapshot *snap)
{
	int ncpus = libbpf_num_possible_cpus(), err, c;
	__u64 key, next, *cvals;
	__u32 slot, i;
	bool first = true;

	memset(snap, 0, sizeof(*snap));
	snap->entries = calloc((maps->max_cgroups + 1) * VH_NR_DIRS,
			       sizeof(*snap->entries));
	if (!snap->entries)
		return -ENOMEM;

	if (maps->cgroup_slots_fd >= 0) {
		while (bpf_map_get_next_key(maps->cgroup_slots_fd,
					    first ? NULL : &key, &next) == 0) {
			first = false;
			key = next;
			if (bpf_map_lookup_elem(maps->cgroup_slots_fd, &key, &slot))
				continue;	/* cannot happen: slots are never deleted */
			if (slot >= maps->max_cgroups)
				continue;
			err = vh_add_slot(maps, snap, key, slot);
			if (err)
				goto fail;
		}
	}
	err = vh_add_slot(maps, snap, 0, maps->max_cgroups);
	if (err)
		goto fail;
	qsort(snap->entries, snap->nr_entries, sizeof(*snap->entries), vh_entry_cmp);

	cvals = calloc(ncpus, sizeof(*cvals));
	if (!cvals) {
		err = -ENOMEM;
		goto fail;
	}
	for (i = 0; i < VH_NR_COUNTERS; i++) {
		if (bpf_map_lookup_elem(maps->counters_fd, &i, cvals))
			continue;
		for (c = 0; c < ncpus; c++)
			snap->counters[i] += cvals[c];
	}
	free(cvals);
	return 0;
fail:
	/* Nothing to free for the caller: a failed read leaves no snapshot. */
	vh_free_snapshot(snap);
	return err;
}

void vh_free_snapshot(struct vh_snapshot *snap)
{
	free(snap->entries);
	snap->entries = NULL;
}

void vh_read_link_stats(const int *link_fds, int n, struct vh_snapshot *snap)
{
	struct bpf_link_info linfo;
	struct bpf_prog_info pinfo;
	__u32 len;
	int i, pfd;

	for (i = 0; i < n && snap->nr_stats < 8; i++) {
		if (link_fds[i] < 0)
			continue;
		memset(&linfo, 0, sizeof(linfo));
		len = sizeof(linfo);
		if (bpf_obj_get_info_by_fd(link_fds[i], &linfo, &len))
			continue;
		pfd = bpf_prog_get_fd_by_id(linfo.prog_id);
		if (pfd < 0)
			continue;
		memset(&pinfo, 0, sizeof(pinfo));
		len = sizeof(pinfo);
		if (!bpf_obj_get_info_by_fd(pfd, &pinfo, &len)) {
			struct vh_prog_stat *s = &snap->stats[snap->nr_stats++];

			snprintf(s->name, sizeof(s->name), "%s", pinfo.name);
			s->run_cnt = pinfo.run_cnt;
			s->run_time_ns = pinfo.run_time_ns;
		}
		close(pfd);
	}
}
