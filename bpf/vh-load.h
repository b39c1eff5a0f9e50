/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Loading and attaching the programs of one mode, or taking pinned ones over. */
#ifndef VH_LOAD_H
#define VH_LOAD_H

#include <stdbool.h>
#include <linux/types.h>
#include "vhost-hist.h"

struct bpf_link;
struct bpf_program;
struct vhost_hist_bpf;

#define VH_MAX_LINKS 6

struct vh_load_opts {
	bool per_cgroup;
	enum vh_cache_mode cache;
	__u32 max_cgroups;
	const char *pin_dir;	/* NULL: no pinned maps or links to take over */
	const char *raw_tp_names[VH_NR_DIRS];	/* NULL: the vhost_net tracepoints */
};

struct vh_loader {
	struct vhost_hist_bpf *skel;
	struct bpf_link *links[VH_MAX_LINKS];
	struct bpf_program *progs[VH_MAX_LINKS];	/* the program of each link */
	int nr_links;
	enum vh_mode mode;
	bool takeover;
	int stats_fd;
};

/*
 * Opens and loads the programs of mode, reusing pinned maps under
 * opts->pin_dir. -EBADF (message printed) when those maps do not fit.
 */
int vh_load_mode(struct vh_loader *ld, const struct vh_load_opts *opts, enum vh_mode mode);
/* Attach every program of the mode, or take the pinned links over. */
int vh_attach_mode(struct vh_loader *ld, const struct vh_load_opts *opts);
void vh_unload(struct vh_loader *ld);

#endif /* VH_LOAD_H */
