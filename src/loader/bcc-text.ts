// BCC's text histogram, as its Python print_log2_hist prints it (bcc/table.py), and the
// four sections the seed article's script prints on Ctrl-C. Pure. `vhost-hist --text`
// prints the same bytes from C (bpf/vh-text.c); test/bpf/ compares the two.
//
// Indexing: BCC's bpf_log2l() puts a value v >= 1 at index floor(log2 v) + 1 and 0 at 1,
// so BCC index i is vhosttrace slot i - 1 (buckets[0] = 0..1). BCC never prints index 0.

/** BCC's width of the star bar in the narrow layout; the wide one uses half. */
const STARS_MAX = 40;

/** Python's _stars(): floor(width * val / max) stars, computed in floating point as Python does. */
function stars(val: number, valMax: number, width: number): string {
  let text = '';
  for (let i = 0; !(i > (width * val) / valMax - 1 || i > width - 1); i++) text += '*';
  if (val > valMax) text = `${text.slice(0, -1)}+`;
  return text;
}

/**
 * Renders BCC-indexed counts (vals[0] unused, vals[i] = values in [2^(i-1), 2^i - 1]) the way
 * BCC's _print_log2_hist(vals, valType, strip_leading_zero=None) prints them, with the final
 * newline of each print().
 */
export function renderBccLog2Hist(vals: readonly number[], valType: string): string {
  let idxMax = -1;
  let valMax = 0;
  vals.forEach((v, i) => {
    if (v > 0) idxMax = i;
    if (v > valMax) valMax = v;
  });
  const wide = idxMax > 32;
  const width = wide ? 20 : 10;
  const starWidth = wide ? Math.trunc(STARS_MAX / 2) : STARS_MAX;
  let out = '';
  if (idxMax > 0) {
    out += wide ? `               ${valType.padEnd(29)} : count     distribution\n` : `     ${valType.padEnd(19)} : count     distribution\n`;
  }
  for (let i = 1; i <= idxMax; i++) {
    let low = (1n << BigInt(i)) >> 1n;
    const high = (1n << BigInt(i)) - 1n;
    if (low === high) low -= 1n;
    const val = vals[i] ?? 0;
    out += `${String(low).padStart(width)} -> ${String(high).padEnd(width)} : ${String(val).padEnd(8)} |${stars(val, valMax, starWidth).padEnd(starWidth)}|\n`;
  }
  return out;
}

/** The same, from vhosttrace buckets (buckets[0] = 0..1, buckets[k] = 2^k..2^(k+1)-1). */
export function renderLog2Hist(buckets: readonly number[], valType: string): string {
  return renderBccLog2Hist([0, ...buckets], valType);
}

export interface SeedHistograms {
  rxPackets: readonly number[];
  rxBytes: readonly number[];
  txPackets: readonly number[];
  txBytes: readonly number[];
}

/** What the seed article's script prints first. */
export const SEED_BANNER = 'Aggregating data from vhost-net RX & TX virtqueues... Hit Ctrl-C to end.\n';

/** What the seed's script prints after Ctrl-C (Python's print("\n") is two newlines). */
export function renderSeedText(h: SeedHistograms): string {
  const section = (heading: string, buckets: readonly number[], label: string): string =>
    `${heading}\n${'-'.repeat(heading.length)}\n${renderLog2Hist(buckets, label)}\n\n`;
  return (
    '\n\n' +
    section('Vhost-net RX log2 received packets histogram', h.rxPackets, 'recv pkts') +
    section('Vhost-net RX log2 total length histogram', h.rxBytes, 'total len') +
    '-------------------------------------------------\n\n\n' +
    section('Vhost-net TX log2 sent packets histogram', h.txPackets, 'sent pkts') +
    section('Vhost-net TX log2 total length histogram', h.txBytes, 'total len')
  );
}
