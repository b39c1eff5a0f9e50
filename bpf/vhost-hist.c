// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * vhost-hist: histograms of packets and bytes per vhost-net worker run.
 *
 * Loads vhost-hist.bpf.c, attaches it to vhost_net:vhost_net_{rx,tx}_end
 * (or, on a stock kernel, to handle_rx/handle_tx/vhost_exceeds_weight),
 * and either streams cumulative JSON snapshots (--json) or prints on exit
 * what the seed article's BCC script prints (--text). With --pin, maps and
 * links live under /sys/fs/bpf/vhosttrace/ and a restarted loader takes them
 * over; --stop removes them. See docs/bpf.md.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include "vh-common.h"
#include "vhost-hist.skel.h"

#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC 0xcafe4a11
#endif

#define VH_DEFAULT_PIN_DIR "/sys/fs/bpf/vhosttrace"
#define VH_MAX_LINKS 6

static struct env {
	bool json;
	bool text;
	bool pin;
	bool stop;
	bool stats;
	bool probe;
	bool per_cgroup;
	enum vh_cache_mode cache;
	bool verbose;
	const char *pin_dir;
	const char *render_label;
	char *raw_tp_names[VH_NR_DIRS];	/* test/benchmark override */
	enum vh_mode mode;	/* 0: auto */
	double interval;
	double duration;
	__u32 max_cgroups;
} env = {
	.per_cgroup = true,
	.cache = VH_CACHE_STACK,
	.pin_dir = VH_DEFAULT_PIN_DIR,
	.interval = 1.0,
	.max_cgroups = VH_DEFAULT_MAX_CGROUPS,
};

static volatile sig_atomic_t exiting;
/* Set while a failure is expected and handled (auto mode probing raw_tp). */
static bool libbpf_quiet;

static const char usage[] =
"Usage: vhost-hist [--json | --text] [OPTIONS]\n"
"Log2 histograms of packets and bytes per vhost-net worker run, per cgroup.\n"
"\n"
"  --json               one JSON line per interval (cumulative snapshots)\n"
"  --text               on exit, print what the seed's BCC script prints (default)\n"
"  -i, --interval SEC   JSON interval in seconds (default 1)\n"
"  -d, --duration SEC   exit after SEC seconds (default: on SIGINT/SIGTERM)\n"
"  --mode MODE          auto (default), raw_tp, tracepoint or fentry\n"
"  --pin                pin maps and links (take over pinned ones if present)\n"
"  --pin-dir DIR        where to pin (default " VH_DEFAULT_PIN_DIR ")\n"
"  --stop               unpin everything under the pin dir and exit\n"
"  --max-cgroups N      cgroups kept apart (default 128; more go to cgroup 0)\n"
"  --no-cgroup          do not key by cgroup (everything under cgroup 0)\n"
"  --cache KIND         how programs find a cgroup's slot: stack (default),\n"
"                       percpu, task (task storage) or none (benchmarks)\n"
"  --stats              enable BPF run-time stats, report them in JSON\n"
"  --probe              find the mode this kernel allows (attach, detach), print\n"
"                       one JSON line, exit with the code a start would have\n"
"  --raw-tp-names RX,TX attach raw_tp mode to these tracepoints instead\n"
"                       (tests and benchmarks)\n"
"  --render-hist LABEL  read counts (slot 0 first) from stdin, print them\n"
"                       as BCC's print_log2_hist does, and exit\n"
"  -v, --verbose        libbpf debug output\n"
"\n"
"Exit codes: 0 ok, 1 error, 2 usage, 3 tracepoint (and stock targets)\n"
"missing, 4 BTF missing, 5 permission denied, 6 pin dir not on bpffs,\n"
"7 pinned state of another layout.\n";

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list args)
{
	if ((level == LIBBPF_DEBUG || libbpf_quiet) && !env.verbose)
		return 0;
	return vfprintf(stderr, fmt, args);
}

static void on_signal(int sig)
{
	exiting = 1;
}

