// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Text output byte for byte as BCC prints it (print_log2_hist, the seed's script). */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include "vh-text.h"

const char vh_seed_banner[] =
	"Aggregating data from vhost-net RX & TX virtqueues... Hit Ctrl-C to end.\n";


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
