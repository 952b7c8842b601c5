import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseManifests, type KubeObject } from '../../../src/kube/objects.js'
import { docker, dockerChecked } from '../docker.js'
import { startRegistry, type TestRegistry } from '../registry.js'
import { repoRoot } from '../tools.js'
import { RELEASE_REGISTRY, type BuiltRelease } from './built-release.js'
import {
  CA_BUNDLE,
  expectDebianCaBundle,
  expectOnlyLocalImages,
  fileOfImage,
  itIsPushedAndServed,
} from './release-checks.js'
import { tektonChains, tektonChainsDependencies } from './tekton-chains.js'

// The Chains release test-tools.sh made from Chains' module, checked without
// a node: what it names, that the image it names is the one pushed, that the
// action's release checks take it, and that its controller runs.

type Deployment = KubeObject & {
  spec: { template: { spec: { containers: { name: string; image: string }[] } } }
}
const id = (o: KubeObject) => `${o.kind} ${o.metadata.namespace ?? ''}/${o.metadata.name}`

let release: BuiltRelease
let registry: TestRegistry

beforeAll(async () => {
  release = await tektonChains.read()
  registry = await startRegistry()
})
afterAll(() => registry?.stop())

describe('the Tekton Chains release made from its module', () => {
  it('is v0.26.3, the newest the Go module proxy serves, in the namespace and Deployment of Chains’ release', () => {
    expect(release.version).toBe('v0.26.3')
    expect(release.manifest).not.toMatch(/"devel"/)
    expect(release.namespaces).toEqual(['tekton-chains'])
    expect(release.deployments).toEqual([
      { namespace: 'tekton-chains', name: 'tekton-chains-controller' },
    ])
  })

  it('ships chains-config and signing-secrets empty, for the action to fill, and has every object of the release-shaped stand-in', async () => {
    const find = (kind: string, name: string) =>
      release.objects.find(
        (o) =>
          o.kind === kind && o.metadata.namespace === 'tekton-chains' && o.metadata.name === name,
      )
    expect(find('ConfigMap', 'chains-config')).toBeDefined()
    expect(find('ConfigMap', 'chains-config')?.data).toBeUndefined()
    expect(find('Secret', 'signing-secrets')).toBeDefined()
    expect(find('Secret', 'signing-secrets')?.data).toBeUndefined()

    // The stand-in the other tests install is cut down from a release: what
    // it has, this one has too.
    const standInFile = path.join(repoRoot, 'test/harness/manifests/tekton-chains-release.yaml')
    const standIn = parseManifests(await readFile(standInFile, 'utf8'), standInFile)
    const ids = new Set(release.objects.map(id))
    expect(standIn.map(id).filter((o) => !ids.has(o))).toEqual([])
  })

  it('names its one image, the controller, in registry.local:5000 by digest, and nothing outside it', () => {
    expectOnlyLocalImages(release)
    const containers = release.objects
      .filter((o): o is Deployment => o.kind === 'Deployment')
      .flatMap((d) => d.spec.template.spec.containers)
    expect(containers.map((c) => c.name)).toEqual(['tekton-chains-controller'])
    expect(release.images).toEqual([containers[0]!.image])
    // ko's name for cmd/controller, under the repository Chains' release uses.
    expect(containers[0]!.image).toMatch(
      /^registry\.local:5000\/tektoncd\/chains\/controller-[0-9a-f]{32}:v0\.26\.3@sha256:/,
    )
  })

  it('is built with a go-containerregistry that reaches registry.local:5000 over plain HTTP', async () => {
    // Before v0.21.6, go-containerregistry takes any `*.local` host for
    // plain HTTP; this Chains reads the image it signs without its
    // `storage.oci.repository.insecure` setting, so that is how it reaches
    // the embedded registry (DESIGN 3).
    expect(await tektonChainsDependencies()).toEqual({
      'github.com/google/go-containerregistry': 'v0.20.7',
      'github.com/sigstore/cosign/v2': 'v2.6.2',
    })
  })

  itIsPushedAndServed(tektonChains, () => registry)

  it('has a controller that runs: its flags, as the nonroot user, with Debian’s CA bundle', async () => {
    await tektonChains.push(registry.host)
    // Docker pulls from a loopback registry over plain HTTP.
    const controller = release.images[0]!.replace(
      `${RELEASE_REGISTRY}/`,
      `${registry.host}/`,
    ).replace(/:[\w.-]+@/, '@')

    // Go's flag package prints the usage on stderr and exits 0: Chains' own
    // flags, and knative's, which it parses before it needs a cluster.
    const help = await docker(['run', '--rm', controller, '-help'])
    expect(help).toMatchObject({ code: 0 })
    for (const flag of ['-threads-per-controller', '-namespace', '-kubeconfig']) {
      expect(help.stderr).toContain(`  ${flag} `)
    }
    expect(
      (
        await dockerChecked(['image', 'inspect', '--format', '{{.Config.User}}', controller])
      ).trim(),
    ).toBe('65532')
    await expectDebianCaBundle(await fileOfImage(controller, CA_BUNDLE))
  })
})
