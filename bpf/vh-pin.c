// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Pinned state under the pin dir: paths, bpffs, reuse, pin_all, meta, --stop. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "vh-common.h"
#include "vh-pin.h"

#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC 0xcafe4a11
#endif

void vh_pin_path(char *buf, size_t len, const char *pin_dir, const char *name)
{
	snprintf(buf, len, "%s/%s", pin_dir, name);
}

void vh_link_pin_path(char *buf, size_t len, const char *pin_dir, const char *prog)
{
	snprintf(buf, len, "%s/link_%s", pin_dir, prog);
}

bool vh_is_bpffs(const char *dir)
{
	struct statfs st;

	return !statfs(dir, &st) && st.f_type == BPF_FS_MAGIC;
}

int vh_check_bpffs(const char *pin_dir)
{
	char parent[4096], *slash;
	struct statfs st;
	const char *dir = pin_dir;

	if (access(dir, F_OK)) {
		snprintf(parent, sizeof(parent), "%s", pin_dir);
		slash = strrchr(parent, '/');
		if (slash && slash != parent)
			*slash = '\0';
		else if (slash)
			slash[1] = '\0';
		dir = parent;
	}
	if (statfs(dir, &st))
		return vh_die(VH_EXIT_NO_BPFFS, "%s: %s (mount bpffs: mount -t bpf bpf /sys/fs/bpf)",
			      dir, strerror(errno));
	if (st.f_type != BPF_FS_MAGIC)
		return vh_die(VH_EXIT_NO_BPFFS, "%s is not on a bpf filesystem "
			      "(mount -t bpf bpf /sys/fs/bpf)", dir);
	return 0;
}

/* Unlinks d's entries, only the links if links_only; 0 or an exit code. */
static int vh_unpin_entries(DIR *d, const char *pin_dir, bool links_only, int *removed)
{
	char path[4352];
	struct dirent *de;

	while ((de = readdir(d))) {
		if (links_only ? strncmp(de->d_name, "link_", 5) != 0 : de->d_name[0] == '.')
			continue;
		vh_pin_path(path, sizeof(path), pin_dir, de->d_name);
		if (unlink(path))
			return vh_die(vh_errno_exit(errno), "%s: %s", path, strerror(errno));
		(*removed)++;
	}
	return 0;
}

int vh_stop_pinned(const char *pin_dir)
{
	int removed = 0, err;
	DIR *d;

	d = opendir(pin_dir);
	if (!d) {
		if (errno == ENOENT) {
			fprintf(stderr, "vhost-hist: nothing pinned at %s\n", pin_dir);
			return 0;
		}
		return vh_die(vh_errno_exit(errno), "%s: %s", pin_dir, strerror(errno));
	}
	/* Links first: unpinning the last reference detaches the programs. */
	err = vh_unpin_entries(d, pin_dir, true, &removed);
	if (err)
		return err;
	rewinddir(d);
	err = vh_unpin_entries(d, pin_dir, false, &removed);
	if (err)
		return err;
	closedir(d);
	if (rmdir(pin_dir))
		return vh_die(vh_errno_exit(errno), "%s: %s", pin_dir, strerror(errno));
	fprintf(stderr, "vhost-hist: unpinned %d objects from %s\n", removed, pin_dir);
	return 0;
}

/*
 * The name a map is pinned under: its own, VH_CACHE_GEN_PIN for the section
 * of the cache_gen global, and none (NULL) for the other internal maps, which
 * each load sets up anew (.rodata holds its knobs).
 */
static const char *vh_pin_name(const struct bpf_map *map)
{
	if (!bpf_map__is_internal(map))
		return bpf_map__name(map);
	return strcmp(bpf_map__name(map), VH_CACHE_GEN_SEC) ? NULL : VH_CACHE_GEN_PIN;
}

int vh_reuse_pinned_maps(struct bpf_object *obj, const char *pin_dir)
{
	char path[4352];
	struct bpf_map *map;
	int fd, err;

	bpf_object__for_each_map(map, obj) {
		if (!vh_pin_name(map))
			continue;
		vh_pin_path(path, sizeof(path), pin_dir, vh_pin_name(map));
		fd = bpf_obj_get(path);
		if (fd < 0) {
			if (errno == ENOENT)
				continue;
			return -errno;
		}
		err = bpf_map__reuse_fd(map, fd);
		close(fd);
		if (err)
			return err;
	}
	return 0;
}

int vh_pin_all(const char *pin_dir, struct bpf_object *obj, struct bpf_map *meta,
	       struct bpf_link *const *links, struct bpf_program *const *progs,
	       int nr_links)
{
	char path[4352];
	struct bpf_map *map;
	int err;

	if (mkdir(pin_dir, 0700) && errno != EEXIST)
		return -errno;
	/*
	 * meta first: a loader killed half-way leaves a meta that tells the
	 * next one the layout of whatever else got pinned, which it reuses.
	 */
	vh_pin_path(path, sizeof(path), pin_dir, "meta");
	if (access(path, F_OK)) {
		err = bpf_map__pin(meta, path);
		if (err)
			return err;
	}
	bpf_object__for_each_map(map, obj) {
		if (!vh_pin_name(map))
			continue;
		vh_pin_path(path, sizeof(path), pin_dir, vh_pin_name(map));
		if (!access(path, F_OK))
			continue;
		err = bpf_map__pin(map, path);
		if (err)
			return err;
	}
	for (int i = 0; i < nr_links; i++) {
		if (bpf_link__pin_path(links[i]))
			continue;
		vh_link_pin_path(path, sizeof(path), pin_dir, bpf_program__name(progs[i]));
		if (!access(path, F_OK))
			continue;
		err = bpf_link__pin(links[i], path);
		if (err)
			return err;
	}
	return 0;
}

int vh_read_pinned_meta(const char *pin_dir, struct vh_meta *meta)
{
	char path[4352];
	__u32 zero = 0;
	int fd, err;

	vh_pin_path(path, sizeof(path), pin_dir, "meta");
	fd = bpf_obj_get(path);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	err = bpf_map_lookup_elem(fd, &zero, meta);
	close(fd);
	if (err)
		return -errno;
	return 1;
}

int vh_write_meta(struct bpf_map *map, enum vh_mode mode, __u32 max_cgroups,
		  enum vh_cache_mode cache, bool per_cgroup)
{
	struct vh_meta meta = {
		.magic = VH_META_MAGIC,
		.layout = VH_LAYOUT_VERSION,
		.mode = mode,
		.max_cgroups = max_cgroups,
		.cache = cache,
		.per_cgroup = per_cgroup,
	};
	struct timespec ts;
	__u32 zero = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	meta.started_ns = (__u64)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
	return bpf_map_update_elem(bpf_map__fd(map), &zero, &meta, BPF_ANY);
}
