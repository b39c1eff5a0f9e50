// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Stock-kernel mode's BTF checks: are its fentry/fexit targets there, and unique? */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <bpf/btf.h>
#include "vh-stock.h"

static bool btf_has_func(const char *path, struct btf *base, const char *name)
{
	struct btf *btf = btf__parse_split(path, base);
	bool found;

	if (!btf)
		return false;
	found = btf__find_by_name_kind(btf, name, BTF_KIND_FUNC) > 0;
	btf__free(btf);
	return found;
}

/*
 * Stock mode needs handle_rx and handle_tx in vhost_net's BTF, and
 * vhost_exceeds_weight and vhost_disable_notify in vhost's. libbpf 1.1 attaches to the first BTF
 * object that has a name, so refuse when vmlinux or another module has one.
 */
int vh_check_stock_targets(char *why, size_t len)
{
	static const char *const funcs[] = { "handle_rx", "handle_tx" };
	struct btf *vmlinux = btf__load_vmlinux_btf();
	char path[4352];
	struct dirent *de;
	DIR *d;
	size_t i;
	int err = 0;

	if (!vmlinux) {
		snprintf(why, len, "cannot read vmlinux BTF");
		return -ENOENT;
	}
	for (i = 0; i < 2 && !err; i++) {
		if (!btf_has_func("/sys/kernel/btf/vhost_net", vmlinux, funcs[i])) {
			snprintf(why, len, "%s not in /sys/kernel/btf/vhost_net "
				 "(vhost_net not loaded, no module BTF, or inlined)", funcs[i]);
			err = -ENOENT;
		}
	}
	for (i = 0; i < 2 && !err; i++) {
		const char *f = i ? "vhost_disable_notify" : "vhost_exceeds_weight";

		if (!btf_has_func("/sys/kernel/btf/vhost", vmlinux, f)) {
			snprintf(why, len, "%s not in /sys/kernel/btf/vhost", f);
			err = -ENOENT;
		}
	}
	d = err ? NULL : opendir("/sys/kernel/btf");
	while (d && (de = readdir(d)) && !err) {
		if (de->d_name[0] == '.' || !strcmp(de->d_name, "vhost_net"))
			continue;
		snprintf(path, sizeof(path), "/sys/kernel/btf/%s", de->d_name);
		for (i = 0; i < 2 && !err; i++) {
			bool found = !strcmp(de->d_name, "vmlinux")
				? btf__find_by_name_kind(vmlinux, funcs[i], BTF_KIND_FUNC) > 0
				: btf_has_func(path, vmlinux, funcs[i]);

			if (found) {
				snprintf(why, len, "%s is also in %s: ambiguous for libbpf",
					 funcs[i], de->d_name);
				err = -EEXIST;
			}
		}
	}
	if (d)
		closedir(d);
	btf__free(vmlinux);
	return err;
}
