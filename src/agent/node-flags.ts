// V8 flags the agent runs with (the DaemonSet's command line and the benchmark use these):
// a small young generation keeps RSS near the live heap (72 MiB instead of 97 with 256 VMs at
// a 1 s interval, docs/benchmarks.md) for a few percent more time in garbage collection.
export const AGENT_NODE_FLAGS = ['--max-semi-space-size=2', '--max-old-space-size=96'];
