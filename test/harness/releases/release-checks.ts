/**
 * Checks every release made here must pass, whichever project it is
 * (tekton-pipeline.test.ts, tekton-chains.test.ts), without a node: what it
 * names, that the images it names are the ones pushed, that the action's
 * release checks take it, and that its images carry Debian's CA bundle.
 */
import { execFile } from 'node:child_process'
import { readdir, readFile } from 'node:fs/promises'
import path from 'node:path'
import { expect, it } from 'vitest'
import { RegistryClient } from '../../../src/oci/client.js'
import { parseReference, withTag } from '../../../src/oci/reference.js'
import { fetchTektonRelease } from '../../../src/tools/tekton/release.js'
import { dockerChecked } from '../docker.js'
import { startInternetStandIn } from '../internet.js'
import type { TestRegistry } from '../registry.js'
import { startReleaseHost } from '../release-host.js'
import { useRunnerDirs } from '../runner-dirs.js'
import { toolPath } from '../tools.js'
import { RELEASE_REGISTRY, type BuiltRelease, type BuiltReleaseAccess } from './built-release.js'
import { RELEASES_PATH, serveTektonRelease } from './serve.js'

/**
 * Every image the release names is in registry.local:5000 by digest, and
 * nothing an object says names another registry (CRD schemas aside: their
 * descriptions cite examples; comments may, as Tekton's do).
 */
export function expectOnlyLocalImages(release: BuiltRelease): void {
  const pinned = /^registry\.local:5000\/[a-z0-9._/-]+(:[\w.-]+)?@sha256:[0-9a-f]{64}$/
  expect(release.images.length).toBeGreaterThan(0)
  for (const image of release.images) expect(image).toMatch(pinned)

  const strings = (value: unknown): string[] =>
    typeof value === 'string'
      ? [value]
      : Array.isArray(value)
        ? value.flatMap(strings)
        : value !== null && typeof value === 'object'
          ? Object.values(value).flatMap(strings)
          : []
  const said = release.objects.filter((o) => o.kind !== 'CustomResourceDefinition').flatMap(strings)
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
}

const uploads = (registry: TestRegistry) =>
  registry.log().match(/POST \/v2\/[^ ]*\/blobs\/uploads/g)?.length ?? 0

/** Pushes exactly the images it names into a fresh registry; a second push uploads nothing. */
async function expectPushesWhatItNames(
  access: BuiltReleaseAccess,
  registry: TestRegistry,
): Promise<void> {
  const { pushed, images } = await access.push(registry.host)
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
    await readFile(path.join(access.dir, 'layout', 'index.json'), 'utf8'),
  ) as { manifests: { digest: string }[] }
  expect(index.manifests.map((m) => m.digest).sort()).toEqual(
    images.map((image) => image.slice(image.indexOf('@') + 1)).sort(),
  )

  const before = uploads(registry)
  expect(before).toBeGreaterThan(0)
  await access.push(registry.host)
  expect(uploads(registry)).toBe(before)
}

/** The action's release checks take it, served with the digest GitHub reports. */
async function expectActionFetches(release: BuiltRelease): Promise<void> {
  const host = await startReleaseHost()
  const dirs = await useRunnerDirs()
  try {
    const served = serveTektonRelease(
      { manifests: host, api: host },
      { component: release.component, version: release.version, manifest: release.manifest },
    )
    const fetched = await fetchTektonRelease(release.component, release.version, {
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
}

/** Runs a command with exactly `env`; its stdout, or an error with its stderr. */
function run(command: string, args: string[], env: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { env, timeout: 60_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${command} failed: ${stderr}`, { cause: err })) : resolve(stdout),
    )
  })
}

/**
 * Published on the internet stand-in: a process of its own given its
 * environment fetches the manifest at Tekton's URL, and its digest at
 * GitHub's API, through the stand-in's proxy.
 */
async function expectServedOnInternet(
  access: BuiltReleaseAccess,
  registry: TestRegistry,
): Promise<void> {
  const internet = await startInternetStandIn()
  try {
    const release = await access.publish(internet, registry.host)
    const { component, version, sha256 } = release
    expect(release.served.url).toBe(
      `https://infra.tekton.dev/tekton-releases/${component}/previous/${version}/release.yaml`,
    )
    const api = `https://api.github.com/repos/tektoncd/${component}/releases/tags/${version}`
    const script = `
      const { createHash } = await import('node:crypto')
      const manifest = await (await fetch(${JSON.stringify(release.served.url)})).text()
      const api = await (await fetch(${JSON.stringify(api)})).json()
      console.log(JSON.stringify({ sha256: createHash('sha256').update(manifest).digest('hex'), api }))`
    const child = await run(toolPath('node'), ['--input-type=module', '-e', script], {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      ...internet.env,
    })
    expect(JSON.parse(child)).toEqual({
      sha256,
      api: { tag_name: version, assets: [{ name: 'release.yaml', digest: `sha256:${sha256}` }] },
    })
    expect(internet.refused()).toEqual([])
  } finally {
    await internet.stop()
  }
}

export const CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt'

/** A file of an image, read without running it (`docker cp` of a created container). */
export async function fileOfImage(image: string, file: string): Promise<string> {
  const created = (await dockerChecked(['create', image])).trim()
  // `docker cp` to stdout writes a tar stream: the file's bytes as they are.
  return dockerChecked(['cp', `${created}:${file}`, '-']).finally(() =>
    dockerChecked(['rm', created]),
  )
}

/**
 * The CA bundle is Debian's: none of the CAs this machine adds (such as a
 * TLS-inspecting proxy's) is in it.
 */
export async function expectDebianCaBundle(bundle: string): Promise<void> {
  const pem = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g
  const localDir = '/usr/local/share/ca-certificates'
  const localCerts = (
    await Promise.all(
      (await readdir(localDir).catch(() => []))
        .filter((file) => file.endsWith('.crt'))
        .map((file) => readFile(path.join(localDir, file), 'utf8')),
    )
  ).flatMap((text) => text.match(pem) ?? [])
  expect(bundle.match(pem)?.length).toBeGreaterThan(100)
  for (const cert of localCerts) expect(bundle).not.toContain(cert)
}

/**
 * The tests every release made here passes the same way: its images pushed
 * by digest, the action's release checks, its publication on the internet
 * stand-in. `registry` is the test file's own.
 */
export function itIsPushedAndServed(
  access: BuiltReleaseAccess,
  registry: () => TestRegistry,
): void {
  it('pushes exactly the images it names into a fresh registry, and a second push uploads nothing', async () =>
    expectPushesWhatItNames(access, registry()))

  it('passes the action’s release checks, served with the digest GitHub reports', async () =>
    expectActionFetches(await access.read()))

  it('is served to a process on the internet stand-in at Tekton’s URL, with its digest at GitHub’s API', () =>
    expectServedOnInternet(access, registry()))
}
