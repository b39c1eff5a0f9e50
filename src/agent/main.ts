// The agent's entry point: configuration from the environment (the DaemonSet sets it), then
// run until SIGTERM.
import { pino } from 'pino';
import { KubeClient, loadKubeConfig } from '../kube/client.js';
import { parseDuration } from '../api/duration.js';
import { Agent, type AgentConfig } from './agent.js';
import { DEFAULT_PROBE_PATHS } from './probe.js';

/** Splits a command line on spaces (the loader's argv has no quoted parts). */
const argv = (s: string) => s.split(/\s+/).filter(Boolean);

export function configFromEnv(env: NodeJS.ProcessEnv): AgentConfig {
  const nodeName = env.NODE_NAME;
  if (!nodeName) throw new Error('NODE_NAME is not set: the DaemonSet sets it from spec.nodeName (downward API)');
  return {
    nodeName,
    installNamespace: env.POD_NAMESPACE ?? 'vhosttrace-system',
    loaderCommand: argv(env.VHOSTTRACE_LOADER ?? 'vhost-hist --json --pin -i 1'),
    loaderStopCommand: argv(env.VHOSTTRACE_LOADER_STOP ?? 'vhost-hist --stop'),
    stateDir: env.VHOSTTRACE_STATE_DIR ?? '/var/lib/vhosttrace',
    cgroupRoot: env.VHOSTTRACE_CGROUP_ROOT ?? '/sys/fs/cgroup',
    procRoot: env.VHOSTTRACE_PROC_ROOT ?? '/host/proc',
    probePaths: {
      ...DEFAULT_PROBE_PATHS,
      tracefs: env.VHOSTTRACE_TRACEFS ?? DEFAULT_PROBE_PATHS.tracefs,
      sys: env.VHOSTTRACE_SYS ?? DEFAULT_PROBE_PATHS.sys,
    },
    defaultIntervalMs: parseDuration(env.VHOSTTRACE_DEFAULT_INTERVAL ?? '10s'),
    port: Number(env.PORT ?? 9090),
    fieldManager: 'vhosttrace-agent',
  };
}

async function main(): Promise<void> {
  const log = pino({ base: { component: 'agent', node: process.env.NODE_NAME } });
  let cfg: AgentConfig;
  try {
    cfg = configFromEnv(process.env);
  } catch (err) {
    log.fatal((err as Error).message);
    process.exit(2);
  }
  const agent = new Agent(cfg, new KubeClient(loadKubeConfig(process.env.KUBECONFIG)), log);
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    await agent.stop();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  await agent.start();
  log.info({ port: agent.port }, 'serving /metrics, /healthz, /readyz');
}

if (process.argv[1]?.endsWith('agent/main.js')) {
  main().catch((err: Error) => {
    pino().fatal({ err: err.message, stack: err.stack }, 'agent failed');
    process.exit(1);
  });
}
