// The operator's entry point: `node dist/operator/main.js`. Configuration: POD_NAMESPACE,
// POD_NAME, KUBECONFIG (else in-cluster), VHOSTTRACE_OPERATOR_CONFIG (YAML, see config.ts),
// LOG_LEVEL.
import { pino } from 'pino';
import { KubeClient, loadKubeConfig } from '../kube/client.js';
import { loadConfig } from './config.js';
import { Operator } from './operator.js';

const log = pino({ name: 'vhosttrace-operator', level: process.env.LOG_LEVEL ?? 'info' });
const cfg = loadConfig();
const op = new Operator(new KubeClient(loadKubeConfig()), cfg, log);

let stopping = false;
const shutdown = async (signal: string) => {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'shutting down');
  await op.stop(true);
  process.exit(0);
};
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
void op.lostLease.then(() => {
  log.error('lost leadership; exiting so that a fresh start rejoins the election');
  process.exit(1);
});
op.start().catch((err: unknown) => {
  log.fatal({ err }, 'failed to start');
  process.exit(1);
});
