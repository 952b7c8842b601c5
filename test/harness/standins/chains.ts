/**
 * Stand-in for the Tekton Chains controller (modelled on v0.29.2). Real Chains
 * v0.26.3 runs on the real node (test/node/); this stays for what that cannot
 * show: v0.29.2's behaviour (the pin cannot be built here) and the faults
 * below (`mode`). It watches TaskRuns and PipelineRuns (tekton.dev/v1) and does
 * what Chains does with a finished one that has no `chains.tekton.dev/signed`:
 *
 * - reads `tekton-chains/chains-config` and the key in `tekton-chains/signing-secrets`
 *   (cosign.key, cosign.password) through the API at every signing, as Chains
 *   reads its mounted key files on every signing (chains-config.ts, chains-cosign.ts);
 * - for a TaskRun: builds the slsa/v1 provenance (in-toto Statement v0.1, SLSA
 *   v0.2 predicate: builder, buildType `tekton.dev/v1/TaskRun`, invocation,
 *   buildConfig.steps, metadata, materials from step images and
 *   `*ARTIFACT_INPUTS` results; chains-provenance.ts) and attests it with real
 *   `cosign attest --type slsaprovenance` to every image its
 *   `*IMAGE_URL`/`*IMAGE_DIGEST` and `IMAGES` results name, then signs each
 *   image with real `cosign sign` (the `.sig`, Chains' "oci" artifact) — unless
 *   the `.sig` already holds a layer with the same payload (whatever key made
 *   it): then, as v0.29.2 does, it logs "Signature with digest … already
 *   exists, skipping" and writes nothing (v0.26.3, real on the node, appends);
 * - for a PipelineRun, once each TaskRun of its `childReferences` is signed or
 *   failed (Chains waits for them too): the PipelineRun provenance
 *   (`buildConfig.tasks[]` with each task's steps, invocation and results;
 *   subjects and materials from the run's results and, with deep inspection,
 *   its TaskRuns'), attested the same way; PipelineRuns get no `.sig`;
 * - then sets `chains.tekton.dev/signed: "true"` with a server-side apply patch
 *   of its own annotations (field manager `tekton-chains-controller`), or
 *   counts `chains.tekton.dev/retries` up to 3 and then sets `"failed"`
 *   (chains-sign.ts);
 * - with a `kubelet` stand-in: keeps a controller Pod record
 *   `tekton-chains-controller-<x>` in `tekton-chains` (label
 *   `app=tekton-chains-controller`) whose log holds Chains-shaped JSON (zap)
 *   lines naming each run, readable through the real API server (chains-log.ts).
 *
 * Like Chains, it reads only what Tekton wrote in the runs' status
 * (`taskSpec`, `pipelineSpec`, step `imageID`), never the Task, Pipeline or
 * Pod. Like released Chains, a signer that cannot be loaded (no cosign.key, a
 * wrong password) is logged and skipped, and the run is still marked signed
 * with nothing pushed: the known bug the action checks for.
 *
 * What it does not play: formats other than slsa/v1 (`in-toto` is the same
 * payloader in v0.29), storage other than oci, the x509.pem key, KMS and
 * Fulcio signers, transparency (Rekor), `storage.oci.repository`, the
 * sigstore-bundle encoding and `*ARTIFACT_URI`/`*ARTIFACT_OUTPUTS` subjects:
 * such a config marks the run failed with a log line saying so. What cosign
 * writes differs from Chains in small ways: the DSSE keyid is empty (Chains
 * puts the key's SSH SHA256 fingerprint), the `.att` layer carries a
 * `predicateType` annotation, each attestation names only the image it is
 * attached to (Chains lists every subject of the run), and cosign re-encodes
 * the predicate through its SLSA v0.2 struct (field order; unknown fields dropped).
 *
 * `mode` reproduces failures: `signed-without-signing` (the bug, whatever the
 * key), `fail` (every attempt fails: retries, then `"failed"`, with error lines),
 * `never` (the run is left alone). A run keeps the mode it was first seen with.
 */
import { CHAINS_CONTROLLER_CONTAINER, signedValue } from '../../../src/kube/chains-annotations.js'
import { apiMessage, connect, type Kube } from '../../../src/kube/client.js'
import { withRetry } from '../../../src/kube/retry.js'
import { CHAINS_NAMESPACE } from './chains-config.js'
import { errorText, startControllerPod, ZapLog } from './chains-log.js'
import { RunQueue } from './chains-queue.js'
import { isDone, readRun, TEKTON, type Run, type RunKey } from './chains-run.js'
import { sign, type SignMode } from './chains-sign.js'
import type { KubeletStandIn } from './kubelet.js'
import { watchAll } from './watch.js'

export type { RunKey } from './chains-run.js'

export type ChainsMode = SignMode | 'never'

export interface ChainsStandInOptions {
  /** Where the controller's log lines are served from (a Pod record on its Node). */
  kubelet?: KubeletStandIn
  /** How runs are handled (default `sign`); a function is asked once per run. */
  mode?: ChainsMode | ((run: RunKey) => ChainsMode)
  /** The stand-in's own problems (not the controller's log). */
  log?: (message: string) => void
}

export interface ChainsStandIn {
  /** The controller Pod record, when a kubelet was given. */
  podName: string | undefined
  /** The controller's log lines so far (JSON). */
  lines(): string[]
  stop(): Promise<void>
}

