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
 *
 * This file: the command line, the mode choice (start, --probe) and the run
 * loop. The rest is in one vh-*.c file a job (docs/bpf.md lists them).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "vh-common.h"
#include "vh-json.h"
#include "vh-load.h"
#include "vh-maps.h"
#include "vh-pin.h"
#include "vh-stock.h"
#include "vh-text.h"
#include "vhost-hist.skel.h"

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
				return vh_die(VH_EXIT_USAGE, "--cache wants stack, percpu, task or none: %s", optarg);
			break;
		case 's': env.stats = true; break;
		case 'b': env.probe = true; break;
		case 'R': env.render_label = optarg; break;
		case 'v': env.verbose = true; break;
		case 'T':
			env.raw_tp_names[0] = strdup(optarg);
			env.raw_tp_names[1] = strchr(env.raw_tp_names[0], ',');
			if (!env.raw_tp_names[1])
				return vh_die(VH_EXIT_USAGE, "--raw-tp-names wants RX,TX");
			*env.raw_tp_names[1]++ = '\0';
			env.mode = VH_MODE_RAW_TP;
			break;
		case 'h': fputs(usage, stdout); exit(0);
		case 'i':
		case 'd':
			errno = 0;
			*(opt == 'i' ? &env.interval : &env.duration) = strtod(optarg, &end);
			if (errno || *end || (opt == 'i' ? env.interval <= 0 : env.duration < 0))
				return vh_die(VH_EXIT_USAGE, "bad number of seconds: %s", optarg);
			break;
		case 'm':
			errno = 0;
			env.max_cgroups = strtoul(optarg, &end, 10);
			if (errno || *end || !env.max_cgroups || env.max_cgroups > 65536)
				return vh_die(VH_EXIT_USAGE, "--max-cgroups wants 1..65536: %s", optarg);
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
				return vh_die(VH_EXIT_USAGE, "unknown --mode %s", optarg);
			break;
		default:
			fputs(usage, stderr);
			return VH_EXIT_USAGE;
		}
	}
	if (optind < argc)
		return vh_die(VH_EXIT_USAGE, "unexpected argument %s", argv[optind]);
	if (env.json && env.text)
		return vh_die(VH_EXIT_USAGE, "--json and --text exclude each other");
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
			return vh_die(VH_EXIT_USAGE, "more than %d counts", VH_RENDER_MAX_SLOTS);
		slots[n++] = v;
	}
	if (r != EOF)
		return vh_die(VH_EXIT_USAGE, "stdin: counts must be unsigned integers");
	vh_print_log2_hist(stdout, slots, n, label);
	return 0;
}

