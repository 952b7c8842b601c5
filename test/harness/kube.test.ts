import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { request as httpsRequest } from 'node:https'
import path from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { startKube, type TestKube } from './kube.js'

interface Answer {
  status: number
  body: Record<string, unknown>
}

const execFileAsync = promisify(execFile)

/**
 * A client built only from the kubeconfig file, the way kubectl would read it,
 * so these tests also prove the kubeconfig is complete and correct.
 */
function clientFromKubeconfig(text: string) {
  const config = parse(text) as {
    clusters: { cluster: { server: string; 'certificate-authority-data': string } }[]
    users: { user: { token: string } }[]
  }
  const { server, 'certificate-authority-data': caData } = config.clusters[0]!.cluster
  const ca = Buffer.from(caData, 'base64').toString()
  const { token } = config.users[0]!.user
  const call = (
    method: string,
    apiPath: string,
    body?: unknown,
    tls: { ca?: string; token?: string } = { ca, token },
  ): Promise<Answer> =>
    new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body)
      const req = httpsRequest(
        new URL(apiPath, server),
        {
          method,
          ca: tls.ca,
          agent: false,
          headers: {
            accept: 'application/json',
            ...(tls.token ? { authorization: `Bearer ${tls.token}` } : {}),
            ...(payload ? { 'content-type': 'application/json' } : {}),
          },
        },
        (res) => {
          let text = ''
          res.setEncoding('utf8')
          res.on('data', (chunk: string) => (text += chunk))
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              body: JSON.parse(text) as Record<string, unknown>,
            }),
          )
        },
      )
      req.on('error', reject)
      req.end(payload)
    })
  return { server, ca, token, call }
}

/** Command names (as ps shows them) of this process's children. */
async function ourChildren(): Promise<string[]> {
  try {
    const { stdout } = await execFileAsync('ps', ['-o', 'comm=', '--ppid', String(process.pid)])
    return stdout.split('\n').filter((name) => name && name !== 'ps')
  } catch (err) {
    // ps exits 1 when it lists nothing.
    if ((err as { code?: number }).code === 1) return []
    throw err
  }
}
/** Linux keeps the first 15 characters of a command name. */
const short = (name: string): string => name.slice(0, 15)

