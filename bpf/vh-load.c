// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Loading and attaching the programs of one mode, or taking pinned ones over. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <bpf/libbpf.h>
#include "vh-load.h"
#include "vh-pin.h"
#include "vhost-hist.skel.h"

static struct bpf_program *mode_prog(struct vhost_hist_bpf *s, enum vh_mode mode, int i)
{
	struct bpf_program *raw[] = { s->progs.vh_rx_raw, s->progs.vh_tx_raw };
	struct bpf_program *tp[] = { s->progs.vh_rx_tp, s->progs.vh_tx_tp };
	struct bpf_program *stock[] = {
		s->progs.vh_stock_rx_enter, s->progs.vh_stock_rx_exit,
		s->progs.vh_stock_tx_enter, s->progs.vh_stock_tx_exit,
		s->progs.vh_stock_weight, s->progs.vh_stock_arm,
	};

	/* The stack-keyed slot cache needs its invalidation programs too. */
	if (mode == VH_MODE_RAW_TP && s->rodata->per_cgroup &&
	    s->rodata->cache_mode == VH_CACHE_STACK) {
		if (i == 2)
			return s->progs.vh_gen_exit;
		if (i == 3)
			return s->progs.vh_gen_attach;
	}
	switch (mode) {
	case VH_MODE_RAW_TP:
		return i < 2 ? raw[i] : NULL;
	case VH_MODE_TRACEPOINT:
		return i < 2 ? tp[i] : NULL;
	case VH_MODE_FENTRY:
		return i < 6 ? stock[i] : NULL;
	}
	return NULL;
}

int vh_load_mode(struct vh_loader *ld, const struct vh_load_opts *opts, enum vh_mode mode)
{
	struct vhost_hist_bpf *skel;
	struct bpf_program *prog;
	int err;

	skel = vhost_hist_bpf__open();
	if (!skel)
		return -errno;
	skel->rodata->per_cgroup = opts->per_cgroup;
	skel->rodata->cache_mode = opts->cache;
	/* Only raw_tp programs run on the stack of the task that hit the event. */
	if (mode == VH_MODE_TRACEPOINT && opts->cache == VH_CACHE_STACK)
		skel->rodata->cache_mode = VH_CACHE_PERCPU;
	if (mode == VH_MODE_FENTRY) {
		/* Preemptible programs: see atomic_updates in vhost-hist.bpf.c. */
		skel->rodata->atomic_updates = true;
		if (opts->cache == VH_CACHE_PERCPU || opts->cache == VH_CACHE_STACK)
			skel->rodata->cache_mode = VH_CACHE_TASK;
	}
	skel->rodata->max_cgroups = opts->max_cgroups;
	bpf_map__set_max_entries(skel->maps.hists, (opts->max_cgroups + 1) * VH_NR_DIRS);
	bpf_map__set_max_entries(skel->maps.cgroup_slots, opts->max_cgroups);
	bpf_object__for_each_program(prog, skel->obj)
		bpf_program__set_autoload(prog, false);
	for (int i = 0; (prog = mode_prog(skel, mode, i)); i++)
		bpf_program__set_autoload(prog, true);
	if (opts->pin_dir) {
		err = vh_reuse_pinned_maps(skel->obj, opts->pin_dir);
		if (err) {
			fprintf(stderr, "vhost-hist: pinned maps do not fit this loader: %s\n",
				strerror(-err));
			vhost_hist_bpf__destroy(skel);
			return -EBADF;
		}
	}
	err = vhost_hist_bpf__load(skel);
	if (err) {
		vhost_hist_bpf__destroy(skel);
		return err;
	}
	ld->skel = skel;
	ld->mode = mode;
	return 0;
}

void vh_unload(struct vh_loader *ld)
{
	for (int i = 0; i < ld->nr_links; i++)
		bpf_link__destroy(ld->links[i]);
	ld->nr_links = 0;
	vhost_hist_bpf__destroy(ld->skel);
	ld->skel = NULL;
}

int vh_attach_mode(struct vh_loader *ld, const struct vh_load_opts *opts)
{
	char path[4352];
	struct bpf_program *prog;
	struct bpf_link *link;
	int i;

	for (i = 0; (prog = mode_prog(ld->skel, ld->mode, i)); i++) {
		link = NULL;
		if (opts->pin_dir) {
			vh_link_pin_path(path, sizeof(path), opts->pin_dir,
					 bpf_program__name(prog));
			if (!access(path, F_OK))
				link = bpf_link__open(path);
		}
		if (!link && ld->mode == VH_MODE_RAW_TP && opts->raw_tp_names[0] && i < VH_NR_DIRS)
			link = bpf_program__attach_raw_tracepoint(prog, opts->raw_tp_names[i]);
		else if (!link)
			link = bpf_program__attach(prog);
		if (!link)
			return -errno;
		ld->progs[ld->nr_links] = prog;
		ld->links[ld->nr_links++] = link;
	}
	return 0;
}