static int start(struct vh_loader *ld)
{
	char why[512] = "";
	struct vh_load_opts opts;
	struct vh_meta meta;
	enum vh_mode mode = env.mode;
	int err, code;

	if (env.pin) {
		err = vh_read_pinned_meta(env.pin_dir, &meta);
		if (err < 0)
			return vh_die(vh_errno_exit(err), "read pinned meta: %s", strerror(-err));
		if (err > 0) {
			if (meta.magic != VH_META_MAGIC || meta.layout != VH_LAYOUT_VERSION)
				return vh_die(VH_EXIT_PIN_MISMATCH, "%s holds layout %u, this loader "
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
	opts = (struct vh_load_opts){
		.per_cgroup = env.per_cgroup,
		.cache = env.cache,
		.max_cgroups = env.max_cgroups,
		.pin_dir = env.pin ? env.pin_dir : NULL,
		.raw_tp_names = { env.raw_tp_names[0], env.raw_tp_names[1] },
	};

	if (!mode || mode == VH_MODE_RAW_TP || mode == VH_MODE_TRACEPOINT) {
		err = vh_load_mode(ld, &opts, mode ? mode : VH_MODE_RAW_TP);
		if (err == -EBADF)
			return VH_EXIT_PIN_MISMATCH;
		if (err)
			return vh_die(vh_errno_exit(err), "load: %s", strerror(-err));
		libbpf_quiet = !mode;
		err = vh_attach_mode(ld, &opts);
		libbpf_quiet = false;
		if (!err)
			goto attached;
		vh_unload(ld);
		if (err != -ENOENT || mode)
			return vh_die(err == -ENOENT ? VH_EXIT_NO_TRACEPOINT : vh_errno_exit(err),
				      "attach to vhost_net:vhost_net_{rx,tx}_end: %s%s",
				      strerror(-err), err == -ENOENT ?
				      " (tracepoints missing: vhost_net not loaded or not patched)" : "");
	}

	/* Stock kernel: no tracepoints. */
	err = vh_check_stock_targets(why, sizeof(why));
	if (err) {
		code = err == -ENOENT ? VH_EXIT_NO_TRACEPOINT : VH_EXIT_ERROR;
		return vh_die(code, "no vhost_net tracepoints, and stock mode is not possible: %s", why);
	}
	err = vh_load_mode(ld, &opts, VH_MODE_FENTRY);
	if (err == -EBADF)
		return VH_EXIT_PIN_MISMATCH;
	if (err)
		return vh_die(vh_errno_exit(err), "load stock-mode programs: %s%s", strerror(-err),
			      err == -EPERM ? " (they need vhost_net's BTF, which the kernel gives"
					      " only to CAP_SYS_ADMIN)" : "");
	err = vh_attach_mode(ld, &opts);
	if (err) {
		vh_unload(ld);
		return vh_die(vh_errno_exit(err), "attach stock-mode programs: %s", strerror(-err));
	}

attached:
	if (env.pin) {
		if (!ld->takeover) {
			err = vh_write_meta(ld->skel->maps.meta, ld->mode, env.max_cgroups,
					    ld->skel->rodata->cache_mode, env.per_cgroup);
			if (err)
				return vh_die(vh_errno_exit(err), "write meta: %s", strerror(-err));
		}
		err = vh_pin_all(env.pin_dir, ld->skel->obj, ld->skel->maps.meta,
				 ld->links, ld->progs, ld->nr_links);
		if (err)
			return vh_die(vh_errno_exit(err), "pin under %s: %s", env.pin_dir, strerror(-err));
	}
	return 0;
}

static int snapshot(struct vh_loader *ld, struct vh_snapshot *snap)
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

/*
 * --probe: what a start would do, without pinning or staying attached. One
 * JSON line (src/loader/probe.ts); the exit code is the one a start would have.
 */
static int probe(void)
{
	struct vh_loader ld = { .stats_fd = -1 };
	struct utsname uts;
	bool bpffs;
	int code = 0;

	env.pin = false;
	uname(&uts);
	bpffs = vh_is_bpffs("/sys/fs/bpf");
	if (!vmlinux_btf_ok()) {
		code = vh_die(VH_EXIT_NO_BTF, "/sys/kernel/btf/vmlinux missing or not BTF");
	} else {
		int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "vh_probe", 4, 4, 1, NULL);

		if (fd < 0)
			code = vh_die(vh_errno_exit(errno), "bpf(): %s", strerror(errno));
		else
			close(fd);
	}
	if (!code)
		code = start(&ld);
	vh_print_probe(stdout, uts.release, code, code ? NULL : vh_mode_name(ld.mode),
		       bpffs, vh_last_error);
	if (!code)
		vh_unload(&ld);
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
	struct vh_loader ld = { .stats_fd = -1 };
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
		return vh_stop_pinned(env.pin_dir);
	if (env.probe)
		return probe();

	if (!vmlinux_btf_ok())
		return vh_die(VH_EXIT_NO_BTF, "/sys/kernel/btf/vmlinux: %s (kernel built "
			      "without CONFIG_DEBUG_INFO_BTF?)", errno ? strerror(errno) : "not BTF");
	err = bpf_map_create(BPF_MAP_TYPE_ARRAY, "vh_probe", 4, 4, 1, NULL);
	if (err < 0)
		return vh_die(vh_errno_exit(errno), "bpf(): %s (needs CAP_BPF and CAP_PERFMON)",
			      strerror(errno));
	close(err);
	if (env.pin) {
		err = vh_check_bpffs(env.pin_dir);
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
				return vh_die(VH_EXIT_ERROR, "read maps: %s", strerror(-err));
			vh_print_json(stdout, &jctx, &snap);
			jctx.seq++;
			vh_free_snapshot(&snap);
		}
	}

	/* A last snapshot, so the consumer has the counts up to the exit. */
	err = snapshot(&ld, &snap);
	if (err)
		return vh_die(VH_EXIT_ERROR, "read maps: %s", strerror(-err));
	if (env.json)
		vh_print_json(stdout, &jctx, &snap);
	else
		vh_print_snapshot_text(stdout, &snap);
	vh_free_snapshot(&snap);
	/* Pinned links keep the programs attached after this process is gone. */
	vh_unload(&ld);
	if (ld.stats_fd >= 0)
		close(ld.stats_fd);
	return 0;
}
