// The HTTP server of /metrics, /healthz and /readyz, the same for the agent and the operator.
import { createServer, type Server } from 'node:http';

export interface Endpoints {
  /** The Prometheus text of /metrics. */
  metrics(): string;
  /** /readyz: 200 when ok, else 503; `text` says why either way. */
  ready(): { ok: boolean; text: string };
}

/**
 * Serves on `port` (0 picks a free one; read it from the server's address). Paths are matched
 * without their query string, as Prometheus and the kubelet may add one; /healthz says only that
 * the process answers.
 */
export function serveEndpoints(port: number, e: Endpoints): Promise<Server> {
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (path === '/metrics') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(e.metrics());
    } else if (path === '/healthz') {
      res.writeHead(200).end('ok\n');
    } else if (path === '/readyz') {
      const r = e.ready();
      res.writeHead(r.ok ? 200 : 503).end(`${r.text}\n`);
    } else {
      res.writeHead(404).end();
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, () => resolve(server));
  });
}

/** The server's port once listening, 0 before. */
export function portOf(server: Server | undefined): number {
  const a = server?.address();
  return typeof a === 'object' && a ? a.port : 0;
}

/** Stops listening and drops kept-alive connections (a scraper's would hold the close up). */
export function closeServer(server: Server | undefined): Promise<void> {
  if (!server) return Promise.resolve();
  const closed = new Promise<void>((r) => server.close(() => r()));
  server.closeAllConnections();
  return closed;
}
