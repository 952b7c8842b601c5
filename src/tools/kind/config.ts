/**
 * What a kind cluster with the embedded registry is made of (DESIGN 3,
 * "Registry reachable from pods, Chains and the runner alike"): the kind
 * config, the containerd hosts.toml each node gets, and the KEP-1755
 * ConfigMap. Pure: names, paths and file contents only.
 */
import { stringify } from 'yaml'
import type { KubeObject } from '../../kube/objects.js'
import { EMBEDDED_REGISTRY } from '../../plan.js'

/** The registry's one name, from pods, nodes, Chains and the runner: `registry.local:5000`. */
export const REGISTRY_HOST_PORT = EMBEDDED_REGISTRY
export const REGISTRY_HOST = EMBEDDED_REGISTRY.slice(0, EMBEDDED_REGISTRY.lastIndexOf(':'))
export const REGISTRY_PORT = Number(EMBEDDED_REGISTRY.slice(EMBEDDED_REGISTRY.lastIndexOf(':') + 1))

/** The registry container; `registry.local` is its alias on the kind network. */
export const REGISTRY_CONTAINER = 'oml-chains-registry'
/** The docker network kind puts every cluster's nodes on. */
export const KIND_NETWORK = 'kind'
/** Published on IPv4 loopback only: no IPv6 stalls, nothing exposed beyond the runner. */
export const REGISTRY_HOST_ADDRESS = '127.0.0.1'

/** Where containerd looks for per-registry hosts.toml files (its CRI `config_path`). */
export const CONTAINERD_CERTS_DIR = '/etc/containerd/certs.d'

/**
 * The containerd patch that points CRI at CONTAINERD_CERTS_DIR. kind v0.32's
 * node images run containerd 2.3 but ship a `version = 2` config.toml, and
 * kind merges patches into that file: so the key is the version-2 one,
 * `io.containerd.grpc.v1.cri`, which containerd 2.x migrates on load to
 * `io.containerd.cri.v1.images` (the images plugin moves `registry` over).
 * kind's own local-registry guide uses the same key. Node images from kind
 * v0.27 on already default to this path; the patch makes it explicit.
 */
export const CONTAINERD_REGISTRY_PATCH = `[plugins."io.containerd.grpc.v1.cri".registry]
  config_path = "${CONTAINERD_CERTS_DIR}"`

export interface KindClusterSpec {
  name: string
  /** kind node image, pinned by digest. */
  nodeImage: string
}

/** The kind config: one control-plane node of the pinned image, CRI registry config from certs.d. */
export function kindClusterConfig(spec: KindClusterSpec): string {
  if (!/@sha256:[0-9a-f]{64}$/.test(spec.nodeImage)) {
    throw new Error(`kind node image ${spec.nodeImage} is not pinned by digest`)
  }
  return stringify(
    {
      kind: 'Cluster',
      apiVersion: 'kind.x-k8s.io/v1alpha4',
      name: spec.name,
      nodes: [{ role: 'control-plane', image: spec.nodeImage }],
      containerdConfigPatches: [CONTAINERD_REGISTRY_PATCH],
    },
    { lineWidth: 0 },
  )
}

/**
 * Path of the hosts.toml for `hostPort` on a node. The directory name must be
 * exactly the host:port that image references use.
 */
export function registryHostsTomlPath(hostPort: string = REGISTRY_HOST_PORT): string {
  return `${CONTAINERD_CERTS_DIR}/${hostPort}/hosts.toml`
}

/** hosts.toml that sends pulls of `hostPort` images to it over plain HTTP. */
export function registryHostsToml(hostPort: string = REGISTRY_HOST_PORT): string {
  const url = `http://${hostPort}`
  return `server = "${url}"\n\n[host."${url}"]\n`
}

/** Where the KEP-1755 ConfigMap lives and what its data key is called. */
export const LOCAL_REGISTRY_HOSTING = {
  name: 'local-registry-hosting',
  namespace: 'kube-public',
  key: 'localRegistryHosting.v1',
} as const

/**
 * KEP-1755's `local-registry-hosting` ConfigMap, so tools that read it find
 * the registry. All three fields carry the one name: the runner reaches it
 * through /etc/hosts, the nodes' containerd through hosts.toml, pods through
 * Docker's DNS on the kind network.
 */
export function localRegistryHostingConfigMap(hostPort: string = REGISTRY_HOST_PORT): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: LOCAL_REGISTRY_HOSTING.name, namespace: LOCAL_REGISTRY_HOSTING.namespace },
    data: {
      [LOCAL_REGISTRY_HOSTING.key]: stringify({
        host: hostPort,
        hostFromContainerRuntime: hostPort,
        hostFromClusterNetwork: hostPort,
        help: 'https://kind.sigs.k8s.io/docs/user/local-registry/',
      }),
    },
  }
}
