// A real Kubernetes node for tests: a kernel test bed guest running containerd, a kubelet and a
// kube-proxy (test/node/guest-node), joined to a control plane on the host's loopback. The
// guest's only way out is qemu's forward of 10.0.2.100:PORT to the API server's port.
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CONTROLLERS, eventually, type Cluster } from '../harness/cluster.js';
import { freePort, kubeconfigYaml, testBinaries } from '../harness/controlplane.js';
import { issueClientCert } from '../harness/pki.js';
import type { Kernel } from '../kernel/testbed.js';

const REPO = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
const RUN = join(REPO, 'kernel/testbed/run');
const GUEST_NODE = join(REPO, 'test/node/guest-node');

/** Where the guest reaches the host: qemu forwards 10.0.2.100:PORT to 127.0.0.1:PORT. */
export const HOST_FROM_GUEST = '10.0.2.100';
/** Node i's pods get 10.244.i.0/24 (a range that exists only inside that node's guest). */
export const podCidr = (i: number) => `10.244.${i}.0/24`;
/** The guest's own address on qemu's user-mode network. */
export const GUEST_IP = '10.0.2.15';

/**
 * The API server's way to its nodes (logs, exec, port-forward, proxy): an HTTP CONNECT proxy on
 * a Unix socket, its egress selector for the "cluster" network (a TCP proxy would need mTLS). It knows each real node's kubelet by
 * the node's name and addresses and hands the connection to qemu's --expose of that port; every
 * other target is refused, so nothing the API server dials for a node or pod can leave this
 * machine (a node address like 10.0.2.15 exists nowhere here).
 */
export class NodeEgress {
  private readonly kubelets = new Map<string, number>();
  private server?: Server;
  /** The targets refused so far, host:port as the API server asked for them. */
  readonly refused: string[] = [];

  async start(dir: string): Promise<string[]> {
    this.server = createServer((_req, res) => res.writeHead(405).end());
    this.server.on('connect', (req, client: Socket, head: Buffer) => {
      const local = this.kubelets.get(req.url ?? '');
      if (local === undefined) {
        this.refused.push(req.url ?? '');
        client.end(`HTTP/1.1 403 Forbidden\r\n\r\nvhosttrace test: no route to ${req.url}\n`);
        return;
      }
      const up = connect(local, '127.0.0.1', () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        if (head.length) up.write(head);
        up.pipe(client);
        client.pipe(up);
      });
      up.on('error', () => client.destroy());
      client.on('error', () => up.destroy());
    });
    const socket = join(dir, 'egress.sock');
    await new Promise<void>((r) => this.server!.listen(socket, r));
    const file = join(dir, 'egress.yaml');
    writeFileSync(
      file,
      `apiVersion: apiserver.k8s.io/v1beta1
kind: EgressSelectorConfiguration
egressSelections:
- name: cluster
  connection:
    proxyProtocol: HTTPConnect
    transport:
      uds:
        udsName: ${socket}
`,
    );
    return [`--egress-selector-config-file=${file}`];
  }

  /** Routes name:port and address:port of a node's kubelet to the host port qemu exposes it on. */
  add(targets: string[], kubeletPort: number, hostPort: number): void {
    for (const t of targets) this.kubelets.set(`${t}:${kubeletPort}`, hostPort);
  }

  stop(): void {
    this.server?.close();
  }
}

/** What the control plane needs for a real node: its Service endpoint reachable from the guest. */
export async function nodeClusterOptions(egress: NodeEgress) {
  return {
    apiServerFlags: [
      `--advertise-address=${HOST_FROM_GUEST}`,
      '--authorization-mode=Node', // added to the harness's RBAC (a list flag)
      '--enable-admission-plugins=NodeRestriction',
      ...(await egress.start(mkdtempSync(join(tmpdir(), 'vhosttrace-egress-')))),
    ],
    controllers: [
      ...CONTROLLERS,
      'root-ca-certificate-publisher-controller', // kube-root-ca.crt, which projected token volumes need
      'deployment-controller',
      'replicaset-controller',
      'node-lifecycle-controller', // lifts the not-ready taint once the kubelet says Ready
    ],
  };
}

