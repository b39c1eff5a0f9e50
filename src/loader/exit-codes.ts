// vhost-hist's exit codes, by name: the one TypeScript copy of bpf/vh-common.h's enum vh_exit
// (test/unit/loader-exit-codes.test.ts holds the two together).
export const LOADER_EXIT = {
  ok: 0,
  error: 1,
  usage: 2,
  noTracepoint: 3,
  noBtf: 4,
  noPermission: 5,
  noBpffs: 6,
  pinMismatch: 7,
} as const;

export type LoaderExitCode = (typeof LOADER_EXIT)[keyof typeof LOADER_EXIT];

/** Exits a restart will not fix (the node must change first): no point hurrying the next try. */
export const PERMANENT_EXITS: ReadonlySet<number> = new Set([
  LOADER_EXIT.noTracepoint,
  LOADER_EXIT.noBtf,
  LOADER_EXIT.noPermission,
  LOADER_EXIT.noBpffs,
  LOADER_EXIT.pinMismatch,
]);
