# shellcheck shell=bash
# Shared by the test bed scripts: kernel table lookup and cache paths.
#
# Everything a kernel needs is cached under
#   ${VHOSTTRACE_CACHE:-~/.cache/vhosttrace}/kernel/<package-version>/
# with the version each series resolved to in .../kernel/resolved/<series>,
# and each step leaves a stamp file there holding a hash of its inputs, so a
# warm run skips it and a changed patch or script redoes it.

testbed_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck disable=SC2034 # used by the scripts that source this file
kernel_dir=$(cd "$testbed_dir/.." && pwd)
cache_root=${VHOSTTRACE_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/vhosttrace}/kernel

log() { echo "testbed: $*" >&2; }
die() { echo "testbed: error: $*" >&2; exit 1; }

# kernel_resolve SERIES: asks apt's metadata which package version the series
# is tested on (see resolve) and records it for kernel_lookup. Setup
# (ci-prepare) calls it after apt-get update; a newer Debian kernel then
# needs no commit, and its caches live under their own version.
kernel_resolve() {
	local prefer line
	prefer=$(awk -v s="$1" '!/^#/ && $1 == s { print $2; exit }' "$testbed_dir/kernels.conf")
	line=$("$testbed_dir/resolve" "$1" ${prefer:+--prefer "$prefer"}) ||
		die "$1: no Debian kernel of this series can be fetched (see above)"
	mkdir -p "$cache_root/resolved"
	echo "$line" >"$cache_root/resolved/.$1.$$"
	mv "$cache_root/resolved/.$1.$$" "$cache_root/resolved/$1"
	log "$1: resolved to Debian $line"
}

# kernel_lookup SERIES: sets series, pkgver, krel, kbuild_pkg, kcache from the
# recorded resolution (resolving first when there is none).
kernel_lookup() {
	local f=$cache_root/resolved/$1
	kernel_series_all | grep -qxF -- "$1" || die "unknown kernel series '$1' (see kernels.conf)"
	[ -s "$f" ] || kernel_resolve "$1"
	series=$1
	read -r pkgver krel kbuild_pkg <"$f"
	kcache=$cache_root/$pkgver
	export series pkgver krel kbuild_pkg kcache
}

kernel_series_all() {
	awk '!/^#/ && NF { print $1 }' "$testbed_dir/kernels.conf"
}

# inputs_hash FILE...: one hash over the named files (and directories).
inputs_hash() {
	find "$@" -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16
}

stamp_ok() { [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }
