// V8 flags the agent runs with (the DaemonSet's command line, the tests' agents and the
// benchmark use these), measured side by side in docs/benchmarks.md: a small young generation,
// of fixed size, keeps RSS near the live heap (63 MiB with 256 VMs at a 1 s interval);
// --single-threaded keeps GC and compilation on the main thread, where waking helper threads
// for a few milliseconds of work a second cost more than the work (about 13% less CPU).
export const AGENT_NODE_FLAGS = ['--max-semi-space-size=2', '--min-semi-space-size=2', '--max-old-space-size=96', '--single-threaded'];
