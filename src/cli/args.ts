// The command line, parsed: which subcommand, which trace, which flags. Pure: the usage text and every
// check of what the user typed live here; nothing is read or sent.
import { parseArgs } from 'node:util';
import { DIRECTIONS, type Direction } from '../api/v1alpha1.js';
import { CliError, EXIT } from './exit-codes.js';

export const USAGE = `kubectl vhosttrace: vhost-net batching histograms of VhostTraces and ClusterVhostTraces.

Usage:
  kubectl vhosttrace show NAME   [--node NODE | --vm NAMESPACE/NAME] [-o json|yaml|bcc]   (alias: hist)
  kubectl vhosttrace get [NAME]  [-A] [-o wide|name|json|yaml]
  kubectl vhosttrace watch NAME  [--node NODE | --vm NAMESPACE/NAME] [-o json|yaml|bcc]
  kubectl vhosttrace run [NAME]  [--vm-selector SEL] [--node-selector SEL] [--duration D] [--interval D]
                                 [--directions rx,tx] [--keep] [--timeout D] [-o json|yaml|bcc]
  kubectl vhosttrace delete NAME... [--ignore-not-found]

Which trace:
  NAME                   a VhostTrace in the namespace (-n, else the kubeconfig context's, else "default");
                         vht/NAME or cvht/NAME name the kind as kubectl does
  --cluster              NAME is a ClusterVhostTrace (run: create one, with --namespace-selector,
                         --no-unattributed)
  -f, --filename FILE    show, get: read a saved object instead of the cluster ("-" is stdin): YAML or
                         JSON as "kubectl get -o yaml|json" writes it, a List included

Cluster flags, as kubectl has them:
  --kubeconfig FILE, --context NAME, -n/--namespace NS, -A/--all-namespaces (get)

Exit codes: 0 ok, 1 error, 2 usage, 3 not found, 4 pending (no report yet), 5 failed,
6 forbidden, 7 no cluster. Messages go to stderr. docs/cli.md has the details.
`;

export type Verb = 'show' | 'get' | 'watch' | 'run' | 'delete' | 'help';
export type OutputFormat = 'text' | 'json' | 'yaml' | 'wide' | 'name' | 'bcc';

/** What to create for `run`: the flags as the user gave them (selectors parsed later). */
export interface RunFlags {
  vmSelector?: string;
  nodeSelector?: string;
  namespaceSelector?: string;
  duration?: string;
  interval?: string;
  directions?: Direction[];
  includeUnattributed: boolean;
  keep: boolean;
  /** How long to wait for the trace to complete; default: its duration and one minute. */
  timeout?: string;
}

export interface Invocation {
  verb: Verb;
  /** Trace names (delete takes several; the others at most one). */
  names: string[];
  /** The names are ClusterVhostTraces. */
  cluster: boolean;
  /** The kind was given (--cluster, vht/NAME, cvht/NAME), not defaulted: -f then looks at that kind only. */
  kindGiven: boolean;
  namespace?: string;
  allNamespaces: boolean;
  kubeconfig?: string;
  context?: string;
  output: OutputFormat;
  file?: string;
  node?: string;
  vm?: string;
  ignoreNotFound: boolean;
  run: RunFlags;
}

