/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Pinned state under the pin dir: paths, bpffs, reuse, pin_all, meta, --stop. */
#ifndef VH_PIN_H
#define VH_PIN_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>
#include "vhost-hist.h"

struct bpf_link;
struct bpf_map;
struct bpf_object;
struct bpf_program;

#define VH_DEFAULT_PIN_DIR "/sys/fs/bpf/vhosttrace"

/* Pinned under the pin dir: each map by its name, each link as link_<prog>. */
void vh_pin_path(char *buf, size_t len, const char *pin_dir, const char *name);
void vh_link_pin_path(char *buf, size_t len, const char *pin_dir, const char *prog);

/* Whether dir is on a bpf filesystem. */
bool vh_is_bpffs(const char *dir);
/* 0 if pin_dir (or, while it does not exist, its parent) is on bpffs, else an exit code. */
int vh_check_bpffs(const char *pin_dir);

/* --stop: unpins links first (detaching the programs), then the rest; an exit code. */
int vh_stop_pinned(const char *pin_dir);

/* Makes obj's maps use the ones pinned under pin_dir, where there are. */
int vh_reuse_pinned_maps(struct bpf_object *obj, const char *pin_dir);

/*
 * Pins meta, then obj's other maps and the links not pinned yet; links[i]
 * runs progs[i]. Keeps whatever is already pinned.
 */
int vh_pin_all(const char *pin_dir, struct bpf_object *obj, struct bpf_map *meta,
	       struct bpf_link *const *links, struct bpf_program *const *progs,
	       int nr_links);

/* Reads the pinned meta record; 1 if there is one, 0 if none. */
int vh_read_pinned_meta(const char *pin_dir, struct vh_meta *meta);
/* Writes the meta record of a first start, stamped with this layout and time. */
int vh_write_meta(struct bpf_map *map, enum vh_mode mode, __u32 max_cgroups,
		  enum vh_cache_mode cache, bool per_cgroup);

#endif /* VH_PIN_H */
