import { describe, expect, it } from 'vitest';
import { fromValues } from '../../src/api/histogram.js';
import type { VhostTraceReport } from '../../src/api/v1alpha1.js';
import { mergeReports, renderDirections } from '../../src/cli/render.js';
import { renderLog2Hist } from '../../src/loader/bcc-text.js';

const c = (runs: number[], frame: number) => ({ packets: fromValues(runs), bytes: fromValues(runs.map((r) => r * frame)) });
const report = (node: string, vms: Array<[string, number[]]>): VhostTraceReport => ({
  apiVersion: 'vhosttrace.io/v1alpha1',
  kind: 'VhostTraceReport',
  metadata: { name: `t.${node}` },
  spec: { trace: { kind: 'VhostTrace', name: 't', namespace: 'ns', uid: 'u' }, nodeName: node },
  status: {
    total: { rx: c(vms.flatMap(([, r]) => r), 1500) },
    vms: vms.map(([name, runs]) => ({ namespace: 'ns', name, rx: c(runs, 1500) })),
  },
});

describe('kubectl vhosttrace hist', () => {
  const reports = [report('n1', [['a', [1, 2, 3]], ['b', [64]]]), report('n2', [['a', [4, 4]]])];

  it('merges reports exactly: all, one node, one VM', () => {
    expect(mergeReports(reports).rx!.packets).toEqual(fromValues([1, 2, 3, 64, 4, 4]));
    expect(mergeReports(reports, { node: 'n2' }).rx!.packets).toEqual(fromValues([4, 4]));
    expect(mergeReports(reports, { vm: 'ns/a' }).rx!.packets).toEqual(fromValues([1, 2, 3, 4, 4]));
    expect(mergeReports(reports, { vm: 'ns/a', node: 'n1' }).rx!.bytes).toEqual(fromValues([1500, 3000, 4500]));
    expect(mergeReports(reports, { vm: 'other/a' })).toEqual({});
  });

  it("prints the seed's headings, BCC's histogram, and the exact count and sum", () => {
    const text = renderDirections({ rx: c([1, 2, 3], 100) });
    expect(text).toBe(
      'Vhost-net RX log2 received packets histogram\n' +
        '--------------------------------------------\n' +
        renderLog2Hist([1, 2], 'recv pkts') +
        'runs 3, packets 6, mean 2.0, p50 <= 3, p90 <= 3, p99 <= 3\n\n' +
        'Vhost-net RX log2 total length histogram\n' +
        '----------------------------------------\n' +
        renderLog2Hist([0, 0, 0, 0, 0, 0, 1, 1, 1], 'total len') +
        'runs 3, bytes 600, mean 200.0, p50 <= 255, p90 <= 511, p99 <= 511\n\n',
    );
    expect(renderDirections({})).toBe('');
  });
});
