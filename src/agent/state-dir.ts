// The agent's state directory on the host: what a restarted agent must not lose, each file written whole or not at all.
//
//   generation         the BPF maps' generation (ledger.ts: bumped when the loader starts on fresh maps)
//   attribution.json   cgroup id -> VM, remembered after the VM's pod is gone
//   traces/<uid>.json  each trace's ledger
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { VmRef } from './attribution.js';
import { ledgerFromJSON, ledgerToJSON, type Ledger } from './ledger.js';

export interface SavedState {
  generation: number;
  attribution: Array<[number, VmRef]>;
  ledgers: Ledger[];
}

export class StateDir {
  constructor(private readonly dir: string) {}

  /** Reads everything; an empty or new directory is a fresh start. */
  async load(): Promise<SavedState> {
    const traces = join(this.dir, 'traces');
    await mkdir(traces, { recursive: true });
    const generation = Number(await readFile(join(this.dir, 'generation'), 'utf8').catch(() => '0')) || 0;
    const attribution = JSON.parse(await readFile(join(this.dir, 'attribution.json'), 'utf8').catch(() => '[]')) as Array<[number, VmRef]>;
    const ledgers: Ledger[] = [];
    for (const f of await readdir(traces)) {
      if (f.endsWith('.json')) ledgers.push(ledgerFromJSON(await readFile(join(traces, f), 'utf8')));
    }
    return { generation, attribution, ledgers };
  }

  saveGeneration(generation: number): Promise<void> {
    return writeAtomic(join(this.dir, 'generation'), String(generation));
  }

  saveAttribution(remembered: Array<[number, VmRef]>): Promise<void> {
    return writeAtomic(join(this.dir, 'attribution.json'), JSON.stringify(remembered));
  }

  saveLedger(l: Ledger): Promise<void> {
    return writeAtomic(this.ledgerPath(l.traceUid), ledgerToJSON(l));
  }

  removeLedger(traceUid: string): Promise<void> {
    return rm(this.ledgerPath(traceUid), { force: true });
  }

  private ledgerPath(traceUid: string): string {
    return join(this.dir, 'traces', `${traceUid}.json`);
  }
}

/** Write, then rename: a crash leaves the old file or the new one, never half of one. */
async function writeAtomic(path: string, text: string): Promise<void> {
  await writeFile(`${path}.tmp`, text);
  await rename(`${path}.tmp`, path);
}
