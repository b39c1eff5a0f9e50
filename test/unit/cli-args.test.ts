// kubectl vhosttrace's command line: subcommands, kubectl's flags, the run flags turned into a trace.
import { describe, expect, it } from 'vitest';
import { parseInvocation, splitName } from '../../src/cli/args.js';
import { CliError, EXIT } from '../../src/cli/exit-codes.js';
import { parseSelector, traceToCreate, waitLimitMs } from '../../src/cli/trace-spec.js';

function usageError(argv: string[]): string {
  try {
    parseInvocation(argv);
  } catch (e) {
    expect(e).toBeInstanceOf(CliError);
    expect((e as CliError).code).toBe(EXIT.usage);
    return (e as Error).message;
  }
  throw new Error(`${argv.join(' ')} was accepted`);
}

describe('parseInvocation', () => {
  it('reads show with kubectl flags in any order, and hist as its alias', () => {
    const a = parseInvocation(['show', 'web', '-n', 'prod', '--context=kind', '--kubeconfig', '/k', '--vm', 'prod/db-0', '-o', 'json']);
    expect(a).toMatchObject({ verb: 'show', names: ['web'], namespace: 'prod', context: 'kind', kubeconfig: '/k', vm: 'prod/db-0', output: 'json', cluster: false, kindGiven: false });
    expect(parseInvocation(['hist', '--cluster', 'all', '--node', 'n1'])).toMatchObject({ verb: 'show', names: ['all'], cluster: true, kindGiven: true, node: 'n1', output: 'text' });
  });

  it('reads TYPE/NAME as kubectl does', () => {
    expect(parseInvocation(['get', 'cvht/all'])).toMatchObject({ names: ['all'], cluster: true, kindGiven: true });
    expect(parseInvocation(['delete', 'vht/a', 'vhosttrace/b'])).toMatchObject({ names: ['a', 'b'], cluster: false, kindGiven: true });
    expect(splitName('clustervhosttraces.vhosttrace.io/x')).toEqual({ name: 'x', cluster: true });
    expect(usageError(['get', 'pod/x'])).toContain('must be vht or cvht');
    expect(usageError(['delete', 'vht/a', 'cvht/b'])).toContain('separate commands');
    expect(usageError(['show', 'vht/a', '--cluster'])).toContain('--cluster');
  });

  it('reads get -A -o wide and run flags', () => {
    expect(parseInvocation(['get', '-A', '-o', 'wide'])).toMatchObject({ verb: 'get', names: [], allNamespaces: true, output: 'wide' });
    const r = parseInvocation(['run', '--vm-selector', 'app=db', '--duration', '30s', '--interval', '5s', '--directions', 'rx', '--keep', '-n', 'prod']);
    expect(r.run).toEqual({ vmSelector: 'app=db', nodeSelector: undefined, namespaceSelector: undefined, duration: '30s', interval: '5s', directions: ['rx'], includeUnattributed: true, keep: true, timeout: undefined });
  });

  it('refuses what a subcommand does not take, with the reason', () => {
    expect(usageError([])).toContain('a subcommand is required');
    expect(usageError(['frobnicate'])).toContain('unknown subcommand "frobnicate"');
    expect(usageError(['show', 'a', '-A'])).toContain('show does not take --all-namespaces');
    expect(usageError(['get', '-o', 'bcc'])).toContain('-o must be one of wide, name, json, yaml');
    expect(usageError(['show', 'a', '-o', 'wide'])).toContain('-o must be one of json, yaml, bcc');
    expect(usageError(['watch'])).toContain('watch needs a trace name');
    expect(usageError(['show', 'a', 'b'])).toContain('takes one trace name');
    expect(usageError(['delete'])).toContain('one or more trace names');
    expect(usageError(['show', 'a', '--node', 'n', '--vm', 'x/y'])).toContain('not both');
    expect(usageError(['show', 'a', '--vm', 'db-0'])).toContain('NAMESPACE/NAME');
    expect(usageError(['run', '--namespace-selector', 'team=a'])).toContain('add --cluster');
    expect(usageError(['run', '--directions', 'up'])).toContain('--directions');
    expect(usageError(['show', '-f', 'x.yaml', '--context', 'c'])).toContain('-f reads a file');
    expect(usageError(['show', 'a', '--bogus'])).toContain("Unknown option '--bogus'");
    expect(parseInvocation(['--help']).verb).toBe('help');
    expect(parseInvocation(['show', '-h']).verb).toBe('help');
  });
});

describe('run: the trace it creates', () => {
  it('turns kubectl selector syntax into a LabelSelector', () => {
    expect(parseSelector('app=db,tier in (a, b),env!=dev,!legacy,gpu,zone==x,team notin (c)', '--vm-selector')).toEqual({
      matchLabels: { app: 'db', zone: 'x' },
      matchExpressions: [
        { key: 'tier', operator: 'In', values: ['a', 'b'] },
        { key: 'env', operator: 'NotIn', values: ['dev'] },
        { key: 'legacy', operator: 'DoesNotExist' },
        { key: 'gpu', operator: 'Exists' },
        { key: 'team', operator: 'NotIn', values: ['c'] },
      ],
    });
    expect(parseSelector('', '--node-selector')).toEqual({});
    expect(() => parseSelector('a in b', '--vm-selector')).toThrow(/--vm-selector: cannot read "a in b"/);
  });

  it('builds a VhostTrace in the namespace, or a ClusterVhostTrace', () => {
    const flags = { vmSelector: 'app=db', duration: '1m', interval: '10s', directions: ['rx' as const], includeUnattributed: true, keep: false };
    expect(traceToCreate(flags, { cluster: false, namespace: 'prod' })).toEqual({
      apiVersion: 'vhosttrace.io/v1alpha1',
      kind: 'VhostTrace',
      metadata: { generateName: 'run-', namespace: 'prod', labels: { 'app.kubernetes.io/created-by': 'kubectl-vhosttrace' } },
      spec: { vmSelector: { matchLabels: { app: 'db' } }, duration: '1m', interval: '10s', directions: ['rx'] },
    });
    const c = traceToCreate({ namespaceSelector: 'team=a', nodeSelector: 'pool=kv', includeUnattributed: false, keep: true }, { cluster: true, name: 'all', namespace: 'x' });
    expect(c.metadata).toEqual({ name: 'all', labels: { 'app.kubernetes.io/created-by': 'kubectl-vhosttrace' } });
    expect(c.spec).toEqual({ nodeSelector: { matchLabels: { pool: 'kv' } }, namespaceSelector: { matchLabels: { team: 'a' } }, includeUnattributed: false });
    expect(() => traceToCreate({ duration: '30 seconds', includeUnattributed: true, keep: false }, { cluster: false, namespace: 'x' })).toThrow(/--duration: invalid duration/);
  });

  it('waits for the duration and a minute unless --timeout says otherwise', () => {
    expect(waitLimitMs({ duration: '30s', includeUnattributed: true, keep: false })).toBe(90_000);
    expect(waitLimitMs({ duration: '30s', timeout: '5m', includeUnattributed: true, keep: false })).toBe(300_000);
    expect(waitLimitMs({ includeUnattributed: true, keep: false })).toBeUndefined();
  });
});
