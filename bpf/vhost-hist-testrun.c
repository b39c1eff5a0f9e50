// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * vhost-hist-testrun: runs the real vhost-hist programs in the host kernel
 * with BPF_PROG_TEST_RUN, feeding synthetic events, and prints the maps as
 * one vhost-hist JSON line. Used by test/bpf/; not installed.
 *
 * stdin, one command a line:
 *   rx|tx PACKETS BYTES [REPEAT]  run vh_rx_raw / vh_tx_raw with these args
 *   cgroup DIR                    move this process into cgroup v2 DIR
 *   stock rx|tx REPEAT            stock-mode programs, retargeted to the
 *                                 kernel's bpf_fentry_test* functions:
 *                                 enter=fentry test1, arm=fentry test2,
 *                                 weight=fentry test3
 *                                 (args 4, 5, 6), exit=fexit test5; each
 *                                 run is one event of 5 packets, 6 bytes
 *
 * Options: --cache percpu|task|none|stack (default percpu: BPF_PROG_TEST_RUN
 *          copies ctx to the heap, so the stack cache's key names no task
 *          here; test/bpf/vhost-hist-stack-cache.test.ts tests it on a real
 *          tracepoint), --pinned DIR (run the programs behind DIR/link_vh_{rx,tx}_raw
 *          and read DIR's maps instead of loading a fresh copy),
 *          --text (print the seed's text instead of JSON), --atomic
 *          (atomic adds, as stock mode uses), --no-cgroup, --max-cgroups N, --cpu N,
 *          --load-all (also load the classic tracepoint programs),
 *          --stock (load the stock-mode programs, retargeted).
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "vh-common.h"
#include "vh-json.h"
#include "vh-maps.h"
#include "vh-text.h"
#include "vhost-hist.skel.h"

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list args)
{
	if (level == LIBBPF_DEBUG)
		return 0;
	return vfprintf(stderr, fmt, args);
}

static int test_run(int prog_fd, __u64 a, __u64 b, __u32 repeat, int cpu)
{
	__u64 ctx[2] = { a, b };
	LIBBPF_OPTS(bpf_test_run_opts, opts,
		.ctx_in = ctx,
		.ctx_size_in = sizeof(ctx),
	);
	__u32 i;

	if (cpu >= 0) {
		opts.flags = BPF_F_TEST_RUN_ON_CPU;
		opts.cpu = cpu;
	}
	/* raw_tp test runs refuse .repeat: one syscall per event. */
	for (i = 0; i < repeat; i++)
		if (bpf_prog_test_run_opts(prog_fd, &opts))
			return -errno;
	return 0;
}

static int tracing_run(int prog_fd, __u32 repeat)
{
	LIBBPF_OPTS(bpf_test_run_opts, opts);
	__u32 i;

	/* Tracing test runs ignore .repeat: one call of bpf_fentry_test*. */
	for (i = 0; i < repeat; i++)
		if (bpf_prog_test_run_opts(prog_fd, &opts))
			return -errno;
	return 0;
}

/* The program behind a pinned link. */
static int pinned_prog_fd(const char *dir, const char *prog)
{
	struct bpf_link_info info;
	char path[4200];
	__u32 len = sizeof(info);
	int fd, err;

	snprintf(path, sizeof(path), "%s/link_%s", dir, prog);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return -errno;
	memset(&info, 0, sizeof(info));
	err = bpf_obj_get_info_by_fd(fd, &info, &len);
	close(fd);
	if (err)
		return -errno;
	fd = bpf_prog_get_fd_by_id(info.prog_id);
	return fd < 0 ? -errno : fd;
}

static int pinned_map_fd(const char *dir, const char *map)
{
	char path[4200];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, map);
	fd = bpf_obj_get(path);
	return fd < 0 ? -errno : fd;
}

