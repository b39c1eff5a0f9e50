// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Exit codes, fatal messages and the names of modes and cache kinds. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "vh-common.h"

char vh_last_error[1024];

int vh_die(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(vh_last_error, sizeof(vh_last_error), fmt, ap);
	va_end(ap);
	fprintf(stderr, "vhost-hist: %s\n", vh_last_error);
	return code;
}

int vh_errno_exit(int err)
{
	err = err < 0 ? -err : err;
	return err == EPERM || err == EACCES ? VH_EXIT_NO_PERMISSION : VH_EXIT_ERROR;
}

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
