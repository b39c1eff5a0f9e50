/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Stock-kernel mode's BTF checks: are its fentry/fexit targets there, and unique? */
#ifndef VH_STOCK_H
#define VH_STOCK_H

#include <stddef.h>

/*
 * 0 if stock mode can attach; else -ENOENT (a target missing) or -EEXIST
 * (a target libbpf would find in the wrong BTF object), with why filled.
 */
int vh_check_stock_targets(char *why, size_t len);

#endif /* VH_STOCK_H */
