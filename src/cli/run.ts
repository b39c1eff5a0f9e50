// `run`: creates a trace from flags, waits for it with progress on stderr, prints its histograms, and
// deletes it unless --keep. Ctrl-C (or a trace without --duration) stops the wait early: what has been
// counted so far is printed, as the seed's BCC script printed on Ctrl-C.
import { parseDuration } from '../api/duration.js';
import type { Trace } from '../api/reports.js';
import { EXIT, type ExitCode } from './exit-codes.js';
import type { Session } from './session.js';
import { clusterView, emit } from './show.js';
import { traceToCreate, waitLimitMs } from './trace-spec.js';
import { traceTitle } from './view.js';

/** One line of progress: phase, nodes, runs counted, time traced. Pure. */
export function progressLine(t: Trace, now: number): string {
  const st = t.status;
  const runs = (['rx', 'tx'] as const)
    .filter((d) => st?.summary?.[d])
    .map((d) => `${d.toUpperCase()} ${st!.summary![d]!.packets.count} runs`);
  const start = st?.startTime ? Date.parse(st.startTime) : undefined;
  const elapsed = start !== undefined ? `${Math.max(0, Math.round((now - start) / 1000))}s` : undefined;
  const total = t.spec.duration ? `${Math.round(parseDuration(t.spec.duration) / 1000)}s` : undefined;
  const time = elapsed ? `, ${elapsed}${total ? ` of ${total}` : ''}` : '';
  return `${traceTitle(t)}: ${st?.phase ?? 'Pending'}, nodes ${st?.nodesReporting ?? '0/0'} reporting${runs.length ? `, ${runs.join(', ')}` : ''}${time}`;
}

export async function run(s: Session): Promise<ExitCode> {
  const { api, namespace } = await s.cluster();
  const wanted = traceToCreate(s.inv.run, { cluster: s.inv.cluster, name: s.inv.names[0], namespace });
  const limit = waitLimitMs(s.inv.run);
  const created = await api.create(wanted);
  const name = created.metadata.name!;
  const title = traceTitle(created);
  s.io.err(
    `created ${title}; ${created.spec.duration ? `tracing for ${created.spec.duration}` : 'tracing until Ctrl-C'}` +
      `${created.spec.duration ? ' (Ctrl-C stops early)' : ''}\n`,
  );

  const stop = new AbortController();
  let why: 'completed' | 'interrupted' | 'timeout' | 'deleted' | undefined;
  const offInterrupt = s.io.onInterrupt(() => {
    why ??= 'interrupted';
    stop.abort();
  });
  const timer = limit !== undefined ? setTimeout(() => ((why ??= 'timeout'), stop.abort()), limit) : undefined;
  let latest: Trace = created;
  let shown = '';
  try {
    for await (const ev of api.watch(created.kind, namespace, name, stop.signal)) {
      if (ev.type === 'deleted') {
        why = 'deleted';
        break;
      }
      latest = ev.trace;
      const line = progressLine(latest, s.io.now());
      if (line !== shown) {
        s.io.err(s.io.errTty ? `\r\x1b[K${line}` : `${line}\n`);
        shown = line;
      }
      if (latest.status?.phase === 'Completed') {
        why = 'completed';
        break;
      }
    }
  } finally {
    clearTimeout(timer);
    offInterrupt();
    stop.abort();
    if (s.io.errTty && shown) s.io.err('\n');
  }

  if (why === 'deleted') {
    s.io.err(`${title} was deleted by someone else before it completed\n`);
    return EXIT.notFound;
  }
  // The final numbers: the trace as it is now (a last report may have come in).
  const final = (await api.get(created.kind, namespace, name)) ?? latest;
  const { view, verdict } = await clusterView(s, final);
  let code = emit(s, view, verdict);
  if (why === 'timeout' && code === EXIT.ok) {
    s.io.err(`${title} did not complete within ${s.inv.run.timeout ?? `its duration and a minute`}; printed what it had\n`);
    code = EXIT.error;
  }
  if (s.inv.run.keep) s.io.err(`kept ${title}: kubectl vhosttrace delete ${created.kind === 'ClusterVhostTrace' ? 'cvht/' : ''}${name}${created.kind === 'VhostTrace' ? ` -n ${namespace}` : ''}\n`);
  else if (await api.delete(created.kind, namespace, name)) s.io.err(`deleted ${title} (--keep keeps it)\n`);
  return code;
}
