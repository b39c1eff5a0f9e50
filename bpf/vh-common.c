// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "vh-common.h"

const char vh_seed_banner[] =
	"Aggregating data from vhost-net RX & TX virtqueues... Hit Ctrl-C to end.\n";

const char *vh_mode_name(enum vh_mode mode)
{
	switch (mode) {
	case VH_MODE_RAW_TP:
		return "raw_tp";
	case VH_MODE_TRACEPOINT:
		return "tracepoint";
	case VH_MODE_FENTRY:
		return "fentry";
	}
	return "unknown";
}

int vh_parse_cache_mode(const char *s, enum vh_cache_mode *mode)
{
	if (!strcmp(s, "stack"))
		*mode = VH_CACHE_STACK;
	else if (!strcmp(s, "percpu"))
		*mode = VH_CACHE_PERCPU;
	else if (!strcmp(s, "task"))
		*mode = VH_CACHE_TASK;
	else if (!strcmp(s, "none"))
		*mode = VH_CACHE_NONE;
	else
		return -EINVAL;
	return 0;
}

/*
 * BCC's _stars(): as many '*' as floor(width * val / val_max), at most width,
 * left-justified in a field of width characters.
 */
static void vh_stars(FILE *out, __u64 val, __u64 val_max, int width)
{
	unsigned __int128 n = (unsigned __int128)width * val / val_max;
	int i, stars = n > (unsigned)width ? width : (int)n;

	for (i = 0; i < stars; i++)
		fputc('*', out);
	for (; i < width; i++)
		fputc(' ', out);
}

void vh_print_log2_hist(FILE *out, const __u64 *slots, int nslots,
			const char *val_type)
{
	int i, idx_max = -1, width, stars;
	__u64 val_max = 0, low, high;
	bool wide;

	if (nslots > VH_RENDER_MAX_SLOTS)
		nslots = VH_RENDER_MAX_SLOTS;
	/* BCC index i holds vhosttrace slot i - 1; BCC's index 0 stays empty. */
	for (i = 0; i < nslots; i++) {
		if (slots[i] > 0)
			idx_max = i + 1;
		if (slots[i] > val_max)
			val_max = slots[i];
	}
	wide = idx_max > 32;
	width = wide ? 20 : 10;
	stars = wide ? 20 : 40;
	if (idx_max <= 0)
		return;
	if (wide)
		fprintf(out, "               %-29s : count     distribution\n", val_type);
	else
		fprintf(out, "     %-19s : count     distribution\n", val_type);

	for (i = 1; i <= idx_max; i++) {
		low = 1ULL << (i - 1);
		high = i == 64 ? ~0ULL : (1ULL << i) - 1;
		if (low == high)
			low--;
		fprintf(out, "%*llu -> %-*llu : %-8llu |", width,
			(unsigned long long)low, width, (unsigned long long)high,
			(unsigned long long)slots[i - 1]);
		vh_stars(out, slots[i - 1], val_max, stars);
		fputs("|\n", out);
	}
}

/* Python's print("\n") writes two newlines. */
static void vh_print_blank2(FILE *out)
{
	fputs("\n\n", out);
}

void vh_print_seed_text(FILE *out, const __u64 rx_pkts[VH_MAX_SLOTS],
			const __u64 rx_bytes[VH_MAX_SLOTS],
			const __u64 tx_pkts[VH_MAX_SLOTS],
			const __u64 tx_bytes[VH_MAX_SLOTS])
{
	/* Headings, underlines and labels of the seed article's script. */
	static const char *const heading[4] = {
		"Vhost-net RX log2 received packets histogram",
		"Vhost-net RX log2 total length histogram",
		"Vhost-net TX log2 sent packets histogram",
		"Vhost-net TX log2 total length histogram",
	};
	static const char *const label[4] = {
		"recv pkts", "total len", "sent pkts", "total len",
	};
	const __u64 *slots[4] = { rx_pkts, rx_bytes, tx_pkts, tx_bytes };
	size_t n;
	int i;

	vh_print_blank2(out);
	for (i = 0; i < 4; i++) {
		if (i == 2) {
			fputs("-------------------------------------------------\n", out);
			vh_print_blank2(out);
		}
		fprintf(out, "%s\n", heading[i]);
		for (n = strlen(heading[i]); n > 0; n--)
			fputc('-', out);
		fputc('\n', out);
		vh_print_log2_hist(out, slots[i], VH_MAX_SLOTS, label[i]);
		vh_print_blank2(out);
	}
}