export async function startChainsStandIn(
  kubeconfig: string,
  options: ChainsStandInOptions = {},
): Promise<ChainsStandIn> {
  const kube = connect(kubeconfig, 'chains stand-in kubeconfig')
  const problem = options.log ?? ((message) => console.error(`chains stand-in: ${message}`))
  const lines: string[] = []
  const podName = options.kubelet ? await startControllerPod(kube, options.kubelet) : undefined
  const write = (line: string) => {
    lines.push(line)
    if (podName) {
      options.kubelet!.write(CHAINS_NAMESPACE, podName, CHAINS_CONTROLLER_CONTAINER, `${line}\n`)
    }
  }
  const modes = new Map<string, ChainsMode>()
  const modeOf = (run: Run, key: RunKey): ChainsMode => {
    const id = run.metadata.uid ?? `${key.kind}/${key.namespace}/${key.name}`
    let mode = modes.get(id)
    if (!mode) {
      mode = typeof options.mode === 'function' ? options.mode(key) : (options.mode ?? 'sign')
      modes.set(id, mode)
    }
    return mode
  }

  let stopped = false
  const queue = new RunQueue(
    (key) => reconcile({ kube, write, modeOf, isStopped: () => stopped }, key),
    (key, err) => problem(`${key.kind} ${key.namespace}/${key.name}: ${apiMessage(err)}`),
  )
  const onChange = (kind: RunKey['kind']) => (type: string, run: Run) => {
    if (type === 'delete' || stopped) return
    const namespace = run.metadata.namespace
    queue.add({ kind, namespace, name: run.metadata.name })
    // Chains tracks a PipelineRun's TaskRuns: one done with signing wakes the PipelineRun.
    const owner = run.metadata.labels?.['tekton.dev/pipelineRun']
    if (kind === 'TaskRun' && owner && signedValue(run)) {
      queue.add({ kind: 'PipelineRun', namespace, name: owner })
    }
  }
  const watchError = (kind: string) => (err: unknown) =>
    problem(`watch of ${kind}s failed (started again): ${errorText(err)}`)
  // Each watch is retried on its own (a CRD applied just before answers 429
  // "storage is (re)initializing" for a moment); one that never starts stops the other.
  const started = await Promise.allSettled(
    (['TaskRun', 'PipelineRun'] as const).map((kind) =>
      withRetry(
        () => watchAll<Run>(kube, TEKTON, kind, onChange(kind), watchError(kind)),
        Date.now() + 30_000,
        `watching ${kind}s`,
        () => undefined,
      ),
    ),
  )
  const watched = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []))
  const failed = started.find((s) => s.status === 'rejected')
  if (failed) {
    await Promise.all(watched.map((w) => w.stop()))
    if (podName) options.kubelet!.end(CHAINS_NAMESPACE, podName, CHAINS_CONTROLLER_CONTAINER)
    throw failed.reason
  }
  return {
    podName,
    lines: () => [...lines],
    async stop() {
      stopped = true
      await Promise.all(watched.map((w) => w.stop()))
      await queue.drain()
      if (podName) options.kubelet!.end(CHAINS_NAMESPACE, podName, CHAINS_CONTROLLER_CONTAINER)
    },
  }
}

interface Context {
  kube: Kube
  write(line: string): void
  modeOf(run: Run, key: RunKey): ChainsMode
  isStopped(): boolean
}

async function reconcile(ctx: Context, key: RunKey): Promise<void> {
  if (ctx.isStopped()) return
  // The latest object, not a cached one: Chains checks the live annotations too.
  const run = await readRun(ctx.kube, key)
  if (!run || !isDone(run) || signedValue(run)) return
  const mode = ctx.modeOf(run, key)
  if (mode === 'never') return
  const log = new ZapLog(ctx.write, key)
  if (key.kind === 'TaskRun') return sign(ctx.kube, run, key, mode, log)
  const taskRuns = await reconciledTaskRuns(ctx.kube, run, log)
  if (taskRuns) await sign(ctx.kube, run, key, mode, log, taskRuns)
}

/**
 * The TaskRuns of a PipelineRun's `childReferences`, once each is signed or
 * failed: Chains signs a PipelineRun only then. Undefined while one is not,
 * and, as in Chains, when one is gone (the PipelineRun is then never signed).
 */
async function reconciledTaskRuns(kube: Kube, run: Run, log: ZapLog): Promise<Run[] | undefined> {
  const taskRuns: Run[] = []
  for (const child of run.status?.childReferences ?? []) {
    if (child.kind && child.kind !== 'TaskRun') continue
    const namespace = run.metadata.namespace
    const taskRun = await readRun(kube, { kind: 'TaskRun', namespace, name: child.name })
    if (!taskRun) {
      log.error(`Unable to get reconciled status of taskrun ${child.name} within pipelinerun`)
      return undefined
    }
    if (!taskRun.status?.completionTime) {
      log.info(
        `taskrun ${child.name} within pipelinerun is not yet finalized: status is not complete`,
      )
      return undefined
    }
    if (!signedValue(taskRun)) {
      log.info(`taskrun ${child.name} within pipelinerun is not yet reconciled`)
      return undefined
    }
    taskRuns.push(taskRun)
  }
  return taskRuns
}
