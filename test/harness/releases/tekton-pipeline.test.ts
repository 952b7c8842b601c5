import { execFile } from 'node:child_process'
import { readdir, readFile } from 'node:fs/promises'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseManifests, type KubeObject } from '../../../src/kube/objects.js'
import { RegistryClient } from '../../../src/oci/client.js'
import { parseReference, withTag } from '../../../src/oci/reference.js'
import { fetchTektonRelease } from '../../../src/tools/tekton/release.js'
import { docker, dockerChecked } from '../docker.js'
import { startRegistry, type TestRegistry } from '../registry.js'
import { startReleaseHost } from '../release-host.js'
import { useRunnerDirs } from '../runner-dirs.js'
import { repoRoot, toolPath } from '../tools.js'
import { startInternetStandIn } from '../internet.js'
import { RELEASES_PATH, serveTektonRelease } from './serve.js'
import {
  RELEASE_REGISTRY,
  TEKTON_PIPELINE_DIR,
  publishTektonPipelineRelease,
  pushTektonPipelineRelease,
  readTektonPipelineRelease,
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

/** Runs a command with exactly `env`; its stdout, or an error with its stderr. */
function run(command: string, args: string[], env: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { env, timeout: 60_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${command} failed: ${stderr}`, { cause: err })) : resolve(stdout),
    )
  })
}

const CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt'

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
    const pinned = /^registry\.local:5000\/[a-z0-9._/-]+(:[\w.-]+)?@sha256:[0-9a-f]{64}$/
    expect(release.images.length).toBeGreaterThan(0)
    for (const image of release.images) expect(image).toMatch(pinned)

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

    // Nothing an object says (CRD schemas aside: their descriptions cite
    // examples) names another registry; comments may, as Tekton's do.
    const strings = (value: unknown): string[] =>
      typeof value === 'string'
        ? [value]
        : Array.isArray(value)
          ? value.flatMap(strings)
          : value !== null && typeof value === 'object'
            ? Object.values(value).flatMap(strings)
            : []
    const said = release.objects
      .filter((o) => o.kind !== 'CustomResourceDefinition')
      .flatMap(strings)
    const externals = [
      'ghcr.io',
      'gcr.io',
      'cgr.dev',
      'mcr.microsoft.com',
      'docker.io',
      'registry.k8s.io',
      'quay.io',
      'ko://',
    ]
    expect(said.filter((text) => externals.some((host) => text.includes(host)))).toEqual([])
  })

  it('pushes exactly the images it names into a fresh registry, and a second push uploads nothing', async () => {
    const { pushed, images } = await pushTektonPipelineRelease(registry.host)
    expect(
      pushed.map((p) => `${RELEASE_REGISTRY}/${p.pushed.slice(registry.host.length + 1)}`).sort(),
    ).toEqual(images.map((image) => image.replace(/:[\w.-]+@/, '@')).sort())

    // What the registry serves under each name is the digest the manifest pins:
    // resolved by tag where the manifest has one, hashed from the bytes.
    const client = new RegistryClient({ insecure: () => true })
    for (const image of images) {
      const ref = parseReference(image)
      const where = { registry: registry.host, repository: ref.repository }
      const resolved = await client.resolve(
        ref.tag ? withTag(where, ref.tag) : { ...where, digest: ref.digest },
      )
      expect(resolved.digest).toBe(ref.digest)
    }

    // The layout holds these images and no others.
    const index = JSON.parse(
      await readFile(path.join(TEKTON_PIPELINE_DIR, 'layout', 'index.json'), 'utf8'),
    ) as {
      manifests: { digest: string }[]
    }
    expect(index.manifests.map((m) => m.digest).sort()).toEqual(
      images.map((image) => image.slice(image.indexOf('@') + 1)).sort(),
    )

    const uploadsBefore = registry.log().match(/POST \/v2\/[^ ]*\/blobs\/uploads/g)?.length ?? 0
    expect(uploadsBefore).toBeGreaterThan(0)
    await pushTektonPipelineRelease(registry.host)
    const uploadsAfter = registry.log().match(/POST \/v2\/[^ ]*\/blobs\/uploads/g)?.length ?? 0
    expect(uploadsAfter).toBe(uploadsBefore)
  })

  it('passes the action’s release checks, served with the digest GitHub reports', async () => {
    const host = await startReleaseHost()
    const dirs = await useRunnerDirs()
    try {
      const served = serveTektonRelease(
        { manifests: host, api: host },
        { component: 'pipeline', version: release.version, manifest: release.manifest },
      )
      const fetched = await fetchTektonRelease('pipeline', release.version, {
        manifestBase: host.url + RELEASES_PATH,
        githubApi: host.url,
      })
      expect(fetched).toMatchObject({
        url: served.url,
        sha256: release.sha256,
        verifiedBy: "the digest of GitHub's release asset",
      })
      expect(fetched.objects).toHaveLength(release.objects.length)
    } finally {
      await dirs.restore()
      await host.close()
    }
  })

  it('is served to a process on the internet stand-in at Tekton’s URL, with its digest at GitHub’s API', async () => {
    const internet = await startInternetStandIn()
    try {
      const { served } = await publishTektonPipelineRelease(internet, registry.host)
      expect(served.url).toBe(
        `https://infra.tekton.dev/tekton-releases/pipeline/previous/${release.version}/release.yaml`,
      )
      // What the action's fetches see, through the proxy, in a process of its own.
      const script = `
        const { createHash } = await import('node:crypto')
        const manifest = await (await fetch(${JSON.stringify(served.url)})).text()
        const api = await (await fetch('https://api.github.com/repos/tektoncd/pipeline/releases/tags/${release.version}')).json()
        console.log(JSON.stringify({ sha256: createHash('sha256').update(manifest).digest('hex'), api }))`
      const child = await run(toolPath('node'), ['--input-type=module', '-e', script], {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        ...internet.env,
      })
      expect(JSON.parse(child)).toEqual({
        sha256: release.sha256,
        api: {
          tag_name: release.version,
          assets: [{ name: 'release.yaml', digest: `sha256:${release.sha256}` }],
        },
      })
      expect(internet.refused()).toEqual([])
    } finally {
      await internet.stop()
    }
  })

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

    // The CA bundle is Debian's: none of the CAs this machine adds (such as
    // a TLS-inspecting proxy's) is in the shell's or the controller's.
    const pem = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g
    const localDir = '/usr/local/share/ca-certificates'
    const localCerts = (
      await Promise.all(
        (await readdir(localDir).catch(() => []))
          .filter((file) => file.endsWith('.crt'))
          .map((file) => readFile(path.join(localDir, file), 'utf8')),
      )
    ).flatMap((text) => text.match(pem) ?? [])
    const shellBundle = await dockerChecked(['run', '--rm', shell, 'cat', CA_BUNDLE])
    const created = (await dockerChecked(['create', image('tekton-pipelines-controller')])).trim()
    // `docker cp` to stdout writes a tar stream: the file's bytes as they are.
    const controllerBundle = await dockerChecked(['cp', `${created}:${CA_BUNDLE}`, '-']).finally(
      () => dockerChecked(['rm', created]),
    )
    for (const bundle of [shellBundle, controllerBundle]) {
      expect(bundle.match(pem)?.length).toBeGreaterThan(100)
      for (const cert of localCerts) expect(bundle).not.toContain(cert)
    }
  })
})
