// The test harness's port picker: ports picked together are distinct and bindable.
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { freePorts } from '../harness/controlplane.js';

describe('freePorts', () => {
  it('gives n distinct loopback ports, each free to bind', async () => {
    const ports = await freePorts(64);
    expect(new Set(ports).size).toBe(64);
    for (const port of ports.slice(0, 8)) {
      await new Promise<void>((res, rej) => {
        const srv = createServer();
        srv.on('error', rej);
        srv.listen(port, '127.0.0.1', () => srv.close(() => res()));
      });
    }
  });
});
