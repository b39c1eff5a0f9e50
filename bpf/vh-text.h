/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Text output byte for byte as BCC prints it (print_log2_hist, the seed's script). */
#ifndef VH_TEXT_H
#define VH_TEXT_H

#include <stdio.h>
#include <linux/types.h>
#include "vhost-hist.h"
#include "vh-maps.h"

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

/* The seed's four histograms of a snapshot, all cgroups summed. */
void vh_print_snapshot_text(FILE *out, const struct vh_snapshot *snap);

#endif /* VH_TEXT_H */
