// Names, before any guest boots, the Debian kernels this run tests (resolved at setup time).
import { KERNELS, testedKernel } from './testbed.js';

export default function setup(): void {
  for (const series of KERNELS) {
    const k = testedKernel(series);
    console.log(`kernel tests: ${series} is Debian ${k.version} (linux ${k.release})`);
  }
}
