// KubeVirt's shape for tests: the VirtualMachineInstance CRD and virt-launcher pods as virt-controller makes them.
//
// The CRD is a subset of KubeVirt's kubevirt.io/v1 VirtualMachineInstance schema, written here
// from KubeVirt's API reference: KubeVirt's Go modules (kubevirt.io/api) are not served by the
// Go module proxy this project builds from, so it cannot be generated. Kept: group, names,
// short names, scope, the v1 version, the printer columns, spec.domain.devices.interfaces and
// networkInterfaceMultiqueue, spec.networks, status.phase/nodeName/interfaces; everything else
// is preserved unvalidated (x-kubernetes-preserve-unknown-fields), as a real VMI carries much more.
import type { TestClient } from './kube.js';

const obj = (properties: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({ type: 'object', properties, ...extra });
const str = { type: 'string' };
const open = { type: 'object', 'x-kubernetes-preserve-unknown-fields': true };

export const VMI_CRD = {
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: { name: 'virtualmachineinstances.kubevirt.io', labels: { 'app.kubernetes.io/component': 'kubevirt' } },
  spec: {
    group: 'kubevirt.io',
    names: {
      kind: 'VirtualMachineInstance',
      listKind: 'VirtualMachineInstanceList',
      plural: 'virtualmachineinstances',
      singular: 'virtualmachineinstance',
      shortNames: ['vmi', 'vmis'],
      categories: ['all'],
    },
    scope: 'Namespaced',
    versions: [
      {
        name: 'v1',
        served: true,
        storage: true,
        additionalPrinterColumns: [
          { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
          { name: 'Phase', type: 'string', jsonPath: '.status.phase' },
          { name: 'IP', type: 'string', jsonPath: '.status.interfaces[0].ipAddress' },
          { name: 'NodeName', type: 'string', jsonPath: '.status.nodeName' },
          { name: 'Ready', type: 'string', jsonPath: ".status.conditions[?(@.type=='Ready')].status" },
        ],
        schema: {
          openAPIV3Schema: obj({
            apiVersion: str,
            kind: str,
            metadata: { type: 'object' },
            spec: obj(
              {
                domain: obj(
                  {
                    devices: obj(
                      {
                        interfaces: {
                          type: 'array',
                          items: obj({ name: str, masquerade: open, bridge: open, model: str }, { required: ['name'], 'x-kubernetes-preserve-unknown-fields': true }),
                        },
                        networkInterfaceMultiqueue: { type: 'boolean' },
                      },
                      { 'x-kubernetes-preserve-unknown-fields': true },
                    ),
                  },
                  { required: ['devices'], 'x-kubernetes-preserve-unknown-fields': true },
                ),
                networks: { type: 'array', items: obj({ name: str, pod: open, multus: open }, { required: ['name'] }) },
              },
              { required: ['domain'], 'x-kubernetes-preserve-unknown-fields': true },
            ),
            status: obj(
              {
                phase: str,
                nodeName: str,
                interfaces: { type: 'array', items: obj({ name: str, ipAddress: str }, { 'x-kubernetes-preserve-unknown-fields': true }) },
              },
              { 'x-kubernetes-preserve-unknown-fields': true },
            ),
          }),
        },
      },
    ],
  },
};

export interface Vmi {
  namespace: string;
  name: string;
  uid: string;
  labels: Record<string, string>;
}

/** Creates a VMI with one pod-network interface (masquerade; multiqueue when `queues` > 1). */
export async function createVmi(c: TestClient, namespace: string, name: string, labels: Record<string, string> = {}, queues = 1): Promise<Vmi> {
  const r = await c.request('POST', `/apis/kubevirt.io/v1/namespaces/${namespace}/virtualmachineinstances`, {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name, labels },
    spec: {
      domain: {
        cpu: { cores: queues },
        devices: { interfaces: [{ name: 'default', masquerade: {} }], ...(queues > 1 ? { networkInterfaceMultiqueue: true } : {}) },
        resources: { requests: { memory: '64Mi' } },
      },
      networks: [{ name: 'default', pod: {} }],
    },
  });
  if (r.status !== 201) throw new Error(`VMI ${namespace}/${name}: ${r.status} ${JSON.stringify(r.body)}`);
  return { namespace, name, uid: r.body.metadata.uid, labels };
}

/**
 * The virt-launcher pod of a VMI as virt-controller makes it: its labels (the VMI's own copied,
 * kubevirt.io=virt-launcher, created-by, vmi.kubevirt.io/id), the kubevirt.io/domain annotation,
 * a controller ownerReference to the VMI, and a `compute` container (here the caller's).
 */
export function launcherPod(vmi: Vmi, nodeName: string, compute: Record<string, unknown> = { image: 'virt-launcher' }, spec: Record<string, unknown> = {}) {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: `virt-launcher-${vmi.name}-${vmi.uid.slice(0, 5)}`,
      namespace: vmi.namespace,
      labels: { ...vmi.labels, 'kubevirt.io': 'virt-launcher', 'kubevirt.io/created-by': vmi.uid, 'vmi.kubevirt.io/id': vmi.name },
      annotations: { 'kubevirt.io/domain': vmi.name, 'kubectl.kubernetes.io/default-container': 'compute' },
      ownerReferences: [{ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', name: vmi.name, uid: vmi.uid, controller: true, blockOwnerDeletion: true }],
    },
    spec: { nodeName, automountServiceAccountToken: false, ...spec, containers: [{ name: 'compute', ...compute }] },
  };
}
