// The CustomResourceDefinitions, built from the schemas in v1alpha1.ts. `npm run generate`
// writes them to manifests/ and the chart; a unit test fails when those files are stale.
import { object, str, type OpenApiSchema } from './schema.js';
import {
  clusterVhostTraceSpec,
  GROUP,
  reportSpec,
  reportStatus,
  traceStatus,
  VERSION,
  vhostTraceSpec,
} from './v1alpha1.js';

interface PrinterColumn {
  name: string;
  type: 'string' | 'integer' | 'number' | 'boolean' | 'date';
  jsonPath: string;
  description?: string;
  priority?: number;
}

export interface CustomResourceDefinition {
  apiVersion: 'apiextensions.k8s.io/v1';
  kind: 'CustomResourceDefinition';
  metadata: { name: string; labels?: Record<string, string> };
  spec: {
    group: string;
    scope: 'Namespaced' | 'Cluster';
    names: { kind: string; listKind: string; plural: string; singular: string; shortNames?: string[]; categories?: string[] };
    versions: Array<{
      name: string;
      served: boolean;
      storage: boolean;
      schema: { openAPIV3Schema: OpenApiSchema };
      subresources: { status: Record<string, never> };
      additionalPrinterColumns: PrinterColumn[];
    }>;
  };
}

// Object names end up in label values and report names, which Kubernetes caps at 63 characters.
const shortName = object({ name: str({ maxLength: 63 }), generateName: str({ maxLength: 58 }) });

function crd(opts: {
  kind: string;
  plural: string;
  shortNames: string[];
  scope: 'Namespaced' | 'Cluster';
  description: string;
  spec: OpenApiSchema;
  status: OpenApiSchema;
  columns: PrinterColumn[];
}): CustomResourceDefinition {
  const root: OpenApiSchema = {
    type: 'object',
    description: opts.description,
    required: ['spec'],
    properties: {
      apiVersion: str(),
      kind: str(),
      metadata: shortName,
      spec: opts.spec,
      status: opts.status,
    },
  };
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${opts.plural}.${GROUP}`, labels: { 'app.kubernetes.io/part-of': 'vhosttrace' } },
    spec: {
      group: GROUP,
      scope: opts.scope,
      names: {
        kind: opts.kind,
        listKind: `${opts.kind}List`,
        plural: opts.plural,
        singular: opts.kind.toLowerCase(),
        shortNames: opts.shortNames,
        categories: ['vhosttrace'],
      },
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          schema: { openAPIV3Schema: root },
          subresources: { status: {} },
          additionalPrinterColumns: [...opts.columns, { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' }],
        },
      ],
    },
  };
}

const traceColumns: PrinterColumn[] = [
  { name: 'Phase', type: 'string', jsonPath: '.status.phase' },
  { name: 'Nodes', type: 'string', jsonPath: '.status.nodesReporting', description: 'Nodes reporting / selected' },
  { name: 'RX Runs', type: 'integer', jsonPath: '.status.summary.rx.packets.count', description: 'handle_rx runs counted' },
  { name: 'TX Runs', type: 'integer', jsonPath: '.status.summary.tx.packets.count', description: 'handle_tx runs counted' },
  { name: 'RX Pkts P50', type: 'integer', jsonPath: '.status.summary.rx.packets.p50', description: 'Median packets per RX run (log2 slot upper bound)' },
  { name: 'Interval', type: 'string', jsonPath: '.status.interval', priority: 1 },
  { name: 'Duration', type: 'string', jsonPath: '.spec.duration', priority: 1 },
];

export const vhostTraceCRD = crd({
  kind: 'VhostTrace',
  plural: 'vhosttraces',
  shortNames: ['vht'],
  scope: 'Namespaced',
  description: 'Traces vhost-net RX/TX batching of the VirtualMachineInstances of its namespace.',
  spec: vhostTraceSpec,
  status: traceStatus,
  columns: traceColumns,
});

export const clusterVhostTraceCRD = crd({
  kind: 'ClusterVhostTrace',
  plural: 'clustervhosttraces',
  shortNames: ['cvht'],
  scope: 'Cluster',
  description: 'Traces vhost-net RX/TX batching across namespaces, including workers of no VirtualMachineInstance.',
  spec: clusterVhostTraceSpec,
  status: traceStatus,
  columns: traceColumns,
});

export const vhostTraceReportCRD = crd({
  kind: 'VhostTraceReport',
  plural: 'vhosttracereports',
  shortNames: ['vhtr'],
  scope: 'Namespaced',
  description: "One node's histograms for one trace, per VM; written by that node's agent.",
  spec: reportSpec,
  status: reportStatus,
  columns: [
    { name: 'Trace', type: 'string', jsonPath: '.spec.trace.name' },
    { name: 'Node', type: 'string', jsonPath: '.spec.nodeName' },
    { name: 'State', type: 'string', jsonPath: '.status.state' },
    { name: 'Mode', type: 'string', jsonPath: '.status.mode' },
    { name: 'RX Runs', type: 'integer', jsonPath: '.status.total.rx.packets.count' },
    { name: 'TX Runs', type: 'integer', jsonPath: '.status.total.tx.packets.count' },
    { name: 'Observed', type: 'date', jsonPath: '.status.observedTime' },
  ],
});

export const allCRDs = [vhostTraceCRD, clusterVhostTraceCRD, vhostTraceReportCRD];