void vh_print_snapshot_text(FILE *out, const struct vh_snapshot *snap)
{
	__u64 sums[VH_NR_DIRS][2][VH_MAX_SLOTS] = { 0 };

	/* The seed's script has no per-VM keys: sum over all cgroups. */
	for (int i = 0; i < snap->nr_entries; i++) {
		const struct vh_entry *e = &snap->entries[i];

		for (int k = 0; k < VH_MAX_SLOTS; k++) {
			sums[e->dir][0][k] += e->h.pkts[k];
			sums[e->dir][1][k] += e->h.bytes[k];
		}
	}
	vh_print_seed_text(out, sums[VH_DIR_RX][0], sums[VH_DIR_RX][1],
			   sums[VH_DIR_TX][0], sums[VH_DIR_TX][1]);
	fflush(out);
}

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

static void vh_json_buckets(FILE *out, const __u64 *slots)
{
	int i, last = -1;

	for (i = 0; i < VH_MAX_SLOTS; i++)
		if (slots[i])
			last = i;
	fputc('[', out);
	for (i = 0; i <= last; i++)
		fprintf(out, "%s%llu", i ? "," : "", (unsigned long long)slots[i]);
	fputc(']', out);
}

static void vh_json_string(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			fprintf(out, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(out, "\\u%04x", ch);
		else
			fputc(ch, out);
	}
	fputc('"', out);
}

void vh_print_json(FILE *out, const struct vh_json_ctx *ctx,
		   const struct vh_snapshot *snap)
{
	struct timespec ts;
	struct tm tm;
	char when[32];
	int i;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);

	fprintf(out, "{\"type\":\"snapshot\",\"version\":2,\"seq\":%llu,"
		"\"time\":\"%s.%03ldZ\",\"mode\":",
		(unsigned long long)ctx->seq, when, ts.tv_nsec / 1000000);
	vh_json_string(out, ctx->mode);
	fputs(",\"kernel\":", out);
	vh_json_string(out, ctx->kernel);
	fprintf(out, ",\"takeover\":%s,\"intervalSeconds\":%g,\"maxCgroups\":%u,"
		"\"dropped\":{\"keysRefused\":%llu,\"overflowEvents\":%llu},"
		"\"histograms\":[",
		ctx->takeover ? "true" : "false", ctx->interval_s, ctx->max_cgroups,
		(unsigned long long)snap->counters[VH_CNT_KEYS_REFUSED],
		(unsigned long long)snap->overflow_events);
	/*
	 * An entry is an array, [cgroupId, direction, runs, packets.sum,
	 * packets.buckets, bytes.sum, bytes.buckets], not an object: the
	 * agent parses hundreds of them a second, and keyed objects take
	 * JSON.parse twice as long (src/loader/schema.json).
	 */
	for (i = 0; i < snap->nr_entries; i++) {
		const struct vh_entry *e = &snap->entries[i];

		fprintf(out, "%s[%llu,\"%s\",%llu,%llu,", i ? "," : "",
			(unsigned long long)e->cgroup_id,
			e->dir == VH_DIR_RX ? "rx" : "tx",
			(unsigned long long)e->h.count,
			(unsigned long long)e->h.sum_pkts);
		vh_json_buckets(out, e->h.pkts);
		fprintf(out, ",%llu,", (unsigned long long)e->h.sum_bytes);
		vh_json_buckets(out, e->h.bytes);
		fputc(']', out);
	}
	fprintf(out, "],\"counters\":{\"slowPath\":%llu,\"noStorage\":%llu,"
		"\"stockUnpaired\":%llu}",
		(unsigned long long)snap->counters[VH_CNT_SLOW_PATH],
		(unsigned long long)snap->counters[VH_CNT_NO_STORAGE],
		(unsigned long long)snap->counters[VH_CNT_STOCK_UNPAIRED]);
	if (ctx->stats) {
		fputs(",\"progStats\":[", out);
		for (i = 0; i < snap->nr_stats; i++) {
			fprintf(out, "%s{\"name\":", i ? "," : "");
			vh_json_string(out, snap->stats[i].name);
			fprintf(out, ",\"runCount\":%llu,\"runTimeNs\":%llu}",
				(unsigned long long)snap->stats[i].run_cnt,
				(unsigned long long)snap->stats[i].run_time_ns);
		}
		fputc(']', out);
	}
	fputs("}\n", out);
	fflush(out);
}
