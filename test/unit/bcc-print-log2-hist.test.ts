import { describe, expect, it } from 'vitest';
import { renderBccLog2Hist, renderLog2Hist, renderSeedText } from '../../src/loader/bcc-text.js';

// The seed article's printed histograms (bpf/test/golden/seed-*.txt, NBSP turned back into
// spaces), and the counts they show, in vhosttrace slot order (slot 0 = 0..1).
const SEED = {
  rxPackets: { label: 'recv pkts', buckets: [482291, 40457, 534, 4, 2], text: "     recv pkts           : count     distribution\n         0 -> 1          : 482291   |****************************************|\n         2 -> 3          : 40457    |***                                     |\n         4 -> 7          : 534      |                                        |\n         8 -> 15         : 4        |                                        |\n        16 -> 31         : 2        |                                        |\n" },
  rxBytes: {
    label: 'total len',
    buckets: [330, 0, 0, 0, 0, 8, 32, 9, 8, 30, 15275, 15516, 57986, 433015, 1060, 14, 4, 1],
    text: "     total len           : count     distribution\n         0 -> 1          : 330      |                                        |\n         2 -> 3          : 0        |                                        |\n         4 -> 7          : 0        |                                        |\n         8 -> 15         : 0        |                                        |\n        16 -> 31         : 0        |                                        |\n        32 -> 63         : 8        |                                        |\n        64 -> 127        : 32       |                                        |\n       128 -> 255        : 9        |                                        |\n       256 -> 511        : 8        |                                        |\n       512 -> 1023       : 30       |                                        |\n      1024 -> 2047       : 15275    |*                                       |\n      2048 -> 4095       : 15516    |*                                       |\n      4096 -> 8191       : 57986    |*****                                   |\n      8192 -> 16383      : 433015   |****************************************|\n     16384 -> 32767      : 1060     |                                        |\n     32768 -> 65535      : 14       |                                        |\n     65536 -> 131071     : 4        |                                        |\n    131072 -> 262143     : 1        |                                        |\n",
  },
  txPackets: { label: 'sent pkts', buckets: [264948, 8358, 199, 1], text: "     sent pkts           : count     distribution\n         0 -> 1          : 264948   |****************************************|\n         2 -> 3          : 8358     |*                                       |\n         4 -> 7          : 199      |                                        |\n         8 -> 15         : 1        |                                        |\n" },
  txBytes: { label: 'total len', buckets: [18, 0, 0, 0, 0, 8, 264919, 7998, 558, 5], text: "     total len           : count     distribution\n         0 -> 1          : 18       |                                        |\n         2 -> 3          : 0        |                                        |\n         4 -> 7          : 0        |                                        |\n         8 -> 15         : 0        |                                        |\n        16 -> 31         : 0        |                                        |\n        32 -> 63         : 8        |                                        |\n        64 -> 127        : 264919   |****************************************|\n       128 -> 255        : 7998     |*                                       |\n       256 -> 511        : 558      |                                        |\n       512 -> 1023       : 5        |                                        |\n" },
};

describe('BCC print_log2_hist layout', () => {
  it.each(Object.entries(SEED))('re-renders the seed article\'s %s histogram byte for byte', (_name, h) => {
    expect(renderLog2Hist(h.buckets, h.label)).toBe(h.text);
  });

  it('prints the seed script\'s headings, underlines and blank lines around the four histograms', () => {
    const text = renderSeedText({
      rxPackets: SEED.rxPackets.buckets,
      rxBytes: SEED.rxBytes.buckets,
      txPackets: SEED.txPackets.buckets,
      txBytes: SEED.txBytes.buckets,
    });
    expect(text.startsWith('\n\nVhost-net RX log2 received packets histogram\n--------------------------------------------\n')).toBe(true);
    expect(text).toContain(`${SEED.rxPackets.text}\n\nVhost-net RX log2 total length histogram\n----------------------------------------\n`);
    expect(text).toContain(`${SEED.rxBytes.text}\n\n-------------------------------------------------\n\n\nVhost-net TX log2 sent packets histogram\n`);
    expect(text.endsWith(`${SEED.txBytes.text}\n\n`)).toBe(true);
    // The article shows the same output with each run of blank lines collapsed to one.
    const collapsed = text.replace(/\n{3,}/g, '\n\n').trim();
    expect(collapsed).toContain(SEED.txPackets.text.trim());
  });

  it('prints nothing, not even the header, for an empty histogram', () => {
    expect(renderLog2Hist([], 'x')).toBe('');
    expect(renderLog2Hist([0, 0, 0], 'x')).toBe('');
  });

  it('scales stars as floor(40 * val / max), computed as Python does', () => {
    const lines = renderLog2Hist([40, 39, 1], 'v').split('\n');
    expect(lines[1]).toBe(`         0 -> 1          : 40       |${'*'.repeat(40)}|`);
    expect(lines[2]).toBe(`         2 -> 3          : 39       |${'*'.repeat(39)} |`);
    expect(lines[3]).toBe(`         4 -> 7          : 1        |*${' '.repeat(39)}|`);
    // 40 * 1 / 41 < 1: no star at all.
    expect(renderLog2Hist([41, 1], 'v').split('\n')[2]).toBe(`         2 -> 3          : 1        |${' '.repeat(40)}|`);
  });

  it('keeps the narrow layout up to BCC index 32 (slot 31) and widens past it', () => {
    const narrow = Array<number>(32).fill(0);
    narrow[31] = 1;
    const n = renderLog2Hist(narrow, 'total len').split('\n');
    expect(n[0]).toBe('     total len           : count     distribution');
    expect(n[32]).toBe(`2147483648 -> 4294967295 : 1        |${'*'.repeat(40)}|`);

    const wide = Array<number>(41).fill(0);
    wide[0] = 2;
    wide[40] = 1;
    const w = renderLog2Hist(wide, 'total len').split('\n');
    expect(w[0]).toBe(`               ${'total len'.padEnd(29)} : count     distribution`);
    expect(w[1]).toBe(`${'0'.padStart(20)} -> ${'1'.padEnd(20)} : 2        |${'*'.repeat(20)}|`);
    expect(w[41]).toBe(`       1099511627776 -> 2199023255551        : 1        |${'*'.repeat(10)}${' '.repeat(10)}|`);
    expect(w).toHaveLength(43);
  });

  it('labels the last of BCC\'s 64 value slots with the full u64 range', () => {
    const vals = Array<number>(65).fill(0);
    vals[64] = 3;
    const last = renderBccLog2Hist(vals, 'v').trimEnd().split('\n').pop();
    expect(last).toBe(` 9223372036854775808 -> 18446744073709551615 : 3        |${'*'.repeat(20)}|`);
  });

  it('does not pad counts wider than 8 digits, as Python\'s %-8d does not', () => {
    expect(renderLog2Hist([123456789], 'v').split('\n')[1]).toBe(`         0 -> 1          : 123456789 |${'*'.repeat(40)}|`);
  });
});
