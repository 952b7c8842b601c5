import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startKube, type TestKube } from '../../test/harness/kube.js'
import {
  clusterObjects,
  expectNoSecrets,
  findSecrets,
  type Artefact,
} from '../../test/harness/secret-scan.js'
import { connect, type Kube } from '../kube/client.js'
import { linkRegistryCredentials, REGISTRY_SECRET } from './credentials.js'

let cluster: TestKube
let kube: Kube
let dir: string
let dockerConfigPath: string

const basic = (user: string, pass: string) => Buffer.from(`${user}:${pass}`).toString('base64')

beforeAll(async () => {
  ;[cluster, dir] = await Promise.all([
    startKube(),
    mkdtemp(path.join(os.tmpdir(), 'oml-credentials-')),
  ])
  kube = connect(cluster.kubeconfig)
  dockerConfigPath = path.join(dir, 'config.json')
  // What docker/login-action leaves behind: one registry the run uses, one it does not.
  await writeFile(
    dockerConfigPath,
    JSON.stringify({
      auths: {
        'quay.io': { auth: basic('quay-bot', 'quay-token') },
        'unrelated.example.com': { auth: basic('other', 'other-token') },
      },
    }),
  )
}, 120_000)

afterAll(async () => {
  await cluster?.stop()
  if (dir) await rm(dir, { recursive: true, force: true })
})

async function namespaceWithAccount(name: string, existingSecret?: string) {
  await kube.core.createNamespace({ body: { metadata: { name } } })
  await kube.core.createNamespacedServiceAccount({
    namespace: name,
    body: {
      metadata: { name: 'pipeline' },
      ...(existingSecret && {
        secrets: [{ name: existingSecret }],
        imagePullSecrets: [{ name: existingSecret }],
      }),
    },
  })
}

const soon = () => Date.now() + 30_000

describe('linkRegistryCredentials', () => {
  it('puts only the registries the run uses into a dockerconfigjson secret linked to the account', async () => {
    await namespaceWithAccount('run-a', 'users-own-secret')
    const result = await linkRegistryCredentials(
      kube,
      { namespace: 'run-a', serviceAccount: 'pipeline' },
      {
        explicit: { registry: 'ghcr.io', username: 'bot', password: 'ghcr-token' },
        dockerConfigPath,
      },
      ['ghcr.io', 'quay.io', 'registry.local:5000'],
      soon(),
    )
    expect(result).toEqual({ secret: REGISTRY_SECRET, registries: ['ghcr.io', 'quay.io'] })

    const secret = await kube.core.readNamespacedSecret({
      name: REGISTRY_SECRET,
      namespace: 'run-a',
    })
    expect(secret.type).toBe('kubernetes.io/dockerconfigjson')
    const config = JSON.parse(
      Buffer.from(secret.data?.['.dockerconfigjson'] ?? '', 'base64').toString(),
    ) as { auths: Record<string, { auth: string }> }
    expect(Object.keys(config.auths).sort()).toEqual(['ghcr.io', 'quay.io'])
    expect(config.auths['ghcr.io']?.auth).toBe(basic('bot', 'ghcr-token'))
    expect(config.auths['quay.io']?.auth).toBe(basic('quay-bot', 'quay-token'))

    const account = await kube.core.readNamespacedServiceAccount({
      name: 'pipeline',
      namespace: 'run-a',
    })
    expect(account.secrets?.map((s) => s.name)).toEqual(['users-own-secret', REGISTRY_SECRET])
    expect(account.imagePullSecrets?.map((s) => s.name)).toEqual([
      'users-own-secret',
      REGISTRY_SECRET,
    ])

    // In the cluster the passwords are in that Secret and nowhere else; the
    // one for a registry the run does not use is nowhere at all.
    const objects = await clusterObjects(cluster)
    const meant = (o: Artefact) => o.name === `Secret run-a/${REGISTRY_SECRET}`
    for (const password of ['ghcr-token', 'quay-token']) {
      expect(findSecrets([password], objects.filter(meant))).not.toEqual([])
    }
    const elsewhere = objects.filter((o) => !o.name.endsWith(`/${REGISTRY_SECRET}`))
    expectNoSecrets(
      'the cluster, but for the registry Secrets',
      ['ghcr-token', 'quay-token'],
      elsewhere,
    )
    expectNoSecrets('the cluster', ['other-token'], objects)
  })

  it('is idempotent: a second run links the secret once', async () => {
    const args = [
      kube,
      { namespace: 'run-a', serviceAccount: 'pipeline' },
      { dockerConfigPath },
      ['quay.io'],
      soon(),
    ] as const
    await linkRegistryCredentials(...args)
    await linkRegistryCredentials(...args)
    const account = await kube.core.readNamespacedServiceAccount({
      name: 'pipeline',
      namespace: 'run-a',
    })
    expect(account.secrets?.filter((s) => s.name === REGISTRY_SECRET)).toHaveLength(1)
    const secret = await kube.core.readNamespacedSecret({
      name: REGISTRY_SECRET,
      namespace: 'run-a',
    })
    const config = JSON.parse(
      Buffer.from(secret.data?.['.dockerconfigjson'] ?? '', 'base64').toString(),
    )
    expect(Object.keys(config.auths)).toEqual(['quay.io'])
  })

  it('creates nothing when no registry the run uses has credentials', async () => {
    await namespaceWithAccount('run-b')
    const result = await linkRegistryCredentials(
      kube,
      { namespace: 'run-b', serviceAccount: 'pipeline' },
      { dockerConfigPath },
      ['registry.local:5000'],
      soon(),
    )
    expect(result).toEqual({ registries: [] })
    const secrets = await kube.core.listNamespacedSecret({ namespace: 'run-b' })
    expect(secrets.items.map((s) => s.metadata?.name)).not.toContain(REGISTRY_SECRET)
  })

  it('names the service account when it does not exist', async () => {
    await expect(
      linkRegistryCredentials(
        kube,
        { namespace: 'run-b', serviceAccount: 'missing' },
        { dockerConfigPath },
        ['quay.io'],
        soon(),
      ),
    ).rejects.toThrow(/^service account run-b\/missing cannot be read: HTTP 404/)
  })
})
