// Brings up the real test node by hand: a control plane on loopback and one kernel test bed guest
// as its node (test/node/node.ts), prints how to reach it, and keeps both until Ctrl-C.
//   test/node/up [--kernel 6.12|6.1] [--unpatched] [--image OCI-ARCHIVE]...
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { startCluster } from '../harness/cluster.js';
import type { Kernel } from '../kernel/testbed.js';
import { NodeEgress, nodeClusterOptions, startNode } from './node.js';

const { values } = parseArgs({
  options: {
    kernel: { type: 'string', default: '6.12' },
    unpatched: { type: 'boolean', default: false },
    image: { type: 'string', multiple: true, default: [] },
    name: { type: 'string', default: 'node-1' },
  },
});
if (values.kernel !== '6.1' && values.kernel !== '6.12') throw new Error(`--kernel: 6.1 or 6.12, not ${values.kernel}`);

const t0 = Date.now();
const log = (l: string) => console.log(`[${((Date.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${l}`);
const pause = execFileSync('test/node/pause-image', { encoding: 'utf8' }).trim().split('\n').pop()!;
const egress = new NodeEgress();
const cluster = await startCluster({ extras: ['kube-controller-manager', 'kube-scheduler'], log, ...(await nodeClusterOptions(egress)) });
const node = await startNode({
  cluster,
  egress,
  kernel: values.kernel as Kernel,
  name: values.name,
  images: [pause, ...values.image],
  unpatched: values.unpatched,
  log,
}).catch(async (e: unknown) => {
  await cluster.stop();
  throw e;
});
log(`ready: KUBECONFIG=${cluster.kubeconfig}; node logs in ${node.outDir}/node/logs; Ctrl-C stops`);
let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  log('stopping');
  await node.stop();
  await cluster.stop();
  egress.stop();
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
setInterval(() => {}, 1 << 30);
