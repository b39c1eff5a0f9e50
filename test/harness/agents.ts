// Real agent processes posing as nodes: each gets a fixture cgroup tree, a recording of loader
// snapshots replayed as its loader, and its own state dir. Ground truth is what the recording
// holds, so a test can compare reports with it exactly.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { AGENT_NODE_FLAGS } from '../../src/agent/node-flags.js';
import { fromValues } from '../../src/api/histogram.js';
import { formatSnapshotLine, LOADER_SNAPSHOT_VERSION, type LoaderSnapshot } from '../../src/loader/snapshot.js';

const REPO = resolve(import.meta.dirname, '../..');

/** A cgroup of the fixture tree: a pod's container, or something that is no pod. */
export function podCgroup(root: string, podUid: string): number {
  const dir = join(root, 'kubepods.slice/kubepods-burstable.slice', `kubepods-burstable-pod${podUid.replaceAll('-', '_')}.slice`, 'cri-containerd-qemu.scope');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(root, 'cgroup.controllers'), 'cpu memory\n');
  return statSync(dir).ino;
}

/** Runs (packets per run) of one cgroup and direction; bytes are packets * frameBytes. */
export interface Workload {
  cgroupId: number;
  direction: 'rx' | 'tx';
  runs: number[];
  frameBytes: number;
}

/**
 * Cumulative snapshots: `idleFrames` all-zero frames (time for the agent to open its ledgers),
 * then the runs released in `steps` equal parts, the last frame holding everything.
 */
export function recording(workloads: Workload[], idleFrames: number, steps: number): LoaderSnapshot[] {
  const frames: LoaderSnapshot[] = [];
  for (let f = 0; f < idleFrames + steps; f++) {
    const upTo = (runs: number[]) => runs.slice(0, Math.round((runs.length * Math.max(0, f - idleFrames + 1)) / steps));
    frames.push({
      type: 'snapshot', version: LOADER_SNAPSHOT_VERSION, seq: f, time: '2026-11-24T00:00:00.000Z', mode: 'tracepoint', kernel: '6.12.0-test',
      takeover: false, intervalSeconds: 1, maxCgroups: 256, dropped: { keysRefused: 0, overflowEvents: 0 },
      histograms: workloads.map((w) => {
        const runs = upTo(w.runs);
        return { cgroupId: w.cgroupId, direction: w.direction, packets: fromValues(runs), bytes: fromValues(runs.map((r) => r * w.frameBytes)) };
      }),
      counters: { slowPath: 0, noStorage: 0, stockUnpaired: 0 },
    });
  }
  return frames;
}

export interface AgentProcess {
  node: string;
  dir: string;
  proc: ChildProcess;
  logFile: string;
  /** SIGKILL the agent (its loader, a child, is killed too). */
  kill(): Promise<void>;
  stop(): Promise<void>;
  /** The replay loader's pid, to kill it alone. */
  loaderPid(): number | undefined;
  /** The port of its /metrics, /healthz, /readyz, from its log (PORT=0 picks one). */
  port(): number | undefined;
}

export function startAgent(opts: {
  node: string;
  dir: string;
  kubeconfig: string;
  frames: LoaderSnapshot[];
  frameSeconds: number;
  /** The replayed loader's -i (the real agent runs the loader at 1 s); tests go faster. */
  loaderIntervalSeconds?: number;
  /** The agent's node flags: those the DaemonSet gives it unless a benchmark says otherwise. */
  nodeArgs?: string[];
  /** The build to run (a benchmark compares two side by side); the repo's dist/ by default. */
  dist?: string;
  /** How the recording's lines are written: as this build's loader prints them by default. */
  formatLine?: (s: LoaderSnapshot) => string;
  env?: Record<string, string>;
}): AgentProcess {
  const { dir } = opts;
  mkdirSync(join(dir, 'proc'), { recursive: true });
  mkdirSync(join(dir, 'cg'), { recursive: true });
  const rec = join(dir, 'recording.jsonl');
  writeFileSync(rec, opts.frames.map(opts.formatLine ?? formatSnapshotLine).join('\n') + '\n');
  const dist = opts.dist ?? join(REPO, 'dist');
  const replay = `${process.execPath} ${join(dist, 'agent/replay.js')}`;
  const logFile = join(dir, 'agent.log');
  const fd = openSync(logFile, 'a');
  const proc = spawn(process.execPath, [...(opts.nodeArgs ?? AGENT_NODE_FLAGS), join(dist, 'agent/main.js')], {
    stdio: ['ignore', fd, fd],
    env: {
      PATH: process.env.PATH,
      NODE_NAME: opts.node,
      POD_NAMESPACE: 'vhosttrace-system',
      KUBECONFIG: opts.kubeconfig,
      VHOSTTRACE_LOADER: `${replay} --recording ${rec} --state ${join(dir, 'pins')} -i ${opts.loaderIntervalSeconds ?? 0.2} --frame-seconds ${opts.frameSeconds}`,
      VHOSTTRACE_LOADER_STOP: `${replay} --state ${join(dir, 'pins')} --stop`,
      VHOSTTRACE_STATE_DIR: join(dir, 'state'),
      VHOSTTRACE_CGROUP_ROOT: join(dir, 'cg'),
      VHOSTTRACE_PROC_ROOT: join(dir, 'proc'),
      VHOSTTRACE_TRACEFS: join(dir, 'no-tracefs'),
      PORT: '0',
      ...opts.env,
    },
  });
  closeSync(fd);
  const exited = new Promise<void>((r) => proc.on('exit', () => r()));
  return {
    node: opts.node,
    dir,
    proc,
    logFile,
    async kill() {
      proc.kill('SIGKILL');
      await exited;
      // The replay was the agent's child; with the agent gone nobody stops it.
      const pid = this.loaderPid();
      if (pid) process.kill(pid, 'SIGKILL');
    },
    async stop() {
      proc.kill('SIGTERM');
      await exited;
    },
    loaderPid: () => findProcess((argv) => argv.includes('replay.js') && argv.includes(rec) && !argv.includes('--stop')),
    port() {
      // The last start's line: a restarted agent picks a new port.
      const lines = readFileSync(logFile, 'utf8').split('\n').filter((l) => l.includes('"serving /metrics'));
      const last = lines.at(-1);
      return last ? (JSON.parse(last) as { port: number }).port : undefined;
    },
  };
}

/** The pid of a process whose argv satisfies `match`, read from /proc. */
export function findProcess(match: (argv: string) => boolean): number | undefined {
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (match(readFileSync(`/proc/${pid}/cmdline`, 'utf8'))) return Number(pid);
    } catch {
      /* exited meanwhile */
    }
  }
  return undefined;
}
