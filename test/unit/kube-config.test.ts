import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fromKubeconfig, inCluster, loadKubeConfig } from '../../src/kube/config.js';

let dir: string;
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'vhosttrace-kc-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const kubeconfig = (user: object, cluster: object = { server: 'https://127.0.0.1:6443', 'certificate-authority-data': Buffer.from('CA').toString('base64') }) => {
  const p = join(dir, 'config');
  writeFileSync(p, JSON.stringify({
    apiVersion: 'v1', kind: 'Config', 'current-context': 'x',
    clusters: [{ name: 'c', cluster }, { name: 'other', cluster: { server: 'https://wrong' } }],
    users: [{ name: 'u', user }],
    contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
  }));
  return p;
};

describe('kubeconfig', () => {
  it('reads inline certificates of the current context', () => {
    const a = fromKubeconfig(kubeconfig({ 'client-certificate-data': Buffer.from('CERT').toString('base64'), 'client-key-data': Buffer.from('KEY').toString('base64') }));
    expect(a.server).toBe('https://127.0.0.1:6443');
    expect([a.ca?.toString(), a.cert?.toString(), a.key?.toString()]).toEqual(['CA', 'CERT', 'KEY']);
    expect(a.token).toBeUndefined();
  });

  it('reads certificate files relative to the kubeconfig, and tokens', () => {
    mkdirSync(join(dir, 'pki'));
    writeFileSync(join(dir, 'pki/ca.crt'), 'FILE-CA');
    writeFileSync(join(dir, 'tok'), 'file-token\n');
    const a = fromKubeconfig(kubeconfig({ tokenFile: 'tok' }, { server: 'https://s', 'certificate-authority': 'pki/ca.crt' }));
    expect(a.ca?.toString()).toBe('FILE-CA');
    expect(a.token?.()).toBe('file-token');
    expect(fromKubeconfig(kubeconfig({ token: 'abc' })).token?.()).toBe('abc');
  });

  it('refuses exec plugins with a message that says what to use instead', () => {
    expect(() => fromKubeconfig(kubeconfig({ exec: { command: 'aws' } }))).toThrow(/exec or auth-provider plugin.*client certificate or a token/);
  });

  it('names the kubeconfig and what is missing', () => {
    const p = join(dir, 'bad');
    writeFileSync(p, 'apiVersion: v1\nkind: Config\n');
    expect(() => fromKubeconfig(p)).toThrow(new RegExp(`kubeconfig ${p} has no current-context`));
    expect(() => fromKubeconfig(join(dir, 'missing'))).toThrow(/reading kubeconfig .*missing/);
  });

  it('in a pod: the service account token and CA, and KUBECONFIG wins over it', () => {
    writeFileSync(join(dir, 'ca.crt'), 'SA-CA');
    writeFileSync(join(dir, 'token'), 'sa-token');
    const a = inCluster({ KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' }, dir);
    expect(a.server).toBe('https://10.96.0.1:443');
    expect(a.token?.()).toBe('sa-token');
    expect(inCluster({ KUBERNETES_SERVICE_HOST: 'fd00::1' }, dir).server).toBe('https://[fd00::1]:443');
    const p = kubeconfig({ token: 't' });
    expect(loadKubeConfig(undefined, { KUBECONFIG: p, KUBERNETES_SERVICE_HOST: '10.96.0.1' }).source).toMatch(/^kubeconfig/);
  });
});
