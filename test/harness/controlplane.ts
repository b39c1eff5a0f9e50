// A real Kubernetes control plane for tests, in the manner of controller-runtime's envtest:
// etcd and kube-apiserver built from the Go module proxy (test/tools/build), listening only on
// loopback ports picked at start, with a generated CA, an admin client certificate and a
// service-account signing key. docs/testing.md shows how to run the same by hand.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { makePki, type Pki } from './pki.js';

const REPO = resolve(import.meta.dirname, '../..');

export interface ControlPlaneOptions {
  /** Where data, certificates and logs go; a new temp dir by default, removed on stop. */
  dir?: string;
  /** Extra kube-apiserver flags, e.g. ['--enable-admission-plugins=...']. */
  apiServerFlags?: string[];
  /** Progress lines (the cold build takes minutes; say so). */
  log?: (line: string) => void;
}

export interface ControlPlane {
  dir: string;
  server: string;
  kubeconfig: string;
  pki: Pki;
  /** Stops kube-apiserver and starts it again on the same port and data (etcd keeps running). */
  restartApiServer(): Promise<void>;
  /** An outage: kube-apiserver stopped (etcd keeps running) until startApiServer(). */
  stopApiServer(): Promise<void>;
  startApiServer(): Promise<void>;
  stop(): Promise<void>;
}

/** Builds (or finds in the cache) the named binaries; returns their paths by name. */
export async function testBinaries(names: string[], log?: (l: string) => void): Promise<Record<string, string>> {
  const child = execFile(join(REPO, 'test/tools/build'), names, { maxBuffer: 1 << 20 });
  child.stderr?.on('data', (d: Buffer) => log?.(d.toString().trimEnd()));
  const out = await new Promise<string>((res, rej) => {
    let stdout = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.on('error', rej);
    child.on('exit', (code) => (code === 0 ? res(stdout) : rej(new Error(`test/tools/build ${names.join(' ')} exited ${code}`))));
  });
  const paths = out.trim().split('\n');
  return Object.fromEntries(names.map((n, i) => [n, paths[i]!]));
}

/** A free loopback port (bound and released; the short race is acceptable in tests). */
export async function freePort(): Promise<number> {
  return (await freePorts(1))[0]!;
}

/**
 * n distinct free loopback ports. All n stay bound until the last is picked: ports bound and
 * released one at a time can come back twice (CI saw etcd's client and peer port collide).
 */
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(Array.from({ length: n }, () => new Promise<Server>((res, rej) => {
    const srv = createServer();
    srv.on('error', rej);
    srv.listen(0, '127.0.0.1', () => res(srv));
  })));
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

export function logTail(file: string, lines = 40): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** A child process whose output goes to a log file and which is killed if the test run dies. */
class Component {
  private proc?: ChildProcess;
  private exited?: Promise<number | null>;
  constructor(
    readonly name: string,
    private readonly bin: string,
    private readonly args: string[],
    readonly logFile: string,
  ) {}

  start(): void {
    const fd = openSync(this.logFile, 'a');
    const proc = spawn(this.bin, this.args, { stdio: ['ignore', fd, fd] });
    closeSync(fd);
    this.proc = proc;
    this.exited = new Promise((res) => proc.on('exit', (code) => res(code)));
    live.add(this);
  }

  /** Resolves when probe() succeeds; fails with the log tail if the process exits or time runs out. */
  async ready(probe: () => Promise<boolean>, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let exitCode: number | null | undefined;
    void this.exited?.then((c) => (exitCode = c));
    while (Date.now() < deadline) {
      if (exitCode !== undefined) break;
      if (await probe().catch(() => false)) return;
      await new Promise((r) => setTimeout(r, 200));
    }
    const why = exitCode !== undefined ? `exited with code ${exitCode}` : `not ready after ${timeoutMs / 1000} s`;
    throw new Error(`${this.name} ${why}; last lines of ${this.logFile}:\n${logTail(this.logFile)}`);
  }

  async stop(graceMs = 10_000): Promise<void> {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
    live.delete(this);
  }

  kill(): void {
    this.proc?.kill('SIGKILL');
  }
}

const live = new Set<Component>();
process.on('exit', () => live.forEach((c) => c.kill()));