const OPTIONS = {
  namespace: { type: 'string', short: 'n' },
  'all-namespaces': { type: 'boolean', short: 'A' },
  kubeconfig: { type: 'string' },
  context: { type: 'string' },
  output: { type: 'string', short: 'o' },
  filename: { type: 'string', short: 'f' },
  cluster: { type: 'boolean' },
  node: { type: 'string' },
  vm: { type: 'string' },
  'vm-selector': { type: 'string' },
  'node-selector': { type: 'string' },
  'namespace-selector': { type: 'string' },
  'no-unattributed': { type: 'boolean' },
  duration: { type: 'string' },
  interval: { type: 'string' },
  directions: { type: 'string' },
  keep: { type: 'boolean' },
  timeout: { type: 'string' },
  'ignore-not-found': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;
type Flag = keyof typeof OPTIONS;

const CLUSTER_FLAGS: Flag[] = ['namespace', 'kubeconfig', 'context', 'cluster', 'help'];
const VIEW_FLAGS: Flag[] = ['node', 'vm', 'output'];
const RUN_FLAGS: Flag[] = ['vm-selector', 'node-selector', 'namespace-selector', 'no-unattributed', 'duration', 'interval', 'directions', 'keep', 'timeout'];

/** The flags each subcommand takes, and its output formats (the first is the default). */
const VERBS: Record<Exclude<Verb, 'help'>, { flags: Flag[]; outputs: OutputFormat[]; names: [min: number, max: number] }> = {
  show: { flags: [...CLUSTER_FLAGS, ...VIEW_FLAGS, 'filename'], outputs: ['text', 'json', 'yaml', 'bcc'], names: [0, 1] },
  get: { flags: [...CLUSTER_FLAGS, 'all-namespaces', 'output', 'filename'], outputs: ['text', 'wide', 'name', 'json', 'yaml'], names: [0, 1] },
  watch: { flags: [...CLUSTER_FLAGS, ...VIEW_FLAGS], outputs: ['text', 'json', 'yaml', 'bcc'], names: [1, 1] },
  run: { flags: [...CLUSTER_FLAGS, ...VIEW_FLAGS, ...RUN_FLAGS], outputs: ['text', 'json', 'yaml', 'bcc'], names: [0, 1] },
  delete: { flags: [...CLUSTER_FLAGS, 'ignore-not-found'], outputs: ['text'], names: [1, Infinity] },
};

const ALIASES: Record<string, Exclude<Verb, 'help'>> = { hist: 'show' };

/** kubectl's names for the two kinds, as TYPE in TYPE/NAME. */
const KIND_NAMES: Record<string, boolean> = {
  vht: false,
  vhosttrace: false,
  vhosttraces: false,
  'vhosttraces.vhosttrace.io': false,
  cvht: true,
  clustervhosttrace: true,
  clustervhosttraces: true,
  'clustervhosttraces.vhosttrace.io': true,
};

const usage = (msg: string) => new CliError(EXIT.usage, `${msg}\nRun "kubectl vhosttrace --help" for usage.`);

/** NAME or TYPE/NAME: the name and whether TYPE names the cluster kind (undefined: no TYPE). */
export function splitName(arg: string): { name: string; cluster?: boolean } {
  const slash = arg.indexOf('/');
  if (slash < 0) return { name: arg };
  const type = arg.slice(0, slash).toLowerCase();
  const cluster = KIND_NAMES[type];
  if (cluster === undefined) throw usage(`"${arg}": the type before "/" must be vht or cvht (or vhosttrace, clustervhosttrace)`);
  const name = arg.slice(slash + 1);
  if (!name) throw usage(`"${arg}": no name after "/"`);
  return { name, cluster };
}

function parseDirections(text: string): Direction[] {
  const list = text.split(',').map((d) => d.trim().toLowerCase()).filter(Boolean);
  const bad = list.filter((d) => !(DIRECTIONS as readonly string[]).includes(d));
  if (bad.length || list.length === 0) throw usage(`--directions: expected rx, tx or rx,tx, got "${text}"`);
  return [...new Set(list)] as Direction[];
}

export function parseInvocation(argv: readonly string[]): Invocation {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (e) {
    throw usage((e as Error).message);
  }
  const { values, positionals } = parsed;
  const [first, ...rest] = positionals;
  const base = { names: [], cluster: false, kindGiven: false, allNamespaces: false, output: 'text' as const, ignoreNotFound: false, run: { includeUnattributed: true, keep: false } };
  if (values.help || first === 'help' || first === undefined) {
    if (first === undefined && !values.help) throw usage('a subcommand is required: show, get, watch, run or delete');
    return { ...base, verb: 'help' };
  }
  const verb = ALIASES[first] ?? (first as Exclude<Verb, 'help'>);
  const spec = VERBS[verb];
  if (!spec) throw usage(`unknown subcommand "${first}": expected show (or hist), get, watch, run or delete`);

  for (const flag of Object.keys(values) as Flag[]) {
    if (!spec.flags.includes(flag)) throw usage(`${verb} does not take --${flag}`);
  }
  const output = (values.output ?? spec.outputs[0]) as OutputFormat;
  if (!spec.outputs.includes(output)) throw usage(`${verb}: -o must be one of ${spec.outputs.filter((o) => o !== 'text').join(', ')}, not "${values.output}"`);
  const [min, max] = spec.names;
  if (rest.length < min) throw usage(`${verb} needs ${min === 1 && max === 1 ? 'a trace name' : 'one or more trace names'}`);
  if (rest.length > max) throw usage(`${verb} takes ${max === 1 ? 'one trace name' : 'no trace name'}, got ${rest.join(' ')}`);

  let cluster = values.cluster ?? false;
  let kindGiven = cluster;
  const split = rest.map(splitName);
  const kinds = new Set(split.map((s) => s.cluster).filter((c) => c !== undefined));
  if (kinds.size > 1) throw usage('name VhostTraces and ClusterVhostTraces in separate commands');
  if (kinds.has(false) && values.cluster) throw usage('vht/NAME names a VhostTrace but --cluster was given');
  if (kinds.size === 1) {
    kindGiven = true;
    cluster = kinds.has(true);
  }
  const names = split.map((s) => s.name);
  if (values.node && values.vm) throw usage('give --node or --vm, not both');
  if (values.vm && !/^[^/]+\/[^/]+$/.test(values.vm)) throw usage(`--vm takes NAMESPACE/NAME, got "${values.vm}"`);
  if (values['namespace-selector'] !== undefined && !cluster) throw usage('--namespace-selector is for a ClusterVhostTrace: add --cluster');
  if (values['no-unattributed'] && !cluster) throw usage('--no-unattributed is for a ClusterVhostTrace: add --cluster');
  if (values.filename !== undefined && (values.kubeconfig !== undefined || values.context !== undefined)) {
    throw usage('-f reads a file, not the cluster: --kubeconfig and --context do not apply');
  }
  return {
    ...base,
    verb,
    names,
    cluster,
    kindGiven,
    namespace: values.namespace,
    allNamespaces: values['all-namespaces'] ?? false,
    kubeconfig: values.kubeconfig,
    context: values.context,
    output,
    file: values.filename,
    node: values.node,
    vm: values.vm,
    ignoreNotFound: values['ignore-not-found'] ?? false,
    run: {
      vmSelector: values['vm-selector'],
      nodeSelector: values['node-selector'],
      namespaceSelector: values['namespace-selector'],
      duration: values.duration,
      interval: values.interval,
      directions: values.directions === undefined ? undefined : parseDirections(values.directions),
      includeUnattributed: !values['no-unattributed'],
      keep: values.keep ?? false,
      timeout: values.timeout,
    },
  };
}
