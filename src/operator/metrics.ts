// The operator's metrics: counters, gauges and histograms with labels, rendered in the
// Prometheus text format. Small on purpose: prom-client is not a dependency.
import { labelPairs, type Labels } from '../metrics/text.js';

/** A series' identity and its rendered labels at once: pairs in sorted key order. */
const labelKey = (l: Labels) => labelPairs(l, Object.keys(l).sort());
const withLabels = (name: string, key: string, extra = '') => `${name}{${[key, extra].filter(Boolean).join(',')}}`.replace('{}', '');

interface Metric {
  render(): string[];
}

export class Counter implements Metric {
  private readonly values = new Map<string, number>();
  constructor(readonly name: string, readonly help: string) {}
  inc(labels: Labels = {}, by = 1): void {
    const k = labelKey(labels);
    this.values.set(k, (this.values.get(k) ?? 0) + by);
  }
  get(labels: Labels = {}): number {
    return this.values.get(labelKey(labels)) ?? 0;
  }
  render(): string[] {
    return [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`, ...[...this.values].map(([k, v]) => `${withLabels(this.name, k)} ${v}`)];
  }
}

export class Gauge implements Metric {
  private readonly values = new Map<string, number | (() => number)>();
  constructor(readonly name: string, readonly help: string) {}
  set(value: number | (() => number), labels: Labels = {}): void {
    this.values.set(labelKey(labels), value);
  }
  render(): string[] {
    const v = (x: number | (() => number)) => (typeof x === 'function' ? x() : x);
    return [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`, ...[...this.values].map(([k, x]) => `${withLabels(this.name, k)} ${v(x)}`)];
  }
}

export class HistogramMetric implements Metric {
  private readonly series = new Map<string, { counts: number[]; sum: number; count: number }>();
  constructor(readonly name: string, readonly help: string, readonly bounds: readonly number[]) {}
  observe(value: number, labels: Labels = {}): void {
    const k = labelKey(labels);
    let s = this.series.get(k);
    if (!s) this.series.set(k, (s = { counts: this.bounds.map(() => 0), sum: 0, count: 0 }));
    for (let i = 0; i < this.bounds.length; i++) if (value <= this.bounds[i]!) s.counts[i]!++;
    s.sum += value;
    s.count++;
  }
  render(): string[] {
    const out = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const [k, s] of this.series) {
      this.bounds.forEach((b, i) => out.push(`${withLabels(`${this.name}_bucket`, k, `le="${b}"`)} ${s.counts[i]}`));
      out.push(`${withLabels(`${this.name}_bucket`, k, 'le="+Inf"')} ${s.count}`);
      out.push(`${withLabels(`${this.name}_sum`, k)} ${s.sum}`, `${withLabels(`${this.name}_count`, k)} ${s.count}`);
    }
    return out;
  }
}

const LATENCY = [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
// Up to 10 minutes: at thousands of nodes the default interval is minutes long (docs/operator.md).
const REPORT_LATENCY = [0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 2.5, 3, 4, 5, 7.5, 10, 15, 20, 30, 60, 120, 300, 600];

/** The operator's metrics, one registry per Operator (tests run several in one process). */
export class OperatorMetrics {
  readonly reconciles = new Counter('vhosttrace_operator_reconciles_total', 'Reconciles by kind of key and result (ok, error).');
  readonly errors = new Counter('vhosttrace_operator_errors_total', 'Failed reconciles and API errors, by kind of key.');
  readonly statusWrites = new Counter('vhosttrace_operator_status_writes_total', 'Trace status writes, by result (written, unchanged, deferred).');
  readonly queueDepth = new Gauge('vhosttrace_operator_queue_depth', 'Keys waiting in the work queue.');
  readonly leader = new Gauge('vhosttrace_operator_leader', '1 while this replica holds the Lease.');
  readonly rollupSeconds = new HistogramMetric('vhosttrace_operator_rollup_duration_seconds', 'Time to compute one roll-up of a trace.', LATENCY);
  readonly reportToStatus = new HistogramMetric(
    'vhosttrace_operator_report_to_status_seconds',
    "From a report's observedTime to the write of the trace status that includes it.",
    REPORT_LATENCY,
  );
  readonly eventToStatus = new HistogramMetric(
    'vhosttrace_operator_event_to_status_seconds',
    "From the operator's receipt of a report (watch event) to the write of the status that includes it: the operator's share of the latency.",
    REPORT_LATENCY,
  );
  readonly informerEvents = new Counter('vhosttrace_operator_informer_events_total', 'Informer events by resource and event (list, metadata_list, gone, error, ...).');
  readonly memory = new Gauge('process_resident_memory_bytes', 'Resident memory of the operator process.');
  readonly heap = new Gauge('nodejs_heap_used_bytes', 'V8 heap in use (live objects and garbage not yet collected).');
  readonly cpu = new Counter('process_cpu_seconds_total', 'User and system CPU time of the process.');

  constructor() {
    this.memory.set(() => process.memoryUsage().rss);
    this.heap.set(() => process.memoryUsage().heapUsed);
  }

  render(): string {
    const cpu = process.cpuUsage();
    const cpuLines = [`# HELP ${this.cpu.name} ${this.cpu.help}`, `# TYPE ${this.cpu.name} counter`, `${this.cpu.name} ${(cpu.user + cpu.system) / 1e6}`];
    const all: Metric[] = [this.reconciles, this.errors, this.statusWrites, this.queueDepth, this.leader, this.rollupSeconds, this.reportToStatus, this.eventToStatus, this.informerEvents, this.memory, this.heap];
    return `${[...all.flatMap((m) => m.render()), ...cpuLines].join('\n')}\n`;
  }
}
