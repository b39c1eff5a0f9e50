import { describe, expect, it } from 'vitest';
import { labelSafe, reportName, reportNamespace, reportSkeleton, type TraceRef } from '../../src/api/reports.js';

const vht: TraceRef = { kind: 'VhostTrace', name: 'db', namespace: 'prod', uid: 'u1' };
const cvht: TraceRef = { kind: 'ClusterVhostTrace', name: 'all', uid: 'u2' };

describe('report naming', () => {
  it('names reports <trace>.<node>, cluster traces with a prefix that cannot collide', () => {
    expect(reportName(vht, 'node-a')).toBe('db.node-a');
    expect(reportName(cvht, 'node-a')).toBe('cluster.all.node-a');
  });

  it('keeps names within 253 characters and distinct for long node names', () => {
    const a = 'n'.repeat(250) + 'a';
    const b = 'n'.repeat(250) + 'b';
    expect(reportName(vht, a).length).toBeLessThanOrEqual(253);
    expect(reportName(vht, a)).not.toBe(reportName(vht, b));
  });

  it('hashes label values over 63 characters and keeps short ones', () => {
    expect(labelSafe('node-a')).toBe('node-a');
    const long = labelSafe('x'.repeat(100));
    expect(long.length).toBe(63);
    expect(long).not.toBe(labelSafe('x'.repeat(99) + 'y'));
  });

  it('puts VhostTrace reports beside the trace and cluster reports in the install namespace', () => {
    expect(reportNamespace(vht, 'vhosttrace-system')).toBe('prod');
    expect(reportNamespace(cvht, 'vhosttrace-system')).toBe('vhosttrace-system');
    const r = reportSkeleton(cvht, 'node-a', 'vhosttrace-system');
    expect(r.metadata.ownerReferences).toEqual([{ apiVersion: 'vhosttrace.io/v1alpha1', kind: 'ClusterVhostTrace', name: 'all', uid: 'u2' }]);
    expect(r.spec).toEqual({ trace: { kind: 'ClusterVhostTrace', name: 'all', uid: 'u2' }, nodeName: 'node-a' });
  });
});
