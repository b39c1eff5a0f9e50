// The Prometheus text format (0.0.4) for the agent and the operator: label values, a family's HELP and TYPE, one sample. Pure.

export type Labels = Record<string, string>;

/** A label value as the format quotes it: backslash, double quote and newline escaped. */
export const escapeLabelValue = (v: string): string => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

/** `k="v",k="v"` in the given order (no braces). */
export const labelPairs = (l: Labels, keys: readonly string[] = Object.keys(l)): string => keys.map((k) => `${k}="${escapeLabelValue(l[k]!)}"`).join(',');

export function header(name: string, type: 'counter' | 'gauge' | 'histogram', help: string): string {
  return `# HELP ${name} ${help}\n# TYPE ${name} ${type}\n`;
}

export function sample(name: string, labels: Labels, value: number): string {
  const pairs = labelPairs(labels);
  return `${name}${pairs ? `{${pairs}}` : ''} ${value}\n`;
}
