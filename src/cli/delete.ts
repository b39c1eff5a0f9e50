// `delete`: deletes traces by name, as `kubectl delete vht` does (their reports go with them).
import { GROUP } from '../api/v1alpha1.js';
import { EXIT, type ExitCode } from './exit-codes.js';
import type { Session } from './session.js';
import { notFound } from './show.js';

export async function remove(s: Session): Promise<ExitCode> {
  const { api, namespace } = await s.cluster();
  let code: ExitCode = EXIT.ok;
  for (const name of s.inv.names) {
    if (await api.delete(s.kind, namespace, name)) s.io.out(`${s.kind.toLowerCase()}.${GROUP} "${name}" deleted\n`);
    else if (!s.inv.ignoreNotFound) {
      s.io.err(`${notFound(s, name, namespace).message}\n`);
      code = EXIT.notFound;
    }
  }
  return code;
}
