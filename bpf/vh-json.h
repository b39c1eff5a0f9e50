/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* JSON lines: the --json snapshots and the --probe result. */
#ifndef VH_JSON_H
#define VH_JSON_H

#include <stdbool.h>
#include <stdio.h>
#include <linux/types.h>
#include "vh-maps.h"

struct vh_json_ctx {
	const char *mode;
	const char *kernel;
	bool takeover;
	bool stats;
	__u32 max_cgroups;
	double interval_s;
	__u64 seq;
};

/* One JSON line (schema: src/loader/schema.json). */
void vh_print_json(FILE *out, const struct vh_json_ctx *ctx,
		   const struct vh_snapshot *snap);

/*
 * --probe's one JSON line (src/loader/probe.ts): mode is printed only when
 * exit_code is 0, reason only when it is not.
 */
void vh_print_probe(FILE *out, const char *kernel, int exit_code,
		    const char *mode, bool bpffs, const char *reason);

#endif /* VH_JSON_H */
