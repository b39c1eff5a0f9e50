import { describe, expect, it } from 'vitest';
import type { Trace } from '../../src/api/reports.js';
import { isActive } from '../../src/api/lifetime.js';
import { defaultConfig } from '../../src/operator/config.js';
import { desiredDaemonSet, selectsNode, type NodeSelectorTerm } from '../../src/operator/daemonset.js';
import { defaultIntervalSeconds, formatSeconds, parseDuration } from '../../src/operator/interval.js';

const NOW = Date.parse('2026-11-24T12:00:00Z');
const cfg = defaultConfig();

function trace(name: string, spec: Partial<Trace['spec']> = {}, extra: Partial<Trace['metadata']> = {}, status?: Trace['status']): Trace {
  return {
    apiVersion: 'vhosttrace.io/v1alpha1',
    kind: 'VhostTrace',
    metadata: { name, namespace: 'ns', uid: `uid-${name}`, generation: 1, creationTimestamp: '2026-11-24T11:59:00Z', ...extra },
    spec: { nodeSelector: { matchLabels: { 'kubevirt.io/schedulable': 'true' } }, ...spec },
    ...(status ? { status } : {}),
  } as Trace;
}

/** The scheduler's rule for requiredDuringScheduling node affinity: any term, all its expressions. */
function schedulable(terms: NodeSelectorTerm[], labels: Record<string, string>): boolean {
  return terms.some((t) =>
    t.matchExpressions.every((e) => {
      const v = labels[e.key];
      switch (e.operator) {
        case 'In':
          return v !== undefined && e.values!.includes(v);
        case 'NotIn':
          return v === undefined || !e.values!.includes(v);
        case 'Exists':
          return v !== undefined;
        case 'DoesNotExist':
          return v === undefined;
      }
    }),
  );
}

