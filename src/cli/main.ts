#!/usr/bin/env node
// kubectl-vhosttrace: a kubectl plugin (on PATH, `kubectl vhosttrace ...` runs it) that prints a
// trace's histograms the way the seed article's BCC script printed them.
//
//   kubectl vhosttrace hist NAME [-n NAMESPACE] [--node NODE] [--vm NAMESPACE/NAME]
//   kubectl vhosttrace hist --cluster NAME [--node NODE] [--vm NAMESPACE/NAME]
import { KubeConfig } from '@kubernetes/client-node';
import type { RequestOptions } from 'node:https';
import { parseArgs } from 'node:util';
import { reportSelector, traceRef, type Trace } from '../api/reports.js';
import { API_VERSION, type VhostTraceReport } from '../api/v1alpha1.js';
import { KubeClient, resourcePath, type ClusterAccess } from '../kube/client.js';
import { mergeReports, renderDirections } from './render.js';

const USAGE = `usage: kubectl vhosttrace hist NAME [-n NAMESPACE | --cluster] [--node NODE] [--vm NAMESPACE/NAME]
  NAME        a VhostTrace (in -n NAMESPACE, default from kubeconfig) or, with --cluster, a ClusterVhostTrace
  --node      one node's histograms (from its report)
  --vm        one VM's histograms (from the reports)
Without --node or --vm: the cluster-wide summary from the trace's status.`;

/** A user's kubeconfig may use exec plugins (cloud logins): client-node runs them for the CLI. */
async function accessFromKubeconfig(): Promise<{ access: ClusterAccess; namespace: string }> {
  const kc = new KubeConfig();
  kc.loadFromDefault();
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('no current cluster in the kubeconfig: set KUBECONFIG or run `kubectl config use-context`');
  const opts: RequestOptions = {};
  await kc.applyToHTTPSOptions(opts);
  const auth = (opts.headers as Record<string, string> | undefined)?.Authorization ?? (opts.headers as Record<string, string> | undefined)?.authorization;
  const token = auth?.replace(/^Bearer /, '');
  const ctx = kc.getContextObject(kc.getCurrentContext());
  return {
    access: {
      server: cluster.server,
      ca: opts.ca as Buffer | undefined,
      cert: opts.cert as Buffer | undefined,
      key: opts.key as Buffer | undefined,
      insecureSkipTLSVerify: cluster.skipTLSVerify,
      token: token ? () => token : undefined,
      source: `kubeconfig context ${kc.getCurrentContext()}`,
    },
    namespace: ctx?.namespace ?? 'default',
  };
}

export async function main(argv: string[], out: (s: string) => void = (s) => process.stdout.write(s)): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      namespace: { type: 'string', short: 'n' },
      cluster: { type: 'boolean', default: false },
      node: { type: 'string' },
      vm: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const [cmd, name] = positionals;
  if (values.help || cmd !== 'hist' || !name) {
    out(`${USAGE}\n`);
    return values.help ? 0 : 2;
  }
  const { access, namespace: defaultNs } = await accessFromKubeconfig();
  const client = new KubeClient(access);
  try {
    const ns = values.cluster ? undefined : (values.namespace ?? defaultNs);
    const plural = values.cluster ? 'clustervhosttraces' : 'vhosttraces';
    const trace = await client.find<Trace>(resourcePath(API_VERSION, plural, ns, name));
    if (!trace) {
      out(`${values.cluster ? 'ClusterVhostTrace' : `VhostTrace in namespace ${ns}`} "${name}" not found\n`);
      return 1;
    }
    const st = trace.status;
    out(`${trace.kind} ${ns ? `${ns}/` : ''}${name}: ${st?.phase ?? 'Pending'}, nodes ${st?.nodesReporting ?? '0/0'}` +
      `${st?.startTime ? `, since ${st.startTime}` : ''}${st?.endTime ? ` until ${st.endTime}` : ''}\n\n`);
    let dirs;
    if (values.node || values.vm) {
      const ref = traceRef(trace);
      // ClusterVhostTrace reports live in the install namespace: look in all namespaces.
      const path = ref.kind === 'VhostTrace' ? resourcePath(API_VERSION, 'vhosttracereports', ref.namespace) : resourcePath(API_VERSION, 'vhosttracereports');
      const list = await client.list<VhostTraceReport>(path, { labelSelector: reportSelector(ref) });
      dirs = mergeReports(list.items, { node: values.node, vm: values.vm });
    } else {
      dirs = st?.summary ?? {};
    }
    const text = renderDirections(dirs);
    out(text || 'no counts yet\n');
    return 0;
  } finally {
    client.close();
  }
}

if (process.argv[1]?.endsWith('cli/main.js') || process.argv[1]?.endsWith('kubectl-vhosttrace')) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: Error) => {
      process.stderr.write(`kubectl vhosttrace: ${err.message}\n`);
      process.exit(1);
    },
  );
}
