import type { V1Service } from '@kubernetes/client-node'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { applyManifests } from '../../../src/kube/apply.js'
import { apiMessage, connect, statusOf, type Kube } from '../../../src/kube/client.js'
import { parseManifests, type KubeObject } from '../../../src/kube/objects.js'
import { isTransient } from '../../../src/kube/retry.js'
import { waitFor } from '../../../src/kube/wait.js'
import { startKube, type TestKube } from '../kube.js'
import { repoRoot } from '../tools.js'
import { startWebhookStandIn, type WebhookStandIn } from './webhook.js'

// Against a real kube-apiserver: the API server itself calls the stand-in
// (or fails to), exactly as it calls Tekton's webhook on a cluster.

const soon = (ms = 30_000) => Date.now() + ms

const TEKTON_WEBHOOKS = [
  'validation.webhook.pipeline.tekton.dev',
  'webhook.pipeline.tekton.dev',
  'config.webhook.pipeline.tekton.dev',
]

const task: KubeObject = {
  apiVersion: 'tekton.dev/v1',
  kind: 'Task',
  metadata: { name: 'admission-probe', namespace: 'default' },
  spec: { steps: [{ name: 'noop', image: 'busybox', script: 'true' }] },
}

/** A server-side dry-run create: goes through admission, stores nothing. */
const dryRunCreate = (kube: Kube, object: KubeObject) =>
  kube.objects.create(object, undefined, 'All')

type WebhookConfiguration = KubeObject & {
  webhooks: {
    name: string
    clientConfig: { caBundle?: string; service?: Record<string, unknown>; url?: string }
  }[]
}

