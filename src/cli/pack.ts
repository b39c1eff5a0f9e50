// `npm run build`'s last step: makes the bundled plugin executable, archives it for krew and writes the
// krew manifest for that archive to dist/krew/ (`node dist/cli/pack.js [DIST]`).
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ARCHIVE, BIN, krewManifest, PLUGIN, sha256, tarGz } from './krew.js';

const dist = resolve(process.argv[2] ?? 'dist');
const version = (JSON.parse(readFileSync(resolve(dist, '..', 'package.json'), 'utf8')) as { version: string }).version;
const bin = join(dist, BIN);
chmodSync(bin, 0o755);
const archive = tarGz(BIN, readFileSync(bin));
writeFileSync(join(dist, ARCHIVE), archive);
mkdirSync(join(dist, 'krew'), { recursive: true });
writeFileSync(join(dist, 'krew', `${PLUGIN}.yaml`), krewManifest(version, sha256(archive)));
process.stdout.write(`${bin}\n${join(dist, ARCHIVE)} sha256 ${sha256(archive)}\n${join(dist, 'krew', `${PLUGIN}.yaml`)}\n`);