static int move_to_cgroup(const char *dir)
{
	char path[4200];
	FILE *f;

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	f = fopen(path, "w");
	if (!f)
		return -errno;
	fprintf(f, "%d\n", getpid());
	if (fclose(f))
		return -errno;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "no-cgroup", no_argument, NULL, 'C' },
		{ "cache", required_argument, NULL, 'N' },
		{ "max-cgroups", required_argument, NULL, 'm' },
		{ "cpu", required_argument, NULL, 'c' },
		{ "load-all", no_argument, NULL, 'a' },
		{ "stock", no_argument, NULL, 's' },
		{ "pinned", required_argument, NULL, 'p' },
		{ "text", no_argument, NULL, 't' },
		{ "atomic", no_argument, NULL, 'A' },
		{ 0 },
	};
	bool per_cgroup = true, load_all = false, stock = false;
	enum vh_cache_mode cache = VH_CACHE_PERCPU;
	struct bpf_link *links[4] = { 0 };
	__u32 max_cgroups = VH_DEFAULT_MAX_CGROUPS;
	struct vhost_hist_bpf *skel = NULL;
	const char *pinned = NULL;
	bool text = false, atomic = false;
	int rx_fd, tx_fd;
	struct vh_snapshot snap;
	struct vh_json_ctx jctx = { .mode = "test_run", .kernel = "host" };
	struct vh_maps maps;
	char line[4352], arg[4096], dir[8];
	int opt, cpu = -1, err, lineno = 0, i;
	long long a, b;
	unsigned long repeat;

	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'C': per_cgroup = false; break;
		case 'N':
			if (vh_parse_cache_mode(optarg, &cache))
				return VH_EXIT_USAGE;
			break;
		case 'm': max_cgroups = strtoul(optarg, NULL, 0); break;
		case 'c': cpu = atoi(optarg); break;
		case 'a': load_all = true; break;
		case 's': stock = true; break;
		case 'p': pinned = optarg; break;
		case 't': text = true; break;
		case 'A': atomic = true; break;
		default: return VH_EXIT_USAGE;
		}
	}
	libbpf_set_print(libbpf_print);

	if (pinned) {
		struct vh_meta meta;
		__u32 zero = 0;
		int fd = pinned_map_fd(pinned, "meta");

		if (fd < 0 || bpf_map_lookup_elem(fd, &zero, &meta)) {
			fprintf(stderr, "%s/meta: %s\n", pinned, strerror(errno));
			return VH_EXIT_ERROR;
		}
		max_cgroups = meta.max_cgroups;
		rx_fd = pinned_prog_fd(pinned, "vh_rx_raw");
		tx_fd = pinned_prog_fd(pinned, "vh_tx_raw");
		maps.hists_fd = pinned_map_fd(pinned, "hists");
		maps.cgroup_slots_fd = pinned_map_fd(pinned, "cgroup_slots");
		maps.counters_fd = pinned_map_fd(pinned, "counters");
		if (rx_fd < 0 || tx_fd < 0 || maps.hists_fd < 0 ||
		    maps.cgroup_slots_fd < 0 || maps.counters_fd < 0) {
			fprintf(stderr, "%s: missing pinned programs or maps\n", pinned);
			return VH_EXIT_ERROR;
		}
	} else {
		skel = vhost_hist_bpf__open();
		if (!skel) {
			fprintf(stderr, "open: %s\n", strerror(errno));
			return VH_EXIT_ERROR;
		}
		skel->rodata->per_cgroup = per_cgroup;
		skel->rodata->cache_mode = cache;
		skel->rodata->atomic_updates = atomic;
		skel->rodata->max_cgroups = max_cgroups;
		bpf_map__set_max_entries(skel->maps.hists, (max_cgroups + 1) * VH_NR_DIRS);
		bpf_map__set_max_entries(skel->maps.cgroup_slots, max_cgroups);

		bpf_program__set_autoload(skel->progs.vh_rx_tp, load_all);
		bpf_program__set_autoload(skel->progs.vh_tx_tp, load_all);
		if (stock) {
			/* Same code, retargeted to functions the host kernel has. */
			bpf_program__set_attach_target(skel->progs.vh_stock_rx_enter, 0, "bpf_fentry_test1");
			bpf_program__set_attach_target(skel->progs.vh_stock_tx_enter, 0, "bpf_fentry_test1");
			bpf_program__set_attach_target(skel->progs.vh_stock_arm, 0, "bpf_fentry_test2");
			bpf_program__set_attach_target(skel->progs.vh_stock_weight, 0, "bpf_fentry_test3");
			bpf_program__set_attach_target(skel->progs.vh_stock_rx_exit, 0, "bpf_fentry_test5");
			bpf_program__set_attach_target(skel->progs.vh_stock_tx_exit, 0, "bpf_fentry_test5");
		} else {
			bpf_program__set_autoload(skel->progs.vh_stock_rx_enter, false);
			bpf_program__set_autoload(skel->progs.vh_stock_rx_exit, false);
			bpf_program__set_autoload(skel->progs.vh_stock_tx_enter, false);
			bpf_program__set_autoload(skel->progs.vh_stock_tx_exit, false);
			bpf_program__set_autoload(skel->progs.vh_stock_weight, false);
			bpf_program__set_autoload(skel->progs.vh_stock_arm, false);
		}

		err = vhost_hist_bpf__load(skel);
		if (err) {
			fprintf(stderr, "load: %s\n", strerror(-err));
			return err == -EPERM || err == -EACCES ? VH_EXIT_NO_PERMISSION : VH_EXIT_ERROR;
		}

		rx_fd = bpf_program__fd(skel->progs.vh_rx_raw);
		tx_fd = bpf_program__fd(skel->progs.vh_tx_raw);
		maps.hists_fd = bpf_map__fd(skel->maps.hists);
		maps.cgroup_slots_fd = bpf_map__fd(skel->maps.cgroup_slots);
		maps.counters_fd = bpf_map__fd(skel->maps.counters);
	}

	while (fgets(line, sizeof(line), stdin)) {
		lineno++;
		repeat = 1;
		if (line[0] == '\n' || line[0] == '#')
			continue;
		if (sscanf(line, "cgroup %4095s", arg) == 1) {
			err = move_to_cgroup(arg);
		} else if (sscanf(line, "stock %7s %lu", dir, &repeat) == 2) {
			bool rx = strcmp(dir, "rx") == 0;

			if (!stock || !skel) {
				fprintf(stderr, "line %d: stock needs --stock\n", lineno);
				return VH_EXIT_USAGE;
			}
			links[0] = bpf_program__attach(rx ? skel->progs.vh_stock_rx_enter
							   : skel->progs.vh_stock_tx_enter);
			links[1] = bpf_program__attach(skel->progs.vh_stock_weight);
			links[2] = bpf_program__attach(rx ? skel->progs.vh_stock_rx_exit
							   : skel->progs.vh_stock_tx_exit);
			links[3] = bpf_program__attach(skel->progs.vh_stock_arm);
			err = 0;
			for (i = 0; i < 4; i++)
				if (!links[i])
					err = -errno;
			if (!err)
				err = tracing_run(bpf_program__fd(skel->progs.vh_stock_weight),
						  repeat);
			for (i = 0; i < 4; i++) {
				bpf_link__destroy(links[i]);
				links[i] = NULL;
			}
		} else if (sscanf(line, "%7s %lld %lld %lu", dir, &a, &b, &repeat) >= 3 &&
			   (!strcmp(dir, "rx") || !strcmp(dir, "tx"))) {
			/* Raw tracepoint args are u64: an int arrives sign-extended. */
			err = test_run(strcmp(dir, "rx") ? tx_fd : rx_fd,
				       (__u64)a, (__u64)b, repeat, cpu);
		} else {
			fprintf(stderr, "line %d: cannot parse: %s", lineno, line);
			return VH_EXIT_USAGE;
		}
		if (err) {
			fprintf(stderr, "line %d: %s\n", lineno, strerror(-err));
			return VH_EXIT_ERROR;
		}
	}

	maps.max_cgroups = max_cgroups;
	err = vh_read_snapshot(&maps, &snap);
	if (err) {
		fprintf(stderr, "read maps: %s\n", strerror(-err));
		return VH_EXIT_ERROR;
	}
	jctx.max_cgroups = max_cgroups;
	if (text)
		vh_print_snapshot_text(stdout, &snap);
	else
		vh_print_json(stdout, &jctx, &snap);
	vh_free_snapshot(&snap);
	vhost_hist_bpf__destroy(skel);
	return 0;
}
