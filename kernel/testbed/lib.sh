# shellcheck shell=bash
# Shared by the test bed scripts: kernel table lookup and cache paths.
#
# Everything a kernel needs is cached under
#   ${VHOSTTRACE_CACHE:-~/.cache/vhosttrace}/kernel/<package-version>/
# and each step leaves a stamp file there holding a hash of its inputs, so a
# warm run skips it and a changed patch or script redoes it.

testbed_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck disable=SC2034 # used by the scripts that source this file
kernel_dir=$(cd "$testbed_dir/.." && pwd)
cache_root=${VHOSTTRACE_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/vhosttrace}/kernel

log() { echo "testbed: $*" >&2; }
die() { echo "testbed: error: $*" >&2; exit 1; }

# kernel_lookup SERIES: sets series, pkgver, krel, kbuild_pkg, kcache.
kernel_lookup() {
	local line
	line=$(awk -v s="$1" '$1 == s { print; exit }' "$testbed_dir/kernels.conf")
	[ -n "$line" ] || die "unknown kernel series '$1' (see kernels.conf)"
	read -r series pkgver krel kbuild_pkg <<<"$line"
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
