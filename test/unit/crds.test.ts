import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { allCRDs } from '../../src/api/crds.js';
import { CRD_FILES, renderCRDs } from '../../src/api/generate.js';
import type { OpenApiSchema } from '../../src/api/schema.js';

describe('generated CRD YAML', () => {
  it.each(CRD_FILES)('%s is up to date with src/api (run `npm run generate`)', (file) => {
    expect(readFileSync(new URL(`../../${file}`, import.meta.url), 'utf8')).toBe(renderCRDs());
  });
});

/** The schema at a printer column's JSONPath, or undefined where the path leaves the schema. */
function schemaAt(root: OpenApiSchema, jsonPath: string): OpenApiSchema | undefined {
  let s: OpenApiSchema | undefined = root;
  for (const part of jsonPath.split('.').slice(1)) s = s?.properties?.[part];
  return s;
}

describe('printer columns', () => {
  const cases = allCRDs.flatMap((crd) =>
    crd.spec.versions[0]!.additionalPrinterColumns
      .filter((col) => !col.jsonPath.startsWith('.metadata.'))
      .map((col) => [crd.spec.names.kind, col.name, col.jsonPath, col.type, crd.spec.versions[0]!.schema.openAPIV3Schema] as const),
  );
  it.each(cases)('%s column %s (%s) points at a %s field of the schema', (_kind, _name, path, type, schema) => {
    const field = schemaAt(schema, path);
    expect(field, `${path} is not in the schema`).toBeDefined();
    const expected = type === 'date' ? 'string' : type;
    expect(field!.type).toBe(expected);
    if (type === 'date') expect(field!.format).toBe('date-time');
  });
});
