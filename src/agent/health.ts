// Whether this node can trace, and why not, from the kernel probe and the loader's state.
// This is what reports carry, so a trace's status can name a failing node and say what to do.
import type { Condition, TraceMode } from '../api/v1alpha1.js';
import type { LoaderExit } from './loader-supervisor.js';
import type { KernelFacts } from './probe.js';
import { LOADER_EXIT } from '../loader/exit-codes.js';
import type { LoaderMode } from '../loader/snapshot.js';

/** What the agent knows about its node's ability to trace (kernel probe + loader health). */
export interface NodeHealth {
  state: 'Pending' | 'Reporting' | 'Failed';
  reason?: string;
  message?: string;
  kernel: string;
  mode?: TraceMode;
  conditions?: Condition[];
}

export interface LoaderState {
  running: boolean;
  restarts: number;
  lastExit?: LoaderExit;
  lastSnapshotMode?: LoaderMode;
  lastSnapshotAt?: Date;
  /** When the current loader's first snapshot arrived. */
  upSince?: Date;
  /** Set while the node asks the agent to let go of vhost_net (see DETACH_ANNOTATION). */
  detached?: Detach;
  /** The last detach that ended: the maps were made anew then. */
  lastDetach?: EndedDetach;
}

/**
 * A node annotation that makes its agent stop the loader and unpin its programs, keeping the
 * counts: BPF links on vhost_net's tracepoints or functions hold the module, so `rmmod
 * vhost_net` is refused while a node is traced.
 */
export const DETACH_ANNOTATION = 'vhosttrace.io/detach';

export interface Detach {
  since: Date;
  /** The annotation's value: the admin's note of why. */
  why: string;
  /** The mode the loader counted in before. */
  modeBefore?: LoaderMode;
}

export type EndedDetach = Detach & { until: Date };

/**
 * Who refused bpf(): a missing capability (the agent reads its own CapEff), else the seccomp
 * profile if one applies (the agent reads its own Seccomp mode), else neither: an LSM.
 */
function permissionHint(facts: KernelFacts, said: string): string {
  if (facts.missingCapabilities.length) {
    return `bpf() was refused: the agent's container lacks ${facts.missingCapabilities.join(' and ')}; add BPF and PERFMON to its securityContext capabilities (the chart's agent.capabilities)`;
  }
  // The loader says "stock-mode" when the fentry programs were refused (bpf/vhost-hist.c).
  if (/stock-mode/.test(said) && !facts.sysAdmin) {
    return "stock mode (no vhost_net tracepoints here) attaches to vhost_net's functions by the module's BTF, which the kernel hands out only to CAP_SYS_ADMIN: add SYS_ADMIN to the agent's capabilities (the chart's agent.capabilities={BPF,PERFMON,SYS_ADMIN}), or load the vhosttrace vhost_net module (kernel/README.md), whose tracepoints need only CAP_BPF and CAP_PERFMON";
  }
  if (facts.seccomp === 0) {
    return 'bpf() was refused although the agent holds CAP_BPF and CAP_PERFMON and no seccomp profile applies: a security module (AppArmor, SELinux) or kernel lockdown refused it; see the node\'s audit log';
  }
  return "bpf() was refused although the agent holds CAP_BPF and CAP_PERFMON: its seccomp profile refuses bpf() or perf_event_open() (containerd's default allows them with those capabilities since 1.6.9); use a runtime that does, or the chart's agent.seccompProfile";
}

/** vhost-hist's exit codes (docs/bpf.md) as report reasons, with what to do about each. */
function explainExit(code: number, facts: KernelFacts, said: string): { reason: string; hint: string } | undefined {
  switch (code) {
    case LOADER_EXIT.noTracepoint:
      return {
        reason: 'TracepointMissing',
        hint: facts.vhostNetLoaded
          ? 'vhost_net is loaded without the vhost_net_rx_end/tx_end tracepoints and stock-kernel mode is not possible here: install the vhosttrace vhost_net module (kernel/README.md)'
          : 'vhost_net is not loaded (no VM on this node uses vhost-net yet?): its tracepoints appear when the vhosttrace vhost_net module is loaded (kernel/README.md)',
      };
    case LOADER_EXIT.noBtf:
      return { reason: 'BTFMissing', hint: 'the kernel has no BTF at /sys/kernel/btf/vmlinux: run a kernel built with CONFIG_DEBUG_INFO_BTF=y' };
    case LOADER_EXIT.noPermission:
      return { reason: 'PermissionDenied', hint: permissionHint(facts, said) };
    case LOADER_EXIT.noBpffs:
      return {
        reason: 'BPFFSMissing',
        hint: `the agent's /sys/fs/bpf is ${facts.bpffsType ? `${facts.bpffsType}, not a bpf filesystem` : 'not mounted'}: mount bpffs on the node (\`mount -t bpf bpf /sys/fs/bpf\`, shared: \`mount --make-shared /sys/fs/bpf\`; systemd does both at boot), then delete the agent pod`,
      };
    case LOADER_EXIT.pinMismatch:
      return { reason: 'LoaderFailed', hint: 'pinned maps of another vhost-hist version are in /sys/fs/bpf/vhosttrace: run `vhost-hist --stop` on the node' };
    default:
      return undefined;
  }
}

