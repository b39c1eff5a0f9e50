// kubectl vhosttrace's output: the get table as kubectl lays it out, -o json|yaml|name, ages.
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { Trace } from '../../src/api/reports.js';
import { asList, formatData } from '../../src/cli/output.js';
import { humanAge, layout, objectName, traceTable } from '../../src/cli/table.js';

const NOW = Date.parse('2026-12-06T12:00:00Z');
const trace = (kind: Trace['kind'], name: string, namespace: string | undefined, status: Trace['status'], ageS: number): Trace =>
  ({
    apiVersion: 'vhosttrace.io/v1alpha1',
    kind,
    metadata: { name, ...(namespace ? { namespace } : {}), creationTimestamp: new Date(NOW - ageS * 1000).toISOString() },
    spec: { duration: '1h' },
    ...(status ? { status } : {}),
  }) as Trace;

const sum = (count: number, p50: number) => ({ packets: { count, sum: count, buckets: [count], p50, p90: p50, p99: p50 }, bytes: { count, sum: 0, buckets: [count], p50: 1, p90: 1, p99: 1 } });
const web = trace('VhostTrace', 'web', 'prod', { phase: 'Running', nodesReporting: '2/3', interval: '10s', summary: { rx: sum(1234, 1), tx: sum(56, 3) } }, 75);
const db = trace('VhostTrace', 'db', 'dev', undefined, 3 * 3600 + 600);

describe('get table', () => {
  it("lays columns out as kubectl's tabwriter does (width + 3, at least 6; the last unpadded)", () => {
    expect(layout([['NAME', 'A', 'AGE'], ['x', 'longer', '5s']])).toBe('NAME   A        AGE\nx      longer   5s\n');
  });

  it("prints the CRD's printer columns, NAMESPACE with -A, blank for a missing field", () => {
    expect(traceTable([web], { allNamespaces: false, wide: false, now: NOW })).toBe(
      'NAME   PHASE     NODES   RX RUNS   TX RUNS   RX PKTS P50   AGE\n' +
        'web    Running   2/3     1234      56        1             75s\n',
    );
    expect(traceTable([web, db], { allNamespaces: true, wide: true, now: NOW })).toBe(
      'NAMESPACE   NAME   PHASE     NODES   RX RUNS   TX RUNS   RX PKTS P50   INTERVAL   DURATION   AGE\n' +
        'dev         db                                                                    1h         3h10m\n' +
        'prod        web    Running   2/3     1234      56        1             10s        1h         75s\n',
    );
    const all = trace('ClusterVhostTrace', 'all', undefined, { phase: 'Completed' }, 86400 * 3);
    expect(traceTable([all], { allNamespaces: true, wide: false, now: NOW })).toBe(`NAME   PHASE       NODES   RX RUNS   TX RUNS   RX PKTS P50   AGE\nall    Completed${' '.repeat(45)}3d\n`);
    expect(traceTable([], { allNamespaces: false, wide: false, now: NOW })).toBe('');
  });

  it("writes ages as kubectl's HumanDuration", () => {
    const cases: Array<[number, string]> = [[-5, '<invalid>'], [0, '0s'], [119, '119s'], [120, '2m'], [125, '2m5s'], [600, '10m'], [179 * 60, '179m'], [3 * 3600, '3h'], [7 * 3600 + 60, '7h1m'], [47 * 3600, '47h'], [48 * 3600, '2d'], [50 * 3600, '2d2h'], [8 * 86400, '8d'], [3 * 365 * 86400 + 86400, '3y1d'], [9 * 365 * 86400, '9y']];
    for (const [s, text] of cases) expect(humanAge(s * 1000), `${s}s`).toBe(text);
  });

  it('names objects as -o name does', () => {
    expect(objectName(web)).toBe('vhosttrace.vhosttrace.io/web');
    expect(objectName({ kind: 'ClusterVhostTrace', metadata: { name: 'all' } })).toBe('clustervhosttrace.vhosttrace.io/all');
  });
});

describe('-o json and -o yaml', () => {
  it('sorts keys, indents JSON by four, and wraps several objects in a v1 List', () => {
    expect(formatData({ b: 1, a: { d: [1], c: 2 } }, 'json')).toBe('{\n    "a": {\n        "c": 2,\n        "d": [\n            1\n        ]\n    },\n    "b": 1\n}\n');
    expect(formatData(asList([{ kind: 'X', apiVersion: 'v' }]), 'yaml')).toBe('apiVersion: v1\nitems:\n- apiVersion: v\n  kind: X\nkind: List\nmetadata:\n  resourceVersion: ""\n');
    expect(parse(formatData(asList([web, db]), 'yaml'))).toEqual(JSON.parse(formatData(asList([web, db]), 'json')));
  });
});