describe('desired agent DaemonSet', () => {
  it('exists only while some trace is active', () => {
    expect(desiredDaemonSet([], cfg, NOW)).toBeUndefined();
    const done = trace('done', {}, {}, { phase: 'Completed' });
    const deleting = trace('del', {}, { deletionTimestamp: '2026-11-24T11:59:30Z' });
    const elapsed = trace('old', { duration: '30s' }, {}, { startTime: '2026-11-24T11:59:00Z' });
    for (const t of [done, deleting, elapsed]) expect(isActive(t, NOW), t.metadata.name).toBe(false);
    expect(desiredDaemonSet([done, deleting, elapsed], cfg, NOW)).toBeUndefined();
    const running = trace('run', { duration: '10m' }, {}, { startTime: '2026-11-24T11:59:00Z' });
    expect(isActive(running, NOW)).toBe(true);
    expect(desiredDaemonSet([done, running], cfg, NOW)?.metadata.name).toBe('vhosttrace-agent');
  });

  it('lands exactly on KubeVirt nodes that some active trace selects', () => {
    const traces = [
      trace('a', { nodeSelector: { matchLabels: { 'kubevirt.io/schedulable': 'true', zone: 'a' } } }),
      trace('b', { nodeSelector: { matchExpressions: [{ key: 'gpu', operator: 'Exists' }, { key: 'zone', operator: 'NotIn', values: ['c'] }] } }),
      trace('a2', { nodeSelector: { matchLabels: { zone: 'a', 'kubevirt.io/schedulable': 'true' } } }), // same as a
      trace('gone', { nodeSelector: { matchLabels: { zone: 'z' } } }, {}, { phase: 'Completed' }),
    ];
    const ds = desiredDaemonSet(traces, cfg, NOW)!;
    const terms: NodeSelectorTerm[] = ds.spec.template.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms;
    expect(terms).toHaveLength(2); // a and a2 are one term
    const zones = [undefined, 'a', 'b', 'c', 'z'];
    const kv = [undefined, 'true', 'false'];
    const gpu = [undefined, 'yes'];
    let checked = 0;
    for (const zone of zones)
      for (const k of kv)
        for (const g of gpu) {
          const labels: Record<string, string> = {};
          if (zone) labels.zone = zone;
          if (k) labels['kubevirt.io/schedulable'] = k;
          if (g) labels.gpu = g;
          const want = traces.some((t) => isActive(t, NOW) && selectsNode(t, labels));
          expect(schedulable(terms, labels), JSON.stringify(labels)).toBe(want);
          checked++;
        }
    expect(checked).toBe(30);
  });

  it('is the same object whatever the order of the traces', () => {
    const a = trace('a', { nodeSelector: { matchLabels: { zone: 'a' } } });
    const b = trace('b', { nodeSelector: { matchLabels: { zone: 'b' } } });
    expect(desiredDaemonSet([a, b], cfg, NOW)).toEqual(desiredDaemonSet([b, a], cfg, NOW));
  });

  it('asks for least privilege: BPF and PERFMON, not privileged, host paths read-only but bpffs and its state', () => {
    const pod = desiredDaemonSet([trace('a')], cfg, NOW)!.spec.template.spec;
    const c = pod.containers[0];
    expect(c.command).toEqual(['node', '--max-semi-space-size=2', '--min-semi-space-size=2', '--max-old-space-size=96', '--single-threaded', 'dist/agent/main.js']);
    expect(c.securityContext).toMatchObject({ privileged: false, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true });
    expect(c.securityContext.capabilities).toEqual({ drop: ['ALL'], add: ['BPF', 'PERFMON'] });
    expect(pod.hostPID ?? false).toBe(false);
    expect(pod.hostNetwork ?? false).toBe(false);
    const mounts = Object.fromEntries(c.volumeMounts.map((m: any) => [m.mountPath, m.readOnly ?? false]));
    expect(mounts).toEqual({ '/sys/fs/bpf': false, '/sys/kernel/tracing': true, '/sys/kernel/btf': true, '/sys/fs/cgroup': true, '/host/proc': true, '/var/lib/vhosttrace': false });
    expect(pod.volumes.find((v: any) => v.name === 'state').hostPath).toEqual({ path: '/var/lib/vhosttrace', type: 'DirectoryOrCreate' });
    expect(c.env.map((e: any) => e.name)).toEqual(['NODE_NAME', 'POD_NAMESPACE', 'PORT']);
    expect(c.resources.requests).toBeDefined();
    expect(c.livenessProbe.httpGet.path).toBe('/healthz');
    expect(c.readinessProbe.httpGet.path).toBe('/readyz');
    expect(pod.serviceAccountName).toBe('vhosttrace-agent');
  });
});

describe('intervals', () => {
  it('parses and formats Go durations', () => {
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('250ms')).toBe(250);
    expect(() => parseDuration('10')).toThrow();
    expect(() => parseDuration('10s junk')).toThrow();
    expect(formatSeconds(10)).toBe('10s');
    expect(formatSeconds(100)).toBe('1m40s');
    expect(formatSeconds(7200)).toBe('2h');
  });

  it('scales the default with the node count and report size so the API server budget holds', () => {
    expect(defaultIntervalSeconds(1)).toBe(10);
    expect(defaultIntervalSeconds(500)).toBe(10);
    expect(defaultIntervalSeconds(501)).toBe(11);
    expect(defaultIntervalSeconds(5000)).toBe(100);
    for (const n of [10, 500, 1000, 5000, 20000])
      for (const bytes of [500, 20_000, 60_000]) {
        const s = defaultIntervalSeconds(n, bytes);
        expect(n / s).toBeLessThanOrEqual(50);
        expect((n * bytes) / s).toBeLessThanOrEqual(1_000_000);
      }
    // A smaller budget (the operator's reportWritesPerSecond / reportBytesPerSecond) holds too.
    const small = { writesPerSecond: 15, bytesPerSecond: 300_000 };
    expect(defaultIntervalSeconds(5000, 0, small)).toBe(334);
    expect(defaultIntervalSeconds(5000, 24_000, small)).toBe(400);
    expect(defaultIntervalSeconds(100, 24_000, small)).toBe(10);
  });
});