const modeOf = (m?: LoaderMode): TraceMode | undefined => (m === 'fentry' ? 'fentry' : m ? 'tracepoint' : undefined);
const describeExit = (e: LoaderExit) => (e.signal ? `signal ${e.signal}` : `exit code ${e.code}`);

export function nodeHealth(facts: KernelFacts, loader: LoaderState, now: Date, staleAfterMs: number, started: Date): NodeHealth {
  const conditions: Condition[] = [];
  const t = (d?: Date) => (d ?? started).toISOString().replace(/\.\d{3}Z$/, 'Z');
  let health: NodeHealth;
  const fresh = loader.lastSnapshotAt && now.getTime() - loader.lastSnapshotAt.getTime() <= staleAfterMs;
  const permanent = loader.lastExit?.code != null ? explainExit(loader.lastExit.code, facts, loader.lastExit.stderr) : undefined;

  if (loader.detached) {
    const d = loader.detached;
    health = {
      state: 'Pending',
      kernel: facts.kernel,
      reason: 'Detached',
      message: `the node carries the annotation ${DETACH_ANNOTATION}${d.why ? `=${d.why}` : ''}: the loader is stopped and its programs unpinned, so vhost_net can be unloaded (rmmod vhost_net); the counts so far are kept; remove the annotation to trace again`,
    };
    conditions.push({ type: 'Traceable', status: 'False', reason: 'Detached', message: health.message!, lastTransitionTime: t(d.since) });
  } else if (loader.running && fresh) {
    const mode = modeOf(loader.lastSnapshotMode);
    health = { state: 'Reporting', kernel: facts.kernel, mode };
    conditions.push({ type: 'Traceable', status: 'True', reason: mode === 'fentry' ? 'StockKernel' : 'Tracepoint', message: mode === 'fentry' ? 'no vhost_net tracepoints: counting with fentry/fexit on the stock module' : 'vhost_net tracepoints attached', lastTransitionTime: t(loader.upSince) });
  } else if (!loader.running && permanent && loader.lastExit) {
    const said = loader.lastExit.stderr.split('\n').pop() ?? '';
    health = { state: 'Failed', kernel: facts.kernel, reason: permanent.reason, message: `${said ? `${said}; ` : ''}${permanent.hint}`.slice(0, 1024) };
    conditions.push({ type: 'Traceable', status: 'False', reason: permanent.reason, message: health.message!, lastTransitionTime: t(loader.lastExit.at) });
  } else if (loader.lastExit && !loader.running) {
    health = { state: 'Pending', kernel: facts.kernel, reason: 'LoaderRestarting', message: `the loader exited (${describeExit(loader.lastExit)}); restarting it` };
    conditions.push({ type: 'Traceable', status: 'Unknown', reason: 'LoaderRestarting', message: health.message!, lastTransitionTime: t(loader.lastExit.at) });
  } else {
    health = { state: 'Pending', kernel: facts.kernel, reason: 'LoaderStarting', message: 'waiting for the first snapshot of the loader' };
    conditions.push({ type: 'Traceable', status: 'Unknown', reason: 'LoaderStarting', message: health.message!, lastTransitionTime: t(started) });
  }
  if (loader.restarts > 0 && loader.lastExit) {
    conditions.push({
      type: 'LoaderRestarted',
      status: 'True',
      reason: 'LoaderExited',
      message: `the loader exited ${loader.restarts} time(s), last with ${describeExit(loader.lastExit)}; pinned maps kept counting while it was down`,
      lastTransitionTime: t(loader.lastExit.at),
    });
  }
  if (loader.lastDetach && !loader.detached) {
    const d = loader.lastDetach;
    const after = modeOf(loader.lastSnapshotMode);
    const before = modeOf(d.modeBefore);
    conditions.push({
      type: 'Detached',
      status: 'False',
      reason: 'Reattached',
      message: `detached on request from ${t(d.since)} to ${t(d.until)}: the programs were loaded anew (vhost_net may have been reloaded meanwhile) and the counts from before are carried over${before && after && before !== after ? `; counting with ${after} now, ${before} before` : ''}`,
      lastTransitionTime: t(d.until),
    });
  }
  health.conditions = conditions;
  return health;
}
