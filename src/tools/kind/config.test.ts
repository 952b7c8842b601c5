import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { EMBEDDED_REGISTRY } from '../../plan.js'
import * as versions from '../../versions.js'
import {
  CONTAINERD_CERTS_DIR,
  KIND_NETWORK,
  kindClusterConfig,
  localRegistryHostingConfigMap,
  REGISTRY_CONTAINER,
  REGISTRY_HOST,
  REGISTRY_HOST_ADDRESS,
  REGISTRY_HOST_PORT,
  REGISTRY_PORT,
  registryHostsToml,
  registryHostsTomlPath,
} from './config.js'

const nodeImage = versions.kindNodeImages[versions.kubernetesVersion]!

// DESIGN 3, "Registry reachable from pods, Chains and the runner alike".
describe('registry names', () => {
  it('is registry.local:5000 everywhere, the name the Plan uses', () => {
    expect(REGISTRY_HOST_PORT).toBe('registry.local:5000')
    expect(REGISTRY_HOST_PORT).toBe(EMBEDDED_REGISTRY)
    expect(REGISTRY_HOST).toBe('registry.local')
    expect(REGISTRY_PORT).toBe(5000)
  })

  it('publishes on IPv4 loopback, and joins the kind network', () => {
    expect(REGISTRY_HOST_ADDRESS).toBe('127.0.0.1')
    expect(KIND_NETWORK).toBe('kind')
    expect(REGISTRY_CONTAINER).toBe('oml-chains-registry')
  })
})

describe('kindClusterConfig', () => {
  const text = kindClusterConfig({ name: 'oml-chains', nodeImage })
  const config = parse(text) as Record<string, unknown>

  it('is a v1alpha4 Cluster with one control-plane node of the pinned image', () => {
    expect(config).toMatchObject({
      kind: 'Cluster',
      apiVersion: 'kind.x-k8s.io/v1alpha4',
      name: 'oml-chains',
      nodes: [{ role: 'control-plane', image: nodeImage }],
    })
    expect(nodeImage).toMatch(/^kindest\/node:v1\.36\.1@sha256:[0-9a-f]{64}$/)
    expect(Object.keys(config).sort()).toEqual(
      ['apiVersion', 'containerdConfigPatches', 'kind', 'name', 'nodes'].sort(),
    )
  })

  it("points containerd's CRI registry config at /etc/containerd/certs.d (version-2 key)", () => {
    expect(config.containerdConfigPatches).toEqual([
      '[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/etc/containerd/certs.d"',
    ])
    expect(CONTAINERD_CERTS_DIR).toBe('/etc/containerd/certs.d')
  })

  it('refuses a node image that is not pinned by digest', () => {
    expect(() => kindClusterConfig({ name: 'x', nodeImage: 'kindest/node:v1.36.1' })).toThrow(
      /not pinned by digest/,
    )
  })
})

describe('hosts.toml', () => {
  it('lives in the directory named exactly after registry.local:5000', () => {
    expect(registryHostsTomlPath()).toBe('/etc/containerd/certs.d/registry.local:5000/hosts.toml')
  })

  it('sends pulls of registry.local:5000 to it over plain HTTP', () => {
    expect(registryHostsToml()).toBe(
      'server = "http://registry.local:5000"\n\n[host."http://registry.local:5000"]\n',
    )
  })
})

describe('localRegistryHostingConfigMap', () => {
  it('is KEP-1755 local-registry-hosting in kube-public, one name for every client', () => {
    const cm = localRegistryHostingConfigMap()
    expect(cm).toMatchObject({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'local-registry-hosting', namespace: 'kube-public' },
    })
    const data = cm.data as Record<string, string>
    expect(Object.keys(data)).toEqual(['localRegistryHosting.v1'])
    expect(parse(data['localRegistryHosting.v1']!)).toEqual({
      host: 'registry.local:5000',
      hostFromContainerRuntime: 'registry.local:5000',
      hostFromClusterNetwork: 'registry.local:5000',
      help: 'https://kind.sigs.k8s.io/docs/user/local-registry/',
    })
  })
})
