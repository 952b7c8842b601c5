import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connect, type Kube } from '../../../src/kube/client.js'
import { followContainerLog } from '../../../src/kube/logs.js'
import { makeTestCA, type TestCA } from '../certs.js'
import { startKube, type TestKube } from '../kube.js'
import { startKubeletStandIn, type KubeletStandIn } from './kubelet.js'

// The real API server proxies pod logs to the stand-in kubelet, and verifies
// its certificate against the CA given with --kubelet-certificate-authority.
let cluster: TestKube
let kubelet: KubeletStandIn
let kube: Kube
let ca: TestCA
let dir: string

beforeAll(async () => {
  ca = await makeTestCA()
  dir = await mkdtemp(path.join(tmpdir(), 'kubelet-test-'))
  await writeFile(path.join(dir, 'kubelet-ca.crt'), ca.caPem)
  cluster = await startKube({
    apiserverArgs: [
      `--kubelet-certificate-authority=${path.join(dir, 'kubelet-ca.crt')}`,
      '--kubelet-preferred-address-types=InternalIP',
    ],
  })
  kubelet = await startKubeletStandIn(cluster.kubeconfig, { ca })
  kube = connect(cluster.kubeconfig)
  await kube.core.createNamespacedPod({
    namespace: 'default',
    body: {
      metadata: { name: 'logger' },
      spec: {
        nodeName: kubelet.nodeName,
        containers: [{ name: 'step-one', image: 'example.invalid/none' }],
      },
    },
  })
}, 120_000)

afterAll(async () => {
  await kubelet?.stop()
  await cluster?.stop()
  await ca?.dispose()
  if (dir) await rm(dir, { recursive: true, force: true })
})

describe('kubelet stand-in', () => {
  it('registers a Ready node reachable at 127.0.0.1', async () => {
    const node = await kube.core.readNode({ name: kubelet.nodeName })
    expect(node.status?.addresses).toEqual([{ type: 'InternalIP', address: '127.0.0.1' }])
    expect(node.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True')
  })

  it('serves a container log through the API server, following it, across a disconnect', async () => {
    kubelet.write('default', 'logger', 'step-one', 'first line\nsecond ')
    const seen: string[] = []
    let finished = false
    const stop = new AbortController()
    let resolveFirst!: () => void
    const firstSeen = new Promise<void>((resolve) => (resolveFirst = resolve))
    let resolveAfter!: () => void
    const afterDisconnect = new Promise<void>((resolve) => (resolveAfter = resolve))
    const following = followContainerLog(kube, {
      namespace: 'default',
      pod: 'logger',
      container: 'step-one',
      onLine(line) {
        seen.push(line)
        if (line === 'first line') resolveFirst()
        if (line === 'after the cut') resolveAfter()
      },
      isFinished: async () => finished,
      stop: stop.signal,
    })
    await firstSeen
    expect(kubelet.disconnect()).toBe(1)
    kubelet.write('default', 'logger', 'step-one', 'half\nafter the cut\n')
    await afterDisconnect
    kubelet.write('default', 'logger', 'step-one', 'last, no newline')
    finished = true
    kubelet.end('default', 'logger', 'step-one')
    await following
    expect(seen).toEqual(['first line', 'second half', 'after the cut', 'last, no newline'])
    expect(kubelet.lines('default', 'logger', 'step-one')).toEqual(seen)
    expect(kubelet.requests('default', 'logger', 'step-one')).toBeGreaterThanOrEqual(2)
  })

  it('answers a plain (not followed) log request with the whole log', async () => {
    const text = await kube.core.readNamespacedPodLog({
      name: 'logger',
      namespace: 'default',
      container: 'step-one',
    })
    expect(text).toBe('first line\nsecond half\nafter the cut\nlast, no newline\n')
  })
})