static int die(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The last fatal message, for --probe's JSON. */
static char last_error[1024];

static int die(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
	fprintf(stderr, "vhost-hist: %s\n", last_error);
	return code;
}

static int errno_exit(int err)
{
	err = err < 0 ? -err : err;
	return err == EPERM || err == EACCES ? VH_EXIT_NO_PERMISSION : VH_EXIT_ERROR;
}

static int parse_args(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "text", no_argument, NULL, 't' },
		{ "interval", required_argument, NULL, 'i' },
		{ "duration", required_argument, NULL, 'd' },
		{ "mode", required_argument, NULL, 'M' },
		{ "pin", no_argument, NULL, 'p' },
		{ "pin-dir", required_argument, NULL, 'P' },
		{ "stop", no_argument, NULL, 'S' },
		{ "max-cgroups", required_argument, NULL, 'm' },
		{ "no-cgroup", no_argument, NULL, 'C' },
		{ "cache", required_argument, NULL, 'N' },
		{ "stats", no_argument, NULL, 's' },
		{ "probe", no_argument, NULL, 'b' },
		{ "render-hist", required_argument, NULL, 'R' },
		{ "raw-tp-names", required_argument, NULL, 'T' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	char *end;
	int opt;

	while ((opt = getopt_long(argc, argv, "i:d:vh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'j': env.json = true; break;
		case 't': env.text = true; break;
		case 'p': env.pin = true; break;
		case 'P': env.pin_dir = optarg; env.pin = true; break;
		case 'S': env.stop = true; break;
		case 'C': env.per_cgroup = false; break;
		case 'N':
			if (vh_parse_cache_mode(optarg, &env.cache))
				return die(VH_EXIT_USAGE, "--cache wants stack, percpu, task or none: %s", optarg);
			break;
		case 's': env.stats = true; break;
		case 'b': env.probe = true; break;
		case 'R': env.render_label = optarg; break;
		case 'v': env.verbose = true; break;
		case 'T':
			env.raw_tp_names[0] = strdup(optarg);
			env.raw_tp_names[1] = strchr(env.raw_tp_names[0], ',');
			if (!env.raw_tp_names[1])
				return die(VH_EXIT_USAGE, "--raw-tp-names wants RX,TX");
			*env.raw_tp_names[1]++ = '\0';
			env.mode = VH_MODE_RAW_TP;
			break;
		case 'h': fputs(usage, stdout); exit(0);
		case 'i':
		case 'd':
			errno = 0;
			*(opt == 'i' ? &env.interval : &env.duration) = strtod(optarg, &end);
			if (errno || *end || (opt == 'i' ? env.interval <= 0 : env.duration < 0))
				return die(VH_EXIT_USAGE, "bad number of seconds: %s", optarg);
			break;
		case 'm':
			errno = 0;
			env.max_cgroups = strtoul(optarg, &end, 10);
			if (errno || *end || !env.max_cgroups || env.max_cgroups > 65536)
				return die(VH_EXIT_USAGE, "--max-cgroups wants 1..65536: %s", optarg);
			break;
		case 'M':
			if (!strcmp(optarg, "auto"))
				env.mode = 0;
			else if (!strcmp(optarg, "raw_tp"))
				env.mode = VH_MODE_RAW_TP;
			else if (!strcmp(optarg, "tracepoint"))
				env.mode = VH_MODE_TRACEPOINT;
			else if (!strcmp(optarg, "fentry"))
				env.mode = VH_MODE_FENTRY;
			else
				return die(VH_EXIT_USAGE, "unknown --mode %s", optarg);
			break;
		default:
			fputs(usage, stderr);
			return VH_EXIT_USAGE;
		}
	}
	if (optind < argc)
		return die(VH_EXIT_USAGE, "unexpected argument %s", argv[optind]);
	if (env.json && env.text)
		return die(VH_EXIT_USAGE, "--json and --text exclude each other");
	if (!env.json)
		env.text = true;
	return 0;
}

/* --render-hist: golden tests of the BCC layout without any BPF. */
static int render_hist(const char *label)
{
	__u64 slots[VH_RENDER_MAX_SLOTS] = { 0 };
	unsigned long long v;
	int n = 0, r;

	while ((r = scanf("%llu", &v)) == 1) {
		if (n == VH_RENDER_MAX_SLOTS)
			return die(VH_EXIT_USAGE, "more than %d counts", VH_RENDER_MAX_SLOTS);
		slots[n++] = v;
	}
	if (r != EOF)
		return die(VH_EXIT_USAGE, "stdin: counts must be unsigned integers");
	vh_print_log2_hist(stdout, slots, n, label);
	return 0;
}

/* Pinned under the pin dir: each map by its name, each link as link_<prog>. */
static void pin_path(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", env.pin_dir, name);
}

static int stop_pinned(void)
{
	char path[4352];
	struct dirent *de;
	int removed = 0;
	DIR *d;

	d = opendir(env.pin_dir);
	if (!d) {
		if (errno == ENOENT) {
			fprintf(stderr, "vhost-hist: nothing pinned at %s\n", env.pin_dir);
			return 0;
		}
		return die(errno_exit(errno), "%s: %s", env.pin_dir, strerror(errno));
	}
	/* Links first: unpinning the last reference detaches the programs. */
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, "link_", 5))
			continue;
		pin_path(path, sizeof(path), de->d_name);
		if (unlink(path))
			return die(errno_exit(errno), "%s: %s", path, strerror(errno));
		removed++;
	}
	rewinddir(d);
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		pin_path(path, sizeof(path), de->d_name);
		if (unlink(path))
			return die(errno_exit(errno), "%s: %s", path, strerror(errno));
		removed++;
	}
	closedir(d);
	if (rmdir(env.pin_dir))
		return die(errno_exit(errno), "%s: %s", env.pin_dir, strerror(errno));
	fprintf(stderr, "vhost-hist: unpinned %d objects from %s\n", removed, env.pin_dir);
	return 0;
}

