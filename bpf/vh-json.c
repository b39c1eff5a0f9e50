// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* JSON lines: the --json snapshots and the --probe result. */
#include <stdio.h>
#include <time.h>
#include "vh-json.h"

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

/* A JSON string: the one escaper of every JSON line vhost-hist prints. */
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

void vh_print_probe(FILE *out, const char *kernel, int exit_code,
		    const char *mode, bool bpffs, const char *reason)
{
	fprintf(out, "{\"type\":\"probe\",\"version\":1,\"kernel\":");
	vh_json_string(out, kernel);
	fprintf(out, ",\"ok\":%s,\"mode\":", exit_code ? "false" : "true");
	if (exit_code)
		fprintf(out, "null");
	else
		vh_json_string(out, mode);
	fprintf(out, ",\"exitCode\":%d,\"bpffs\":%s,\"reason\":", exit_code,
		bpffs ? "true" : "false");
	vh_json_string(out, exit_code ? reason : "");
	fprintf(out, "}\n");
}