/** Polls `check` with short growing pauses until it returns a value; bounded. */
async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined>,
  ms = 30_000,
): Promise<T> {
  const deadline = Date.now() + ms
  for (let pause = 20; ; pause = Math.min(pause * 2, 500)) {
    const value = await check()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`)
    await delay(pause)
  }
}

describe('startKube: real etcd + kube-apiserver + kube-controller-manager', () => {
  let kube: TestKube
  let api: ReturnType<typeof clientFromKubeconfig>
  const ns = 'oml-kube-smoke'

  beforeAll(async () => {
    kube = await startKube({ controllerManager: true })
    api = clientFromKubeconfig(kube.kubeconfig)
  }, 150_000)
  afterAll(async () => {
    await kube?.stop()
  })

  it('serves Kubernetes v1.36 over TLS signed by its own CA, to the admin token only', async () => {
    expect(api.server).toBe(kube.server)
    expect(api.server).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/)
    const version = await api.call('GET', '/version')
    expect(version.status).toBe(200)
    expect(version.body.gitVersion).toMatch(/^v1\.36\.\d+$/)

    // Without our CA the certificate is untrusted; without the token the user is anonymous.
    await expect(api.call('GET', '/version', undefined, { token: api.token })).rejects.toThrow(
      /self.signed|unable to verify|certificate/i,
    )
    const anonymous = await api.call('GET', '/api/v1/namespaces', undefined, { ca: api.ca })
    expect([401, 403]).toContain(anonymous.status)
  })

  it('creates a Namespace', async () => {
    const created = await api.call('POST', '/api/v1/namespaces', {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: ns },
    })
    expect(created.status, JSON.stringify(created.body)).toBe(201)
    const got = await api.call('GET', `/api/v1/namespaces/${ns}`)
    expect(got.status).toBe(200)
    expect((got.body.status as { phase: string }).phase).toBe('Active')
  })

  it('establishes a CRD and then serves its custom resources', async () => {
    const group = 'smoke.oml-chains.test'
    const crd = await api.call('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', {
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: `widgets.${group}` },
      spec: {
        group,
        scope: 'Namespaced',
        names: { plural: 'widgets', singular: 'widget', kind: 'Widget' },
        versions: [
          {
            name: 'v1',
            served: true,
            storage: true,
            schema: {
              openAPIV3Schema: {
                type: 'object',
                properties: {
                  spec: { type: 'object', properties: { size: { type: 'integer' } } },
                },
              },
            },
          },
        ],
      },
    })
    expect(crd.status, JSON.stringify(crd.body)).toBe(201)

    await eventually('CRD condition Established=True', async () => {
      const got = await api.call(
        'GET',
        `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.${group}`,
      )
      const conditions = (got.body.status as { conditions?: { type: string; status: string }[] })
        .conditions
      return conditions?.some((c) => c.type === 'Established' && c.status === 'True')
        ? true
        : undefined
    })

    // The schema is enforced: a string where an integer belongs is refused.
    const url = `/apis/${group}/v1/namespaces/${ns}/widgets`
    const widget = (size: unknown): unknown => ({
      apiVersion: `${group}/v1`,
      kind: 'Widget',
      metadata: { name: `w-${typeof size}` },
      spec: { size },
    })
    const good = await eventually('the Widget endpoint', async () => {
      const res = await api.call('POST', url, widget(3))
      return res.status === 404 ? undefined : res
    })
    expect(good.status, JSON.stringify(good.body)).toBe(201)
    const bad = await api.call('POST', url, widget('three'))
    expect(bad.status).toBe(422)
  })

  it('answers a server-side dry-run create without storing the object', async () => {
    const configMap = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'dry', namespace: ns },
      data: { answer: '42' },
    }
    const dry = await api.call('POST', `/api/v1/namespaces/${ns}/configmaps?dryRun=All`, configMap)
    expect(dry.status, JSON.stringify(dry.body)).toBe(201)
    expect((dry.body.data as Record<string, string>).answer).toBe('42')
    // The server filled in what a real create would (uid, timestamp)...
    expect((dry.body.metadata as { uid?: string }).uid).toBeTruthy()
    // ...and kept nothing.
    const after = await api.call('GET', `/api/v1/namespaces/${ns}/configmaps/dry`)
    expect(after.status).toBe(404)
  })

  it('runs the controllers: a Deployment gets a ReplicaSet and its Pod', async () => {
    const labels = { app: 'smoke' }
    const created = await api.call('POST', `/apis/apps/v1/namespaces/${ns}/deployments`, {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'smoke' },
      spec: {
        replicas: 1,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: { containers: [{ name: 'c', image: 'registry.invalid/none:1' }] },
        },
      },
    })
    expect(created.status, JSON.stringify(created.body)).toBe(201)
    const pods = await eventually('a Pod of Deployment smoke', async () => {
      const res = await api.call('GET', `/api/v1/namespaces/${ns}/pods?labelSelector=app%3Dsmoke`)
      const items = res.body.items as { metadata: { ownerReferences?: { kind: string }[] } }[]
      return items.length > 0 ? items : undefined
    })
    expect(pods[0]!.metadata.ownerReferences?.[0]?.kind).toBe('ReplicaSet')
    // No nodes and no scheduler: the Pod exists but never runs.
    const deployment = await api.call('GET', `/apis/apps/v1/namespaces/${ns}/deployments/smoke`)
    expect((deployment.body.status as { availableReplicas?: number }).availableReplicas ?? 0).toBe(
      0,
    )
  })

  it('stop() ends every process and removes its files', async () => {
    const dir = path.dirname(kube.kubeconfigPath)
    expect(existsSync(dir)).toBe(true)
    expect(await ourChildren()).toEqual(
      expect.arrayContaining(['etcd', 'kube-apiserver', 'kube-controller-manager'].map(short)),
    )
    await kube.stop()
    expect(existsSync(dir)).toBe(false)
    expect(await ourChildren()).toEqual([])
    await expect(api.call('GET', '/version')).rejects.toThrow(/ECONNREFUSED/)
    await kube.stop() // a second call is harmless
  })
})

describe('startKube failures', () => {
  it('names the process and shows its last log lines when kube-apiserver will not start', async () => {
    const failure = startKube({ apiserverArgs: ['--no-such-flag'] })
    await expect(failure).rejects.toThrow(
      /kube-apiserver exited \(1\) before ready \(\/readyz\)\n--- last \d+ lines of kube-apiserver ---\n[\s\S]*unknown flag: --no-such-flag/,
    )
    // etcd, already up by then, was stopped too.
    expect(await ourChildren()).toEqual([])
  })

  it('gives up at its deadline, saying what it waited for', async () => {
    await expect(startKube({ timeoutMs: 1 })).rejects.toThrow(
      /etcd: answering \/health did not happen in time \(last: .+\)\n--- last \d+ lines of etcd ---/,
    )
    expect(await ourChildren()).toEqual([])
  })
})