describe('webhook stand-in', () => {
  let cluster: TestKube
  let kube: Kube
  let pipelines: KubeObject[]
  let webhook: WebhookStandIn
  const others: WebhookStandIn[] = []

  beforeAll(async () => {
    cluster = await startKube()
    kube = connect(cluster.kubeconfig)
    const file = path.join(repoRoot, 'test/harness/manifests/tekton-pipelines-release.yaml')
    pipelines = parseManifests(await readFile(file, 'utf8'), file)
    await applyManifests(kube, pipelines, soon(60_000))
    webhook = await startWebhookStandIn(cluster.kubeconfig, { configurations: TEKTON_WEBHOOKS })
  }, 120_000)

  afterAll(async () => {
    for (const standIn of [webhook, ...others]) await standIn?.stop()
    await cluster?.stop()
  })

  it('before it is ready, the API server rejects a Task create with a 500 naming the webhook', async () => {
    const err: unknown = await dryRunCreate(kube, task).then(
      () => new Error('admitted'),
      (e: unknown) => e,
    )
    expect(statusOf(err)).toBe(500)
    expect(apiMessage(err)).toMatch(
      /failed calling webhook "(validation\.)?webhook\.pipeline\.tekton\.dev"/,
    )
    // What the action's apply and admission probe retry on.
    expect(isTransient(err)).toBe(true)
    expect(webhook.isReady()).toBe(false)
    expect(webhook.reviews()).toEqual([])
  })

  it('once ready, admits a dry-run Task create and counts it', async () => {
    await webhook.becomeReady()
    expect(webhook.isReady()).toBe(true)

    const created = await dryRunCreate(kube, task)
    expect(created.metadata?.name).toBe('admission-probe')
    // A dry run stores nothing.
    await expect(kube.objects.read(task)).rejects.toSatisfy((e) => statusOf(e) === 404)

    const expected = {
      operation: 'CREATE',
      resource: 'tekton.dev/v1/tasks',
      namespace: 'default',
      name: 'admission-probe',
      dryRun: true,
      allowed: true,
    }
    expect(webhook.reviews()).toEqual([
      { configuration: 'webhook.pipeline.tekton.dev', flavour: 'mutating', ...expected },
      {
        configuration: 'validation.webhook.pipeline.tekton.dev',
        flavour: 'validating',
        ...expected,
      },
    ])
    expect(webhook.admitted()).toBe(2)

    // As the real webhook leaves them: still a service reference, now with a caBundle.
    const validation = (await kube.objects.read({
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingWebhookConfiguration',
      metadata: { name: 'validation.webhook.pipeline.tekton.dev' },
    })) as WebhookConfiguration
    const { clientConfig } = validation.webhooks[0]!
    expect(clientConfig.service).toMatchObject({
      name: 'tekton-pipelines-webhook',
      namespace: 'tekton-pipelines',
    })
    expect(clientConfig.url).toBeUndefined()
    expect(Buffer.from(clientConfig.caBundle ?? '', 'base64').toString()).toMatch(
      /^-----BEGIN CERTIFICATE-----/,
    )
  })

  it('denies with the message it is told to, then admits again', async () => {
    const message = 'validation failed: missing field(s): spec.steps[0].image'
    webhook.deny(message)
    const err: unknown = await dryRunCreate(kube, task).then(
      () => new Error('admitted'),
      (e: unknown) => e,
    )
    expect(statusOf(err)).toBe(400)
    expect(apiMessage(err)).toBe(
      `HTTP 400: admission webhook "validation.webhook.pipeline.tekton.dev" denied the request: ${message}`,
    )
    expect(webhook.reviews().at(-1)).toMatchObject({ flavour: 'validating', allowed: false })

    webhook.deny(undefined)
    await dryRunCreate(kube, task)
    expect(webhook.reviews().at(-1)).toMatchObject({ flavour: 'validating', allowed: true })
  })

  it('keeps admitting after the release is applied again', async () => {
    const before = webhook.admitted()
    await applyManifests(kube, pipelines, soon())
    await dryRunCreate(kube, task)
    expect(webhook.admitted()).toBe(before + 2)
  })

  it('with readyAfterMs, becomes ready by itself and serves configurations applied later', async () => {
    const late = await startWebhookStandIn(cluster.kubeconfig, {
      configurations: ['late.webhook.test'],
      readyAfterMs: 0,
    })
    others.push(late)
    // Ready before its configuration exists, as a webhook pod may start before the rest is applied.
    await late.whenReady()
    expect(late.isReady()).toBe(true)

    await applyManifests(
      kube,
      [
        {
          apiVersion: 'v1',
          kind: 'Namespace',
          metadata: { name: 'late', labels: { webhook: 'late' } },
        },
        {
          apiVersion: 'v1',
          kind: 'Service',
          metadata: { name: 'late-webhook', namespace: 'late' },
          spec: { ports: [{ name: 'https', port: 443 }], selector: { app: 'late-webhook' } },
        },
        {
          apiVersion: 'admissionregistration.k8s.io/v1',
          kind: 'ValidatingWebhookConfiguration',
          metadata: { name: 'late.webhook.test' },
          webhooks: [
            {
              name: 'late.webhook.test',
              admissionReviewVersions: ['v1'],
              clientConfig: { service: { name: 'late-webhook', namespace: 'late' } },
              failurePolicy: 'Fail',
              sideEffects: 'None',
              namespaceSelector: { matchLabels: { webhook: 'late' } },
              rules: [
                {
                  apiGroups: [''],
                  apiVersions: ['v1'],
                  operations: ['CREATE'],
                  resources: ['configmaps'],
                },
              ],
            },
          ],
        },
      ],
      soon(),
    )
    // The stand-in's watches see them and point them at it.
    await waitFor<WebhookConfiguration>(
      kube,
      {
        apiVersion: 'admissionregistration.k8s.io/v1',
        kind: 'ValidatingWebhookConfiguration',
        name: 'late.webhook.test',
      },
      ([config]) => Boolean(config?.webhooks[0]?.clientConfig.caBundle),
      { deadline: soon(), what: 'late.webhook.test to get a caBundle' },
    )
    await waitFor<V1Service>(
      kube,
      { apiVersion: 'v1', kind: 'Service', namespace: 'late', name: 'late-webhook' },
      ([service]) => service?.spec?.type === 'ExternalName',
      { deadline: soon(), what: 'Service late/late-webhook to point at the stand-in' },
    )

    await dryRunCreate(kube, {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'probe', namespace: 'late' },
    })
    expect(late.reviews()).toEqual([
      {
        configuration: 'late.webhook.test',
        flavour: 'validating',
        operation: 'CREATE',
        resource: 'v1/configmaps',
        namespace: 'late',
        name: 'probe',
        dryRun: true,
        allowed: true,
      },
    ])
  })
})