static int check_bpffs(void)
{
	char parent[4096], *slash;
	struct statfs st;
	const char *dir = env.pin_dir;

	if (access(dir, F_OK)) {
		snprintf(parent, sizeof(parent), "%s", env.pin_dir);
		slash = strrchr(parent, '/');
		if (slash && slash != parent)
			*slash = '\0';
		else if (slash)
			slash[1] = '\0';
		dir = parent;
	}
	if (statfs(dir, &st))
		return die(VH_EXIT_NO_BPFFS, "%s: %s (mount bpffs: mount -t bpf bpf /sys/fs/bpf)",
			   dir, strerror(errno));
	if (st.f_type != BPF_FS_MAGIC)
		return die(VH_EXIT_NO_BPFFS, "%s is not on a bpf filesystem "
			   "(mount -t bpf bpf /sys/fs/bpf)", dir);
	return 0;
}

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
static int check_stock_targets(char *why, size_t len)
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

struct loader {
	struct vhost_hist_bpf *skel;
	struct bpf_link *links[VH_MAX_LINKS];
	int nr_links;
	enum vh_mode mode;
	bool takeover;
	int stats_fd;
};

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

static int reuse_pinned_maps(struct vhost_hist_bpf *skel)
{
	char path[4352];
	struct bpf_map *map;
	int fd, err;

	bpf_object__for_each_map(map, skel->obj) {
		if (bpf_map__is_internal(map))
			continue;
		pin_path(path, sizeof(path), bpf_map__name(map));
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

static int load_mode(struct loader *ld, enum vh_mode mode)
{
	struct vhost_hist_bpf *skel;
	struct bpf_program *prog;
	int err;

	skel = vhost_hist_bpf__open();
	if (!skel)
		return -errno;
	skel->rodata->per_cgroup = env.per_cgroup;
	skel->rodata->cache_mode = env.cache;
	/* Only raw_tp programs run on the stack of the task that hit the event. */
	if (mode == VH_MODE_TRACEPOINT && env.cache == VH_CACHE_STACK)
		skel->rodata->cache_mode = VH_CACHE_PERCPU;
	if (mode == VH_MODE_FENTRY) {
		/* Preemptible programs: see atomic_updates in vhost-hist.bpf.c. */
		skel->rodata->atomic_updates = true;
		if (env.cache == VH_CACHE_PERCPU || env.cache == VH_CACHE_STACK)
			skel->rodata->cache_mode = VH_CACHE_TASK;
	}
	skel->rodata->max_cgroups = env.max_cgroups;
	bpf_map__set_max_entries(skel->maps.hists, (env.max_cgroups + 1) * VH_NR_DIRS);
	bpf_map__set_max_entries(skel->maps.cgroup_slots, env.max_cgroups);
	bpf_object__for_each_program(prog, skel->obj)
		bpf_program__set_autoload(prog, false);
	for (int i = 0; (prog = mode_prog(skel, mode, i)); i++)
		bpf_program__set_autoload(prog, true);
	if (env.pin) {
		err = reuse_pinned_maps(skel);
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

static void unload(struct loader *ld)
{
	for (int i = 0; i < ld->nr_links; i++)
		bpf_link__destroy(ld->links[i]);
	ld->nr_links = 0;
	vhost_hist_bpf__destroy(ld->skel);
	ld->skel = NULL;
}

/* Attach every program of the mode, or take the pinned links over. */
static int attach_mode(struct loader *ld)
{
	char path[4352];
	struct bpf_program *prog;
	struct bpf_link *link;
	int i;

	for (i = 0; (prog = mode_prog(ld->skel, ld->mode, i)); i++) {
		snprintf(path, sizeof(path), "%s/link_%s", env.pin_dir, bpf_program__name(prog));
		link = NULL;
		if (env.pin && !access(path, F_OK))
			link = bpf_link__open(path);
		if (!link && ld->mode == VH_MODE_RAW_TP && env.raw_tp_names[0] && i < VH_NR_DIRS)
			link = bpf_program__attach_raw_tracepoint(prog, env.raw_tp_names[i]);
		else if (!link)
			link = bpf_program__attach(prog);
		if (!link)
			return -errno;
		ld->links[ld->nr_links++] = link;
	}
	return 0;
}

static int pin_all(struct loader *ld)
{
	char path[4352];
	struct bpf_map *map;
	int err;

	if (mkdir(env.pin_dir, 0700) && errno != EEXIST)
		return -errno;
	/*
	 * meta first: a loader killed half-way leaves a meta that tells the
	 * next one the layout of whatever else got pinned, which it reuses.
	 */
	pin_path(path, sizeof(path), "meta");
	if (access(path, F_OK)) {
		err = bpf_map__pin(ld->skel->maps.meta, path);
		if (err)
			return err;
	}
	bpf_object__for_each_map(map, ld->skel->obj) {
		if (bpf_map__is_internal(map))
			continue;
		pin_path(path, sizeof(path), bpf_map__name(map));
		if (!access(path, F_OK))
			continue;
		err = bpf_map__pin(map, path);
		if (err)
			return err;
	}
	for (int i = 0; i < ld->nr_links; i++) {
		if (bpf_link__pin_path(ld->links[i]))
			continue;
		snprintf(path, sizeof(path), "%s/link_%s", env.pin_dir,
			 bpf_program__name(mode_prog(ld->skel, ld->mode, i)));
		if (!access(path, F_OK))
			continue;
		err = bpf_link__pin(ld->links[i], path);
		if (err)
			return err;
	}
	return 0;
}

/* Reads the pinned meta record; 1 if there is one, 0 if none. */
static int read_pinned_meta(struct vh_meta *meta)
{
	char path[4352];
	__u32 zero = 0;
	int fd, err;

	pin_path(path, sizeof(path), "meta");
	fd = bpf_obj_get(path);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	err = bpf_map_lookup_elem(fd, &zero, meta);
	close(fd);
	if (err)
		return -errno;
	return 1;
}

static int write_meta(struct loader *ld)
{
	struct vh_meta meta = {
		.magic = VH_META_MAGIC,
		.layout = VH_LAYOUT_VERSION,
		.mode = ld->mode,
		.max_cgroups = env.max_cgroups,
		.cache = ld->skel->rodata->cache_mode,
		.per_cgroup = env.per_cgroup,
	};
	struct timespec ts;
	__u32 zero = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	meta.started_ns = (__u64)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
	return bpf_map_update_elem(bpf_map__fd(ld->skel->maps.meta), &zero, &meta, BPF_ANY);
}

static int start(struct loader *ld)
{
	char why[512] = "";
	struct vh_meta meta;
	enum vh_mode mode = env.mode;
	int err, code;

	if (env.pin) {
		err = read_pinned_meta(&meta);
		if (err < 0)
			return die(errno_exit(err), "read pinned meta: %s", strerror(-err));
		if (err > 0) {
			if (meta.magic != VH_META_MAGIC || meta.layout != VH_LAYOUT_VERSION)
				return die(VH_EXIT_PIN_MISMATCH, "%s holds layout %u, this loader "
					   "needs %u: run --stop first", env.pin_dir,
					   meta.layout, VH_LAYOUT_VERSION);
			if (env.mode && env.mode != (enum vh_mode)meta.mode)
				fprintf(stderr, "vhost-hist: taking over %s in mode %s; --mode ignored\n",
					env.pin_dir, vh_mode_name(meta.mode));
			mode = meta.mode;
			env.max_cgroups = meta.max_cgroups;
			/* The pinned links run programs built for this cache. */
			env.cache = meta.cache;
			env.per_cgroup = meta.per_cgroup;
			ld->takeover = true;
		}
	}

	if (!mode || mode == VH_MODE_RAW_TP || mode == VH_MODE_TRACEPOINT) {
		err = load_mode(ld, mode ? mode : VH_MODE_RAW_TP);
		if (err == -EBADF)
			return VH_EXIT_PIN_MISMATCH;
		if (err)
			return die(errno_exit(err), "load: %s", strerror(-err));
		libbpf_quiet = !mode;
		err = attach_mode(ld);
		libbpf_quiet = false;
		if (!err)
			goto attached;
		unload(ld);
		if (err != -ENOENT || mode)
			return die(err == -ENOENT ? VH_EXIT_NO_TRACEPOINT : errno_exit(err),
				   "attach to vhost_net:vhost_net_{rx,tx}_end: %s%s",
				   strerror(-err), err == -ENOENT ?
				   " (tracepoints missing: vhost_net not loaded or not patched)" : "");
	}

	/* Stock kernel: no tracepoints. */
	err = check_stock_targets(why, sizeof(why));
	if (err) {
		code = err == -ENOENT ? VH_EXIT_NO_TRACEPOINT : VH_EXIT_ERROR;
		return die(code, "no vhost_net tracepoints, and stock mode is not possible: %s", why);
	}
	err = load_mode(ld, VH_MODE_FENTRY);
	if (err == -EBADF)
		return VH_EXIT_PIN_MISMATCH;
	if (err)
		return die(errno_exit(err), "load stock-mode programs: %s", strerror(-err));
	err = attach_mode(ld);
	if (err) {
		unload(ld);
		return die(errno_exit(err), "attach stock-mode programs: %s", strerror(-err));
	}

attached:
	if (env.pin) {
		if (!ld->takeover) {
			err = write_meta(ld);
			if (err)
				return die(errno_exit(err), "write meta: %s", strerror(-err));
		}
		err = pin_all(ld);
		if (err)
			return die(errno_exit(err), "pin under %s: %s", env.pin_dir, strerror(-err));
	}
	return 0;
}

static int snapshot(struct loader *ld, struct vh_snapshot *snap)
{
	struct vh_maps maps = {
		.hists_fd = bpf_map__fd(ld->skel->maps.hists),
		.cgroup_slots_fd = bpf_map__fd(ld->skel->maps.cgroup_slots),
		.counters_fd = bpf_map__fd(ld->skel->maps.counters),
		.max_cgroups = env.max_cgroups,
	};
	int fds[VH_MAX_LINKS], err;

	err = vh_read_snapshot(&maps, snap);
	if (err)
		return err;
	if (env.stats) {
		for (int i = 0; i < ld->nr_links; i++)
			fds[i] = bpf_link__fd(ld->links[i]);
		vh_read_link_stats(fds, ld->nr_links, snap);
	}
	return 0;
}

/* CO-RE needs the kernel's BTF: a readable file that starts with BTF's magic. */
static bool vmlinux_btf_ok(void)
{
	unsigned char magic[2];
	FILE *f;
	bool ok;

	errno = 0;
	f = fopen("/sys/kernel/btf/vmlinux", "rb");
	if (!f)
		return false;
	ok = fread(magic, 1, 2, f) == 2 &&
	     ((magic[0] == 0x9f && magic[1] == 0xeb) || (magic[0] == 0xeb && magic[1] == 0x9f));
	fclose(f);
	errno = 0;
	return ok;
}

static void json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", (unsigned char)*s);
		else
			putchar(*s);
	}
	putchar('"');
}

/*
 * --probe: what a start would do, without pinning or staying attached. One
 * JSON line (src/loader/probe.ts); the exit code is the one a start would have.
 */
static int probe(void)
{
	struct loader ld = { .stats_fd = -1 };
	struct utsname uts;
	struct statfs st;
	bool bpffs;
	int code = 0;

	env.pin = false;
	uname(&uts);
	bpffs = !statfs("/sys/fs/bpf", &st) && st.f_type == BPF_FS_MAGIC;
	if (!vmlinux_btf_ok()) {
		code = die(VH_EXIT_NO_BTF, "/sys/kernel/btf/vmlinux missing or not BTF");
	} else {
		int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "vh_probe", 4, 4, 1, NULL);

		if (fd < 0)
			code = die(errno_exit(errno), "bpf(): %s", strerror(errno));
		else
			close(fd);
	}
	if (!code)
		code = start(&ld);
	printf("{\"type\":\"probe\",\"version\":1,\"kernel\":");
	json_string(uts.release);
	printf(",\"ok\":%s,\"mode\":", code ? "false" : "true");
	if (code)
		printf("null");
	else
		json_string(vh_mode_name(ld.mode));
	printf(",\"exitCode\":%d,\"bpffs\":%s,\"reason\":", code, bpffs ? "true" : "false");
	json_string(code ? last_error : "");
	printf("}\n");
	if (!code)
		unload(&ld);
	return code;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	struct loader ld = { .stats_fd = -1 };
	struct vh_json_ctx jctx = { 0 };
	struct vh_snapshot snap;
	struct sigaction sa = { .sa_handler = on_signal };
	struct utsname uts;
	double t0, next;
	int err;

	err = parse_args(argc, argv);
	if (err)
		return err;
	if (env.render_label)
		return render_hist(env.render_label);
	libbpf_set_print(libbpf_print);
	if (env.stop)
		return stop_pinned();
	if (env.probe)
		return probe();

	if (!vmlinux_btf_ok())
		return die(VH_EXIT_NO_BTF, "/sys/kernel/btf/vmlinux: %s (kernel built "
			   "without CONFIG_DEBUG_INFO_BTF?)", errno ? strerror(errno) : "not BTF");
	err = bpf_map_create(BPF_MAP_TYPE_ARRAY, "vh_probe", 4, 4, 1, NULL);
	if (err < 0)
		return die(errno_exit(errno), "bpf(): %s (needs CAP_BPF and CAP_PERFMON)",
			   strerror(errno));
	close(err);
	if (env.pin) {
		err = check_bpffs();
		if (err)
			return err;
	}

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	err = start(&ld);
	if (err)
		return err;
	if (env.stats) {
		ld.stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
		if (ld.stats_fd < 0)
			fprintf(stderr, "vhost-hist: run-time stats unavailable: %s\n",
				strerror(errno));
	}

	uname(&uts);
	jctx.mode = vh_mode_name(ld.mode);
	jctx.kernel = uts.release;
	jctx.takeover = ld.takeover;
	jctx.stats = env.stats;
	jctx.max_cgroups = env.max_cgroups;
	jctx.interval_s = env.interval;
	if (env.text) {
		fputs(vh_seed_banner, stdout);
		fflush(stdout);
	}

	t0 = now_s();
	next = t0 + env.interval;
	while (!exiting) {
		double now = now_s(), wake = env.json ? next : now + 0.2;
		struct timespec ts;

		if (env.duration && now - t0 >= env.duration)
			break;
		if (env.duration && t0 + env.duration < wake)
			wake = t0 + env.duration;
		if (wake > now) {
			ts.tv_sec = (time_t)(wake - now);
			ts.tv_nsec = (long)((wake - now - ts.tv_sec) * 1e9);
			nanosleep(&ts, NULL);
		}
		if (env.duration && now_s() - t0 >= env.duration)
			break;
		if (env.json && now_s() >= next && !exiting) {
			next += env.interval;
			err = snapshot(&ld, &snap);
			if (err == -EAGAIN) {
				/* Some CPU's value stayed mid-update; the next line has it all. */
				fprintf(stderr, "vhost-hist: a histogram kept changing while read, line skipped\n");
				continue;
			}
			if (err)
				return die(VH_EXIT_ERROR, "read maps: %s", strerror(-err));
			vh_print_json(stdout, &jctx, &snap);
			jctx.seq++;
			vh_free_snapshot(&snap);
		}
	}

	/* A last snapshot, so the consumer has the counts up to the exit. */
	err = snapshot(&ld, &snap);
	if (err)
		return die(VH_EXIT_ERROR, "read maps: %s", strerror(-err));
	if (env.json)
		vh_print_json(stdout, &jctx, &snap);
	else
		vh_print_snapshot_text(stdout, &snap);
	vh_free_snapshot(&snap);
	/* Pinned links keep the programs attached after this process is gone. */
	unload(&ld);
	if (ld.stats_fd >= 0)
		close(ld.stats_fd);
	return 0;
}
