import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseManifests, type KubeObject } from '../../../src/kube/objects.js'
import { docker, dockerChecked } from '../docker.js'
import { startRegistry, type TestRegistry } from '../registry.js'
import { repoRoot } from '../tools.js'
import {
  CA_BUNDLE,
  expectDebianCaBundle,
  expectOnlyLocalImages,
  fileOfImage,
  itIsPushedAndServed,
} from './release-checks.js'
import {
  RELEASE_REGISTRY,
  pushTektonPipelineRelease,
  readTektonPipelineRelease,
  tektonPipeline,
  type TektonPipelineRelease,
} from './tekton-pipeline.js'

// The release test-tools.sh made from Tekton's module, checked without a
// node: what it names, that the images it names are the ones pushed, that
// the action's release checks take it, and that its images run.

interface Container {
  name: string
  image: string
  command?: string[]
  args?: string[]
}
type Deployment = KubeObject & {
  spec: { template: { spec: { containers: Container[]; initContainers?: Container[] } } }
}

const deploymentsOf = (release: TektonPipelineRelease) =>
  release.objects.filter((o): o is Deployment => o.kind === 'Deployment')
const containersOf = (d: Deployment) => [
  ...d.spec.template.spec.containers,
  ...(d.spec.template.spec.initContainers ?? []),
]
/** The value after `flag` in a container's args. */
const argValue = (container: Container, flag: string) => {
  const args = container.args ?? []
  const at = args.indexOf(flag)
  return at >= 0 ? args[at + 1] : undefined
}

let release: TektonPipelineRelease
let registry: TestRegistry

beforeAll(async () => {
  release = await readTektonPipelineRelease()
  registry = await startRegistry()
})
afterAll(() => registry?.stop())

describe('the Tekton Pipelines release made from its module', () => {
  it('is the pinned version, with the namespaces and Deployments of Tekton’s release', async () => {
    const info = release.objects.find(
      (o) => o.kind === 'ConfigMap' && o.metadata.name === 'pipelines-info',
    )
    expect(info).toMatchObject({
      metadata: { namespace: 'tekton-pipelines' },
      data: { version: 'v1.15.0' },
    })
    expect(release.version).toBe('v1.15.0')
    expect(release.manifest).not.toMatch(/"devel"/)

    const tektonsDeployments = [
      { namespace: 'tekton-pipelines', name: 'tekton-pipelines-controller' },
      { namespace: 'tekton-pipelines', name: 'tekton-pipelines-webhook' },
      { namespace: 'tekton-pipelines', name: 'tekton-events-controller' },
      { namespace: 'tekton-pipelines-resolvers', name: 'tekton-pipelines-remote-resolvers' },
    ]
    const byName = (a: { name: string }, b: { name: string }) => a.name.localeCompare(b.name)
    expect([...release.deployments].sort(byName)).toEqual([...tektonsDeployments].sort(byName))
    expect(release.namespaces.sort()).toEqual(['tekton-pipelines', 'tekton-pipelines-resolvers'])

    // The release-shaped stand-in the other tests install names the same ones.
    const standInFile = path.join(repoRoot, 'test/harness/manifests/tekton-pipelines-release.yaml')
    const standIn = parseManifests(await readFile(standInFile, 'utf8'), standInFile)
    expect(
      standIn
        .filter((o) => o.kind === 'Deployment')
        .map((o) => ({ namespace: o.metadata.namespace, name: o.metadata.name }))
        .sort(byName),
    ).toEqual([...release.deployments].sort(byName))
  })

  it('names every image in registry.local:5000 by digest, and nothing outside it', () => {
    expectOnlyLocalImages(release)

    // Every container's image, and every image the controller hands to the pods it makes.
    const controller = deploymentsOf(release)
      .flatMap(containersOf)
      .find((c) => c.name === 'tekton-pipelines-controller')!
    const podImages = [
      '-entrypoint-image',
      '-nop-image',
      '-sidecarlogresults-image',
      '-workingdirinit-image',
      '-shell-image',
      '-shell-image-win',
    ].map((flag) => argValue(controller, flag))
    const used = [
      ...deploymentsOf(release)
        .flatMap(containersOf)
        .map((c) => c.image),
      ...podImages,
    ]
    for (const image of used) expect(release.images).toContain(image)
    // ko built one image per binary; the busybox shell image is the one more.
    expect(release.images).toHaveLength(new Set(used).size)
  })

  itIsPushedAndServed(tektonPipeline, () => registry)

  it('has images that run: the controller, the resolvers’ git and tini, the shell', async () => {
    await pushTektonPipelineRelease(registry.host)
    // Docker pulls from a loopback registry over plain HTTP.
    const local = (image: string) =>
      image.replace(`${RELEASE_REGISTRY}/`, `${registry.host}/`).replace(/:[\w.-]+@/, '@')
    /** The (one) container of a Deployment of the release. */
    const containerOf = (deployment: string) =>
      deploymentsOf(release).find((d) => d.metadata.name === deployment)!.spec.template.spec
        .containers[0]!
    const image = (deployment: string) => local(containerOf(deployment).image)
    const controller = containerOf('tekton-pipelines-controller')

    // Go's flag package prints the usage on stderr and exits 0.
    const help = await docker(['run', '--rm', image('tekton-pipelines-controller'), '-help'])
    expect(help).toMatchObject({ code: 0, stderr: expect.stringMatching(/-entrypoint-image/) })
    expect(
      (
        await dockerChecked([
          'image',
          'inspect',
          '--format',
          '{{.Config.User}}',
          image('tekton-pipelines-controller'),
        ])
      ).trim(),
    ).toBe('65532')

    const resolvers = image('tekton-pipelines-remote-resolvers')
    expect(
      await dockerChecked([
        'run',
        '--rm',
        '--entrypoint',
        '/sbin/tini',
        resolvers,
        '--',
        'git',
        '--version',
      ]),
    ).toMatch(/^git version \d/)

    const shell = local(argValue(controller, '-shell-image')!)
    expect(
      await dockerChecked(['run', '--rm', shell, 'sh', '-c', 'id -u; ls /etc/ssl/certs']),
    ).toBe('0\nca-certificates.crt\n')

    // The CA bundle is Debian's, in the shell and in the images ko built.
    await expectDebianCaBundle(await dockerChecked(['run', '--rm', shell, 'cat', CA_BUNDLE]))
    await expectDebianCaBundle(await fileOfImage(image('tekton-pipelines-controller'), CA_BUNDLE))
  })
})
