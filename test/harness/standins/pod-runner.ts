/**
 * Stand-in for a node's kubelet running a bare Pod, until the harness has a
 * real node: it watches Pods in one namespace and runs each Pod's single
 * container with the real Docker engine, from the real image, on the host
 * network (so the container reaches the test registry on loopback as pods
 * reach the embedded registry), as the Pod's `runAsUser`, with a file mounted
 * at /dev/termination-log. Then it writes what a kubelet writes into the
 * Pod's status: `ErrImagePull` with Docker's words when the image cannot be
 * pulled, else the container's exit code and termination message, and phase
 * Succeeded or Failed.
 *
 * Not played: scheduling, several containers, init containers, volumes,
 * restarts, probes, resources, `activeDeadlineSeconds`.
 */
import { mkdtemp, readFile, rm, writeFile, chmod } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {
  PatchStrategy,
  setHeaderOptions,
  Watch,
  type V1Pod,
  type V1PodStatus,
} from '@kubernetes/client-node'
import { connect } from '../../../src/kube/client.js'
import { docker } from '../docker.js'

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch)

export interface PodRunnerStandIn {
  /** Names of the Pods it ran (or failed to), in order. */
  ran: string[]
  stop(): Promise<void>
}

const now = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z')

export async function startPodRunnerStandIn(
  kubeconfig: string,
  namespace: string,
): Promise<PodRunnerStandIn> {
  const kube = connect(kubeconfig, 'the test kubeconfig')
  const ran: string[] = []
  const running = new Set<Promise<void>>()
  const setStatus = (name: string, status: V1PodStatus) =>
    kube.core.patchNamespacedPodStatus({ name, namespace, body: { status } }, mergePatch)

  async function run(pod: V1Pod): Promise<void> {
    const name = pod.metadata!.name!
    ran.push(name)
    const container = pod.spec!.containers[0]!
    const image = container.image!
    const pulled = await docker(['image', 'pull', image])
    if (pulled.code !== 0) {
      await setStatus(name, {
        phase: 'Pending',
        containerStatuses: [
          {
            name: container.name,
            image,
            imageID: '',
            ready: false,
            restartCount: 0,
            state: { waiting: { reason: 'ErrImagePull', message: pulled.stderr.trim() } },
          },
        ],
      })
      return
    }
    const dir = await mkdtemp(path.join(os.tmpdir(), 'pod-runner-'))
    try {
      const log = path.join(dir, 'termination-log')
      await writeFile(log, '')
      await chmod(log, 0o666)
      const user = pod.spec?.securityContext?.runAsUser
      const startedAt = now()
      const result = await docker([
        'run',
        '--rm',
        '--network',
        'host',
        ...(user === undefined ? [] : ['--user', String(user)]),
        '--volume',
        `${log}:/dev/termination-log`,
        '--entrypoint',
        container.command![0]!,
        image,
        ...container.command!.slice(1),
        ...(container.args ?? []),
      ])
      const exitCode = result.code ?? 137
      await setStatus(name, {
        phase: exitCode === 0 ? 'Succeeded' : 'Failed',
        containerStatuses: [
          {
            name: container.name,
            image,
            imageID: image,
            ready: false,
            restartCount: 0,
            state: {
              terminated: {
                exitCode,
                reason: exitCode === 0 ? 'Completed' : 'Error',
                message: await readFile(log, 'utf8'),
                startedAt: startedAt as unknown as Date,
                finishedAt: now() as unknown as Date,
              },
            },
          },
        ],
      })
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  }

  const watch = new Watch(kube.config)
  const controller = await watch.watch(
    `/api/v1/namespaces/${namespace}/pods`,
    {},
    (type: string, pod: V1Pod) => {
      if (type !== 'ADDED') return
      const work = run(pod).catch(() => undefined)
      running.add(work)
      void work.finally(() => running.delete(work))
    },
    () => undefined,
  )
  return {
    ran,
    async stop() {
      controller.abort()
      await Promise.all(running)
    },
  }
}
