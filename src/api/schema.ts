// A small builder for Kubernetes structural OpenAPI v3 schemas that also carries the
// TypeScript type of what it describes, so the CRD YAML and the types come from one place
// (the idea of TypeBox, cut to what CRDs need). Static<typeof S> is the type of S.

/** A CEL rule evaluated by the API server (x-kubernetes-validations). */
export interface CelRule {
  rule: string;
  message: string;
  /** JSONPath (relative to the schema holding the rule) of the field the error names. */
  fieldPath?: string;
  reason?: 'FieldValueInvalid' | 'FieldValueForbidden' | 'FieldValueRequired' | 'FieldValueDuplicate';
}

/** The subset of JSONSchemaProps (apiextensions.k8s.io/v1) that vhosttrace uses. */
export interface OpenApiSchema {
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  format?: string;
  description?: string;
  properties?: Record<string, OpenApiSchema>;
  required?: string[];
  additionalProperties?: OpenApiSchema;
  items?: OpenApiSchema;
  enum?: unknown[];
  default?: unknown;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  minItems?: number;
  maxItems?: number;
  minProperties?: number;
  maxProperties?: number;
  nullable?: boolean;
  'x-kubernetes-validations'?: CelRule[];
  'x-kubernetes-list-type'?: 'atomic' | 'set' | 'map';
  'x-kubernetes-list-map-keys'?: string[];
  'x-kubernetes-map-type'?: 'atomic' | 'granular';
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-embedded-resource'?: boolean;
}

declare const phantom: unique symbol;
/** A schema whose instances have type T (T exists only for the type checker). */
export type Schema<T> = OpenApiSchema & { readonly [phantom]?: T };
export type Static<S> = S extends Schema<infer T> ? T : never;

/** Keywords a caller may add to any builder; type-shaping keywords are the builder's own. */
type Extra = Omit<OpenApiSchema, 'type' | 'properties' | 'required' | 'items' | 'additionalProperties' | 'enum'>;

export function str(extra: Extra = {}): Schema<string> {
  return { type: 'string', ...extra };
}

/** A Kubernetes int64; JavaScript numbers hold counts exactly up to 2^53. */
export function int(extra: Extra = {}): Schema<number> {
  return { type: 'integer', format: 'int64', ...extra };
}

export function bool(extra: Extra = {}): Schema<boolean> {
  return { type: 'boolean', ...extra };
}

export function oneOf<const V extends readonly string[]>(values: V, extra: Extra = {}): Schema<V[number]> {
  return { type: 'string', enum: [...values], ...extra };
}

export function array<I>(items: Schema<I>, extra: Extra = {}): Schema<I[]> {
  return { type: 'array', items, ...extra };
}

export function record<V>(values: Schema<V>, extra: Extra = {}): Schema<Record<string, V>> {
  return { type: 'object', additionalProperties: values, ...extra };
}

type Props = Record<string, Schema<unknown>>;
type Simplify<T> = { [K in keyof T]: T[K] } & {};
type ObjectOf<P extends Props, R extends keyof P> = Simplify<
  { [K in R]: Static<P[K]> } & { [K in Exclude<keyof P, R>]?: Static<P[K]> }
>;

export function object<P extends Props, R extends keyof P & string = never>(
  properties: P,
  options: Extra & { required?: readonly R[] } = {},
): Schema<ObjectOf<P, R>> {
  const { required, ...extra } = options;
  const schema: OpenApiSchema = { type: 'object', properties, ...extra };
  if (required && required.length > 0) schema.required = [...required];
  return schema as Schema<ObjectOf<P, R>>;
}
