import { describe, expect, it } from 'vitest';
import { fromValues } from '../../src/api/histogram.js';
import type { Trace } from '../../src/api/reports.js';
import type { Counts, SinceStart } from '../../src/agent/ledger.js';
import { buildReportStatus } from '../../src/agent/report-status.js';
import type { VmRef } from '../../src/agent/attribution.js';
import { rng } from './prng.js';

const c = (...runs: number[]): Counts => ({ packets: fromValues(runs), bytes: fromValues(runs.map((r) => r * 100)) });
const vms: Record<number, VmRef> = {
  1: { namespace: 'prod', name: 'db-0', uid: 'u1', labels: { app: 'db' } },
  2: { namespace: 'prod', name: 'web-0', uid: 'u2', labels: { app: 'web' } },
  3: { namespace: 'dev', name: 'db-9', uid: 'u3', labels: { app: 'db' } },
};
const at = (cgroupId: number, direction: 'rx' | 'tx', counts: Counts): SinceStart => ({ cgroupId, direction, counts });
const since = [
  at(1, 'rx', c(1, 2)),
  at(1, 'tx', c(4)),
  at(2, 'rx', c(8)),
  at(3, 'rx', c(16, 16)),
  at(0, 'rx', c(32)), // overflow slot: no VM
  at(99, 'tx', c(64)), // a QEMU outside Kubernetes
];
const base = {
  since,
  vmOf: (id: number) => vms[id],
  namespaceLabels: (ns: string) => ({ 'kubernetes.io/metadata.name': ns, env: ns === 'prod' ? 'production' : 'other' }),
  health: { state: 'Reporting' as const, kernel: '6.12.0', mode: 'tracepoint' as const },
  observedTime: '2026-11-24T00:00:00Z',
};
const vht = (spec: object): Trace => ({ apiVersion: 'vhosttrace.io/v1alpha1', kind: 'VhostTrace', metadata: { name: 't', namespace: 'prod', uid: 'x' }, spec: { directions: ['rx', 'tx'], ...spec } });
const cvht = (spec: object): Trace => ({ apiVersion: 'vhosttrace.io/v1alpha1', kind: 'ClusterVhostTrace', metadata: { name: 'c', uid: 'y' }, spec: { directions: ['rx', 'tx'], ...spec } });

describe('report status', () => {
  it('a namespaced trace holds only its namespace, never unattributed counts', () => {
    const s = buildReportStatus({ ...base, trace: vht({}) });
    expect(s.vms!.map((v) => v.name)).toEqual(['db-0', 'web-0']);
    expect(s.unattributed).toBeUndefined();
    expect(s.total!.rx!.packets).toEqual(fromValues([1, 2, 8]));
    expect(s.total!.tx!.packets).toEqual(fromValues([4]));
  });

  it("a namespaced trace's vmSelector narrows it further", () => {
    const s = buildReportStatus({ ...base, trace: vht({ vmSelector: { matchLabels: { app: 'db' } } }) });
    expect(s.vms!.map((v) => `${v.namespace}/${v.name}`)).toEqual(['prod/db-0']);
    expect(s.total!.rx!.packets.count).toBe(2);
  });

  it('a cluster trace sees every namespace and the unattributed counts', () => {
    const s = buildReportStatus({ ...base, trace: cvht({}) });
    expect(s.vms!.map((v) => v.name)).toEqual(['db-9', 'db-0', 'web-0']);
    expect(s.unattributed!.rx!.packets).toEqual(fromValues([32]));
    expect(s.unattributed!.tx!.packets).toEqual(fromValues([64]));
    expect(s.total!.rx!.packets).toEqual(fromValues([1, 2, 8, 16, 16, 32]));
  });

  it('a cluster trace honours namespaceSelector, vmSelector and includeUnattributed: false', () => {
    const s = buildReportStatus({
      ...base,
      trace: cvht({ namespaceSelector: { matchLabels: { env: 'production' } }, vmSelector: { matchLabels: { app: 'db' } }, includeUnattributed: false }),
    });
    expect(s.vms!.map((v) => v.name)).toEqual(['db-0']);
    expect(s.unattributed).toBeUndefined();
    expect(s.total!.rx!.packets).toEqual(fromValues([1, 2]));
  });

  it('only the directions the trace asks for', () => {
    const s = buildReportStatus({ ...base, trace: vht({ directions: ['tx'] }) });
    expect(Object.keys(s.total!)).toEqual(['tx']);
    expect(s.vms!.find((v) => v.name === 'db-0')).toEqual({ namespace: 'prod', name: 'db-0', uid: 'u1', tx: c(4) });
  });

  it('lists VMs in the collator\'s order, report after report, as the set of VMs changes', () => {
    const rand = rng(41);
    const names = ['vm-1', 'vm1', 'VM2', 'vm.3', 'a', 'b-0', 'B', 'ä', 'z', 'vm-10', 'vm-2', 'db-0'];
    for (let round = 0; round < 200; round++) {
      const chosen = names.filter(() => rand() < 0.5);
      const refs: VmRef[] = chosen.map((name, i) => ({ namespace: rand() < 0.5 ? 'prod' : 'Prod', name, uid: `u${i}`, labels: {} }));
      const s = buildReportStatus({ ...base, since: chosen.map((_, i) => at(i, 'rx', c(1))), vmOf: (id) => refs[id], trace: cvht({}) });
      const want = refs.map((v) => `${v.namespace}/${v.name}`).sort((a, b) => a.localeCompare(b));
      expect(s.vms!.map((v) => `${v.namespace}/${v.name}`)).toEqual(want);
    }
  });
});
