// Installing the module the way a node would: boot Debian's own vhost_net, then
// kernel/module/dkms-install --load inside the guest builds the patched one with DKMS against the
// kernel's headers, installs it under updates/dkms, and swaps it in with modprobe.
//
// The build runs in the guest under TCG (about two and a half minutes per kernel), so this file
// runs only with VHOSTTRACE_KERNEL_DKMS=1.
import { describe, expect, it } from 'vitest';
import { compare, parseTrace, type DriverReport, type Workload } from './ground-truth.js';
import { assertGuestOk, KERNELS, runGuest } from './testbed.js';

const REPO = new URL('../..', import.meta.url).pathname.replace(/\/$/, '');
const enabled = process.env.VHOSTTRACE_KERNEL_DKMS === '1';

const WORKLOAD: Workload = { name: 'rx-starved', direction: 'rx', frames: 48, batch: 48, post: 16, sizes: [256] };

// A module tree with just what depmod and the version check need (depmod over the whole tree
// through 9p takes minutes under TCG), and the unpacked headers as its build directory.
const SCRIPT = `
m=/lib/modules/$VT_KREL
src=$VT_KCACHE/root/lib/modules/$VT_KREL
mkdir -p "$m/kernel/drivers/net"
cp -a "$src/kernel/drivers/vhost" "$m/kernel/drivers/"
cp -a "$src"/kernel/drivers/net/tun.ko* "$src"/kernel/drivers/net/tap.ko* "$m/kernel/drivers/net/"
cp "$src"/modules.order "$src"/modules.builtin* "$m/"
ln -s "$VT_KCACHE/root/usr/src/linux-headers-$VT_KREL" "$m/build"

test ! -e /sys/kernel/tracing/events/vhost_net
${REPO}/kernel/module/dkms-install --kernel-release "$VT_KREL" --package-version "$VT_PKGVER" \\
  --source "$VT_KCACHE/src" --load > "$VT_OUT/dkms.log" 2>&1
modinfo -n vhost_net > "$VT_OUT/module-path"
dkms status -m vhost-net-trace > "$VT_OUT/dkms-status"

T=/sys/kernel/tracing
echo 1 > $T/events/vhost_net/enable
vhost-traffic --rx --frames ${WORKLOAD.frames} --batch ${WORKLOAD.batch} --post ${String(WORKLOAD.post)} \\
  --sizes ${WORKLOAD.sizes.join(',')} > "$VT_OUT/driver.json"
echo 0 > $T/tracing_on
cat $T/trace > "$VT_OUT/trace"
`;

describe.skipIf(!enabled).each(KERNELS)('Debian %s: DKMS install on a running node', (kernel) => {
  it('replaces the loaded vhost_net with the DKMS build, whose events add up', async () => {
    const guest = await runGuest({ kernel, unpatched: true, script: SCRIPT, timeoutSeconds: 900 });
    await assertGuestOk(guest);
    expect((await guest.read('module-path')).trim()).toMatch(/\/updates\/dkms\/vhost_net\.ko(\.xz)?$/);
    expect(await guest.read('dkms-status')).toMatch(/: installed/);
    const report = JSON.parse(await guest.read('driver.json')) as DriverReport;
    expect(compare(WORKLOAD, report, parseTrace(await guest.read('trace')))).toEqual([]);
  });
});