function get(url: string, tls?: { ca: Buffer; cert: Buffer; key: Buffer }): Promise<{ status: number; body: string }> {
  return new Promise((res, rej) => {
    const req = (tls ? httpsRequest : httpRequest)(url, { ...tls, timeout: 2000 }, (r) => {
      let body = '';
      r.on('data', (d: Buffer) => (body += d.toString()));
      r.on('end', () => res({ status: r.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', rej);
    req.end();
  });
}

/** A kubeconfig for server with the admin credential, or with another client certificate. */
export function kubeconfigYaml(server: string, pki: Pki, user: { cert: string; key: string } = { cert: pki.adminCert, key: pki.adminKey }): string {
  const b64 = (f: string) => readFileSync(f).toString('base64');
  return `apiVersion: v1
kind: Config
clusters:
- name: vhosttrace-test
  cluster:
    server: ${server}
    certificate-authority-data: ${b64(pki.caCert)}
users:
- name: admin
  user:
    client-certificate-data: ${b64(user.cert)}
    client-key-data: ${b64(user.key)}
contexts:
- name: vhosttrace-test
  context: {cluster: vhosttrace-test, user: admin, namespace: default}
current-context: vhosttrace-test
`;
}

/** etcd and kube-apiserver on fresh ports, started; throws with the failing component's log tail. */
async function launch(dir: string, pki: Pki, bins: Record<string, string>, opts: ControlPlaneOptions, log: (l: string) => void) {
  const [etcdPort, peerPort, apiPort] = await freePorts(3);
  const etcdUrl = `http://127.0.0.1:${etcdPort}`;
  const server = `https://127.0.0.1:${apiPort}`;

  const etcd = new Component('etcd', bins.etcd!, [
    `--data-dir=${join(dir, 'etcd')}`,
    `--listen-client-urls=${etcdUrl}`,
    `--advertise-client-urls=${etcdUrl}`,
    `--listen-peer-urls=http://127.0.0.1:${peerPort}`,
    `--initial-advertise-peer-urls=http://127.0.0.1:${peerPort}`,
    `--initial-cluster=default=http://127.0.0.1:${peerPort}`,
    '--unsafe-no-fsync', // test data: durability across power loss does not matter, speed does
    '--log-level=warn',
  ], join(dir, 'etcd.log'));

  const apiServer = new Component('kube-apiserver', bins['kube-apiserver']!, [
    `--etcd-servers=${etcdUrl}`,
    '--bind-address=127.0.0.1',
    '--advertise-address=127.0.0.1',
    `--secure-port=${apiPort}`,
    `--cert-dir=${join(dir, 'apiserver-certs')}`,
    `--tls-cert-file=${pki.servingCert}`,
    `--tls-private-key-file=${pki.servingKey}`,
    `--client-ca-file=${pki.caCert}`,
    `--service-account-key-file=${pki.saPublicKey}`,
    `--service-account-signing-key-file=${pki.saPrivateKey}`,
    `--service-account-issuer=${server}`,
    '--service-cluster-ip-range=10.96.0.0/24', // a setting; nothing is routed there
    '--authorization-mode=RBAC',
    '--allow-privileged=true',
    // How the API server proves itself to a kubelet (logs, exec); only real test nodes have one.
    `--kubelet-client-certificate=${pki.adminCert}`,
    `--kubelet-client-key=${pki.adminKey}`,
    ...(opts.apiServerFlags ?? []),
  ], join(dir, 'kube-apiserver.log'));

  const tls = { ca: readFileSync(pki.caCert), cert: readFileSync(pki.adminCert), key: readFileSync(pki.adminKey) };
  const startApiServer = async () => {
    apiServer.start();
    await apiServer.ready(async () => (await get(`${server}/readyz`, tls)).status === 200, 90_000);
  };

  try {
    log(`etcd on ${etcdUrl}, kube-apiserver on ${server}, files in ${dir}`);
    etcd.start();
    await etcd.ready(async () => (await get(`${etcdUrl}/health`)).body.includes('"true"'), 30_000);
    await startApiServer();
  } catch (err) {
    await apiServer.stop();
    await etcd.stop();
    throw err;
  }
  return { server, etcd, apiServer, startApiServer };
}

export async function startControlPlane(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const log = opts.log ?? (() => {});
  const ownDir = !opts.dir;
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'vhosttrace-cp-'));
  mkdirSync(dir, { recursive: true });

  const bins = await testBinaries(['etcd', 'kube-apiserver'], log);
  const pki = makePki(dir);
  // Another process can take a picked port before etcd or kube-apiserver binds it: try new ports.
  let cp: Awaited<ReturnType<typeof launch>> | undefined;
  for (let attempt = 1; !cp; attempt++) {
    try {
      cp = await launch(dir, pki, bins, opts, log);
    } catch (err) {
      const portTaken = /address already in use/.test(String(err));
      if (portTaken && attempt < 3) {
        log(`a picked port was taken (attempt ${attempt}); picking new ports`);
        rmSync(join(dir, 'etcd'), { recursive: true, force: true });
        continue;
      }
      if (ownDir && !process.env.VHOSTTRACE_KEEP_CONTROL_PLANE) rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }
  const { server, etcd, apiServer, startApiServer } = cp;

  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(kubeconfig, kubeconfigYaml(server, pki));
  log(`control plane ready; KUBECONFIG=${kubeconfig}`);

  return {
    dir,
    server,
    kubeconfig,
    pki,
    async restartApiServer() {
      await apiServer.stop();
      await startApiServer();
    },
    stopApiServer: () => apiServer.stop(),
    startApiServer,
    async stop() {
      await apiServer.stop();
      await etcd.stop();
      if (ownDir && !process.env.VHOSTTRACE_KEEP_CONTROL_PLANE) rmSync(dir, { recursive: true, force: true });
    },
  };
}

