// Renders the CRDs to YAML; run as a program (npm run generate) it rewrites the files that
// manifests/ and the chart ship. The unit tests compare those files with renderCRDs().
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { allCRDs } from './crds.js';

export const CRD_FILES = ['manifests/crds.yaml', 'charts/vhosttrace/crds/crds.yaml'];

export function renderCRDs(): string {
  const header = '# Generated from src/api by `npm run generate`; do not edit.\n';
  return header + allCRDs.map((c) => '---\n' + stringify(c, { lineWidth: 0, aliasDuplicateObjects: false })).join('');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const root = fileURLToPath(new URL(process.argv[2] ?? '../..', import.meta.url));
  for (const f of CRD_FILES) {
    writeFileSync(`${root}/${f}`, renderCRDs());
    console.log(`wrote ${f}`);
  }
}