export interface NodeOptions {
  cluster: Cluster;
  /** The API server's egress proxy (nodeClusterOptions); the node's kubelet is added to it. */
  egress: NodeEgress;
  kernel: Kernel;
  name: string;
  /** OCI archives to import into containerd before the kubelet starts. */
  images: string[];
  labels?: Record<string, string>;
  /** Its pods' range; default podCidr(0). Give each node of a cluster its own. */
  podCidr?: string;
  unpatched?: boolean;
  log?: (line: string) => void;
  /**
   * How long the guest may live at most (default NODE_LIFETIME_S): a backstop for a test
   * process that dies without stopping it, never what a test waits for.
   */
  timeoutSeconds?: number;
}

/**
 * Longer than any CI run (90 minutes) and any test file on the slowest machine: a node that
 * ended at 30 minutes took down every later step of a slow run (its pods stopped starting).
 */
export const NODE_LIFETIME_S = 4 * 3600;

export interface RealNode {
  name: string;
  /** The run's output directory: console.log, node/logs/ (containerd, kubelet, kube-proxy). */
  outDir: string;
  /** Runs a bash script in the guest (as root, in the chroot the node runs in). */
  exec(script: string, timeoutMs?: number): Promise<{ code: number; out: string }>;
  /** Why the guest is gone (its exit code and the test bed's last words), or undefined while it runs. */
  ended(): string | undefined;
  /** The tail of one of the node's logs, or of the guest's serial console, for failure messages. */
  logTail(name: 'kubelet' | 'containerd' | 'kube-proxy' | 'images' | 'console', lines?: number): string;
  stop(): Promise<number>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startNode(opts: NodeOptions): Promise<RealNode> {
  const log = opts.log ?? (() => {});
  const bins = await testBinaries(['kubelet', 'kube-proxy'], log);
  const { cp } = opts.cluster;
  const port = new URL(cp.server).port;
  const server = `https://${HOST_FROM_GUEST}:${port}`;
  const dir = mkdtempSync(join(tmpdir(), `vhosttrace-node-${opts.name}-`));
  const outDir = join(dir, 'out');
  const nodeDir = join(outDir, 'node');
  mkdirSync(nodeDir, { recursive: true });

  const kubelet = issueClientCert(cp.dir, `kubelet-${opts.name}`, `/O=system:nodes/CN=system:node:${opts.name}`);
  const proxy = issueClientCert(cp.dir, `kube-proxy-${opts.name}`, '/CN=system:kube-proxy');
  writeFileSync(join(nodeDir, 'kubelet.kubeconfig'), kubeconfigYaml(server, cp.pki, kubelet));
  writeFileSync(join(nodeDir, 'kube-proxy.kubeconfig'), kubeconfigYaml(server, cp.pki, proxy));
  writeFileSync(join(nodeDir, 'ca.crt'), readFileSync(cp.pki.caCert));
  // The kubelet listens on a port free on the host too, which qemu exposes there for the egress proxy.
  const kubeletPort = await freePort();
  opts.egress.add([opts.name, GUEST_IP], kubeletPort, kubeletPort);
  const labels = Object.entries(opts.labels ?? {}).map(([k, v]) => `${k}=${v}`).join(',');
  writeFileSync(
    join(nodeDir, 'env'),
    [
      `NODE_NAME=${opts.name}`,
      `API_SERVER=${server}`,
      `POD_CIDR=${opts.podCidr ?? podCidr(0)}`,
      'CLUSTER_CIDR=10.244.0.0/16',
      `KUBELET=${bins.kubelet}`,
      `KUBE_PROXY=${bins['kube-proxy']}`,
      `IMAGES='${opts.images.join(' ')}'`,
      `KUBELET_PORT=${kubeletPort}`,
      `NODE_LABELS='${labels}'`,
    ].join('\n') + '\n',
  );

  // Two vCPUs on one TCG thread: with multi-threaded TCG, a static key flipped while the other
  // vCPU runs the patched code (the kubelet's first cpuset cgroup flips cpusets_enabled, read in
  // get_page_from_freelist) can hit the patch's int3 after the kernel has retired it: an Oops
  // seen on 6.12 (console.log: "Oops: int3" in get_page_from_freelist, then a panic).
  const args = ['--kernel', opts.kernel, '--accel', 'tcg,thread=single', '--smp', '2', '--mem', '3072'];
  args.push('--net', 'user', '--forward', port, '--expose', String(kubeletPort));
  if (opts.unpatched) args.push('--unpatched');
  args.push('--script', GUEST_NODE, '--out', outDir, '--timeout', String(opts.timeoutSeconds ?? NODE_LIFETIME_S));
  const started = Date.now();
  log(`node ${opts.name}: booting Debian ${opts.kernel} (output in ${outDir})`);
  const child = spawn(RUN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let runLog = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    runLog += d;
    for (const line of d.split('\n')) if (line.startsWith('node: ')) log(`node ${opts.name}: ${line.slice(6)}`);
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => (runLog += d));
  let exitCode: number | undefined;
  const exited = new Promise<number>((r) => child.on('close', (c) => r((exitCode = c ?? -1))));

  const tail = (name: string, lines = 30) => {
    const f = name === 'console' ? join(outDir, 'console.log') : join(nodeDir, 'logs', `${name}.log`);
    return existsSync(f) ? readFileSync(f, 'utf8').split('\n').slice(-lines).join('\n') : `(no ${name}.log)`;
  };
  const failure = (what: string) => {
    const failed = existsSync(join(nodeDir, 'failed')) ? readFileSync(join(nodeDir, 'failed'), 'utf8') : '';
    return new Error(
      `node ${opts.name}: ${what}${failed ? `: ${failed}` : ''}\n--- test bed ---\n${runLog.slice(-3000)}` +
        `\n--- kubelet ---\n${tail('kubelet')}\n--- containerd ---\n${tail('containerd', 15)}`,
    );
  };

  let seq = 0;
  const node: RealNode = {
    name: opts.name,
    outDir,
    async exec(script, timeoutMs = 120_000) {
      const n = seq++;
      const base = join(nodeDir, 'cmd', String(n));
      writeFileSync(`${base}.sh.tmp`, `set -euo pipefail\n${script}`);
      // The guest polls for N.sh: make it appear whole.
      renameSync(`${base}.sh.tmp`, `${base}.sh`);
      const deadline = Date.now() + timeoutMs;
      // An exit code read half-written would be "" and Number("") is 0: wait for "N\n".
      let rc = '';
      while (!/^\d+\n$/.test(rc)) {
        if (exitCode !== undefined) throw failure(`the guest ended while running command ${n}`);
        if (Date.now() > deadline) throw new Error(`node ${opts.name}: command ${n} did not finish in ${timeoutMs} ms`);
        await sleep(100);
        rc = existsSync(`${base}.rc`) ? readFileSync(`${base}.rc`, 'utf8') : '';
      }
      return { code: Number(rc), out: readFileSync(`${base}.out`, 'utf8') };
    },
    ended: () => (exitCode === undefined ? undefined : `node ${opts.name}: the guest ended (test bed exit ${exitCode})\n${runLog.slice(-1500)}`),
    logTail: tail,
    async stop() {
      writeFileSync(join(nodeDir, 'stop'), '');
      const t = setTimeout(() => child.kill('SIGTERM'), 60_000);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
  };

  try {
    await eventually(
      async () => {
        if (exitCode !== undefined || existsSync(join(nodeDir, 'failed'))) throw failure('the node did not come up');
        return existsSync(join(nodeDir, 'ready'));
      },
      900_000,
      `node ${opts.name}: containerd, kubelet and kube-proxy started`,
      500,
    ).catch((e: Error) => {
      if (e.message.includes('did not come up')) throw e;
      throw failure(e.message);
    });
    log(`node ${opts.name}: services started after ${((Date.now() - started) / 1000).toFixed(0)} s`);
    await eventually(
      async () => {
        if (exitCode !== undefined) throw failure('the guest ended');
        const r = await opts.cluster.client.request('GET', `/api/v1/nodes/${opts.name}`);
        const ready = r.body?.status?.conditions?.find((c: { type: string }) => c.type === 'Ready');
        return ready?.status === 'True';
      },
      600_000,
      `node ${opts.name} Ready`,
      1000,
    ).catch((e: Error) => {
      throw failure(e.message);
    });
    log(`node ${opts.name}: Ready after ${((Date.now() - started) / 1000).toFixed(0)} s`);
  } catch (e) {
    await node.stop().catch(() => {});
    throw e;
  }
  return node;
}
