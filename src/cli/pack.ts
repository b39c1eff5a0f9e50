// `npm run build`'s last step: makes the bundled plugin executable where it runs in place, archives it
// for krew and writes the krew manifest for that archive to dist/krew/ (`node dist/cli/pack.js [DIST]`).
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ARCHIVE, BIN, krewManifest, PLUGIN, sha256, tarGz } from './krew.js';

const dist = resolve(process.argv[2] ?? 'dist');
const version = (JSON.parse(readFileSync(resolve(dist, '..', 'package.json'), 'utf8')) as { version: string }).version;
const dir = join(dist, 'plugin');
const bin = join(dir, BIN);
chmodSync(bin, 0o755);
// The bundle is CommonJS in a file without an extension, so Node takes its module type from the
// nearest package.json: the repo's says "module", which would make dist/plugin/ on PATH fail.
writeFileSync(
  join(dir, 'package.json'),
  `${JSON.stringify({ description: `${BIN} is a CommonJS bundle; this file makes Node load it as one here.`, type: 'commonjs' }, null, 2)}\n`,
);
const archive = tarGz(BIN, readFileSync(bin));
writeFileSync(join(dist, ARCHIVE), archive);
mkdirSync(join(dist, 'krew'), { recursive: true });
writeFileSync(join(dist, 'krew', `${PLUGIN}.yaml`), krewManifest(version, sha256(archive)));
process.stdout.write(`${bin}\n${join(dist, ARCHIVE)} sha256 ${sha256(archive)}\n${join(dist, 'krew', `${PLUGIN}.yaml`)}\n`);
