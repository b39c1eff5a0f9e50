// The krew distribution of the plugin: the archive (a gzipped tar holding the one bundled file, built
// byte for byte the same from the same input) and the krew plugin manifest that names it by sha256.
// Pure. Manifest format: krew's index.Plugin, apiVersion krew.googlecontainertools.github.com/v1alpha2.
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { stringify } from 'yaml';

export const PLUGIN = 'vhosttrace';
export const BIN = 'kubectl-vhosttrace';
export const ARCHIVE = `${BIN}.tar.gz`;
export const HOMEPAGE = 'https://github.com/vhosttrace/vhosttrace';

/** Where a release's archive is published (GitHub releases of the project, as the image is on ghcr.io). */
export function releaseUri(version: string): string {
  return `${HOMEPAGE}/releases/download/v${version}/${ARCHIVE}`;
}

function octal(n: number, width: number): string {
  return `${n.toString(8).padStart(width - 1, '0')}\0`;
}

/** A ustar archive of one executable file (mode 0755, owner 0, mtime 0), gzipped without a name or time. */
export function tarGz(name: string, content: Buffer): Buffer {
  const header = Buffer.alloc(512);
  const put = (text: string, offset: number) => header.write(text, offset, 'ascii');
  put(name, 0);
  put(octal(0o755, 8), 100);
  put(octal(0, 8), 108);
  put(octal(0, 8), 116);
  put(octal(content.length, 12), 124);
  put(octal(0, 12), 136);
  put('        ', 148);
  put('0', 156);
  put('ustar\x0000', 257);
  put('root', 265);
  put('root', 297);
  let sum = 0;
  for (const b of header) sum += b;
  put(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  const pad = Buffer.alloc((512 - (content.length % 512)) % 512);
  return gzipSync(Buffer.concat([header, content, pad, Buffer.alloc(1024)]), { level: 9 });
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The manifest for one release: one archive for Linux and macOS (the plugin is a Node.js script). */
export function krewManifest(version: string, archiveSha256: string, uri = releaseUri(version)): string {
  const manifest = {
    apiVersion: 'krew.googlecontainertools.github.com/v1alpha2',
    kind: 'Plugin',
    metadata: { name: PLUGIN },
    spec: {
      version: `v${version}`,
      homepage: HOMEPAGE,
      shortDescription: 'Histograms of vhost-net batching in KubeVirt VMs',
      description:
        'Shows, runs and watches vhosttrace traces: log2 histograms of the packets and bytes each\n' +
        'vhost-net RX and TX run handles, per cluster, node or VM, printed as BCC prints them.\n' +
        'Needs the vhosttrace operator in the cluster.\n',
      caveats: 'This plugin is a Node.js program: it needs `node` (20.19 or later) on PATH.\n',
      platforms: [
        {
          selector: { matchExpressions: [{ key: 'os', operator: 'In', values: ['linux', 'darwin'] }] },
          uri,
          sha256: archiveSha256,
          files: [{ from: BIN, to: '.' }],
          bin: BIN,
        },
      ],
    },
  };
  return `# The krew plugin manifest of kubectl-vhosttrace (docs/cli.md, "Install"). \`npm run build\` writes it
# to dist/krew/ with the sha256 of the archive it built; a release copies that here.
${stringify(manifest, { indentSeq: false, lineWidth: 0 })}`;
}
