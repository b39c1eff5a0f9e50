// The images a real node imports: built (or found in their cache) by their scripts, as OCI
// archives, and the name the product's archive carries, for the chart's values.
import { execFileSync, spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';

const REPO = resolve(import.meta.dirname, '../..');

/** The last stdout line of a build script: the OCI archive it made or found in its cache. */
export function archive(script: string): string {
  const r = spawnSync(join(REPO, script), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status !== 0) throw new Error(`${script} failed:\n${r.stderr}`);
  return r.stdout.trim().split('\n').pop()!;
}

/** The image's name as the archive carries it (buildah's oci-archive ref), for the chart. */
export function imageRef(archivePath: string): { repository: string; tag: string } {
  const index = JSON.parse(execFileSync('tar', ['-xOf', archivePath, 'index.json'], { encoding: 'utf8' })) as {
    manifests: { annotations?: Record<string, string> }[];
  };
  const ref = index.manifests[0]?.annotations?.['org.opencontainers.image.ref.name'] ?? '';
  const at = ref.lastIndexOf(':');
  if (at <= 0) throw new Error(`${archivePath}: no image name in index.json (got "${ref}")`);
  return { repository: ref.slice(0, at), tag: ref.slice(at + 1) };
}
