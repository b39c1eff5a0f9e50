/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Exit codes, fatal messages and the names of modes and cache kinds. */
#ifndef VH_COMMON_H
#define VH_COMMON_H

#include <linux/types.h>
#include "vhost-hist.h"

/* Exit codes of vhost-hist (docs/bpf.md). */
enum vh_exit {
	VH_EXIT_OK = 0,
	VH_EXIT_ERROR = 1,		/* anything not listed below */
	VH_EXIT_USAGE = 2,
	VH_EXIT_NO_TRACEPOINT = 3,	/* no tracepoints and no stock-mode targets */
	VH_EXIT_NO_BTF = 4,		/* /sys/kernel/btf/vmlinux missing */
	VH_EXIT_NO_PERMISSION = 5,	/* EPERM/EACCES from bpf() */
	VH_EXIT_NO_BPFFS = 6,		/* --pin but the pin dir is not on bpffs */
	VH_EXIT_PIN_MISMATCH = 7,	/* pinned state from another layout */
};

/*
 * Prints "vhost-hist: <message>" on stderr, keeps the message in
 * vh_last_error (for --probe's JSON) and returns code.
 */
int vh_die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
extern char vh_last_error[1024];

/* VH_EXIT_NO_PERMISSION for EPERM/EACCES (either sign), else VH_EXIT_ERROR. */
int vh_errno_exit(int err);

const char *vh_mode_name(enum vh_mode mode);
int vh_parse_cache_mode(const char *s, enum vh_cache_mode *mode);

#endif /* VH_COMMON_H */
