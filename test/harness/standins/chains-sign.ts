/**
 * What the Chains stand-in does with a finished run: attest (and for a
 * TaskRun sign) its images with real cosign, then mark it with Chains'
 * annotations, `signed` or a retry count.
 */
import { createHash } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import {
  CHAINS_ANNOTATION_PREFIX,
  CHAINS_FIELD_MANAGER,
  CHAINS_MAX_RETRIES,
  CHAINS_RETRIES,
  CHAINS_SIGNED,
} from '../../../src/kube/chains-annotations.js'
import { apiMessage, statusOf, type Kube } from '../../../src/kube/client.js'
import type { KubeObject } from '../../../src/kube/objects.js'
import { RegistryClient } from '../../../src/oci/client.js'
import { parseReference } from '../../../src/oci/reference.js'
import { isIndex } from '../../../src/oci/types.js'
import { isPlainHttpRegistry } from '../../../src/registry-client.js'
import { imagesOf } from './chains-artifacts.js'
import { readConfig, Unsupported, type ChainsConfig } from './chains-config.js'
import { cosignFlags, loadSigner, withCosign, type Signer } from './chains-cosign.js'
import { errorText, type ZapLog } from './chains-log.js'
import { pipelineRunProvenance, taskRunProvenance, type Provenance } from './chains-provenance.js'
import { readRun, TEKTON, type Run, type RunKey } from './chains-run.js'

/** How a run is signed: `sign`, or a mode that reproduces a failure (see chains.ts). */
export type SignMode = 'sign' | 'signed-without-signing' | 'fail'

/** `taskRuns`: a PipelineRun's TaskRuns, each signed or failed already. */
export async function sign(
  kube: Kube,
  run: Run,
  key: RunKey,
  mode: SignMode,
  log: ZapLog,
  taskRuns: Run[] = [],
): Promise<void> {
  const gvk = `${TEKTON}/${key.kind}`
  const where = `${gvk} ${key.namespace}/${key.name}`
  if (mode === 'fail') {
    log.error('Reconcile error', {
      error: `signing payload for ${key.kind === 'TaskRun' ? 'tekton' : 'tekton-pipeline-run'}: simulated failure (Chains stand-in mode 'fail')`,
    })
    await handleRetry(kube, run, key)
    return
  }
  let config: ChainsConfig
  try {
    config = await readConfig(kube)
  } catch (err) {
    if (!(err instanceof Unsupported)) throw err
    log.error('Reconcile error', { error: err.message })
    await annotate(kube, key, { [CHAINS_SIGNED]: 'failed' })
    return
  }
  const signers = new Map<string, Signer | undefined>()
  const signerFor = async (type: string): Promise<Signer | undefined> => {
    if (!signers.has(type)) {
      signers.set(type, await loadSigner(kube, type, mode === 'signed-without-signing', log))
    }
    return signers.get(type)
  }

  const signables =
    key.kind === 'TaskRun'
      ? [
          { type: 'tekton', config: config.taskrun, kind: 'attestation' as const },
          { type: 'oci', config: config.oci, kind: 'signature' as const },
        ]
      : [{ type: 'tekton-pipeline-run', config: config.pipelinerun, kind: 'attestation' as const }]

  for (const signable of signables) {
    const enabled = !(signable.config.storage.size === 1 && signable.config.storage.has(''))
    if (signable.config.signer === 'none' || !enabled) continue
    const errors: string[] = []
    if (signable.kind === 'attestation') {
      let provenance: Provenance
      try {
        provenance =
          key.kind === 'TaskRun'
            ? taskRunProvenance(run, config)
            : pipelineRunProvenance(run, taskRuns, config)
      } catch (err) {
        // As in Chains: logged, and the attempt counts as failed (retried, then "failed").
        errors.push(`creating payload for ${signable.type}: ${apiMessage(err)}`)
        await retry(kube, run, key, log, errors)
        return
      }
      const { subjects, predicate } = provenance
      log.info(`Created payload of type ${signable.config.format} for ${where}`)
      const signer = await signerFor(signable.config.signer)
      if (!signer) {
        // v0.29.2 goes on to the next object here, and in the end marks the run signed.
        log.warn(`No signer ${signable.config.signer} configured for ${signable.type}`)
        continue
      }
      log.info(`Signing object with ${signable.config.signer}`)
      log.info(`Storing payload on ${gvk}/${key.namespace}/${key.name}`)
      if (subjects.length === 0) {
        log.info(`No image subject to attest for ${where}. Skipping upload to registry`)
        continue
      }
      for (const subject of subjects) {
        const image = `${subject.name}@sha256:${subject.digest.sha256}`
        log.info(`Starting attestation upload to OCI for ${image}...`)
        await withCosign(signer, async (cosign) => {
          const file = path.join(cosign.dir, 'predicate.json')
          await writeFile(file, JSON.stringify(predicate))
          await cosign.run([
            'attest',
            ...['--predicate', file, '--type', 'slsaprovenance'],
            ...cosignFlags(config),
            image,
          ])
        }).catch((err: unknown) => errors.push(errorText(err)))
      }
    } else {
      for (const image of imagesOf(run.status?.results ?? [])) {
        log.info(`Created payload of type ${signable.config.format} for ${where}`)
        const signer = await signerFor(signable.config.signer)
        if (!signer) {
          log.warn(`No signer ${signable.config.signer} configured for ${signable.type}`)
          continue
        }
        log.info(`Signing object with ${signable.config.signer}`)
        await withCosign(signer, async (cosign) => {
          // v0.29.2 skips the write when the .sig already holds a layer with
          // this payload, whatever key signed it (v0.26.3 appends one).
          const existing = await existingSignature(image, cosign)
          if (existing) {
            log.info(`Signature with digest ${existing} already exists, skipping`)
            return
          }
          log.info(`Uploading ${image} signature`)
          await cosign.run(['sign', ...cosignFlags(config), image])
        }).catch((err: unknown) => errors.push(errorText(err)))
      }
    }
    if (errors.length > 0) {
      await retry(kube, run, key, log, errors)
      return
    }
  }
  await annotate(kube, key, { [CHAINS_SIGNED]: 'true' })
}

/**
 * The digest of the simple-signing payload cosign would sign for `image`
 * (`cosign generate` prints exactly those bytes), when the image's `.sig`
 * already has a layer of it; undefined otherwise.
 */
async function existingSignature(
  image: string,
  cosign: { run(args: string[]): Promise<{ stdout: string }> },
): Promise<string | undefined> {
  const ref = parseReference(image)
  if (!ref.digest) return undefined
  const { stdout } = await cosign.run(['generate', image])
  const payload = `sha256:${createHash('sha256').update(stdout).digest('hex')}`
  const client = new RegistryClient({ insecure: isPlainHttpRegistry })
  const { signatures } = await client.findCosignAttachments(ref, ref.digest)
  if (!signatures || isIndex(signatures.manifest)) return undefined
  return signatures.manifest.layers.some((layer) => layer.digest === payload) ? payload : undefined
}

async function retry(
  kube: Kube,
  run: Run,
  key: RunKey,
  log: ZapLog,
  errors: string[],
): Promise<void> {
  for (const error of errors) log.error(error)
  log.error('Reconcile error', { error: errors.join('; ') })
  await handleRetry(kube, run, key)
}

/**
 * Server-side applies Chains' annotations: those it set before (read live)
 * plus the new ones, under its own field manager; forced on a conflict, as
 * Chains does.
 */
async function annotate(
  kube: Kube,
  key: RunKey,
  annotations: Record<string, string>,
): Promise<void> {
  const latest = await readRun(kube, key)
  const merged: Record<string, string> = {}
  for (const [name, value] of Object.entries(latest?.metadata.annotations ?? {})) {
    if (name.startsWith(CHAINS_ANNOTATION_PREFIX)) merged[name] = value
  }
  Object.assign(merged, annotations)
  const patch: KubeObject = {
    apiVersion: TEKTON,
    kind: key.kind,
    metadata: { name: key.name, namespace: key.namespace, annotations: merged },
  }
  try {
    await kube.objects.applyRaw(patch, CHAINS_FIELD_MANAGER, false)
  } catch (err) {
    if (statusOf(err) !== 409) throw err
    await kube.objects.applyRaw(patch, CHAINS_FIELD_MANAGER, true)
  }
}

/** `retries` "0", "1", "2", then `signed: failed` once it reaches 3. */
async function handleRetry(kube: Kube, run: Run, key: RunKey): Promise<void> {
  const latest = (await readRun(kube, key)) ?? run
  const current = latest.metadata.annotations?.[CHAINS_RETRIES]
  if (current !== undefined && !(Number(current) < CHAINS_MAX_RETRIES)) {
    await annotate(kube, key, { [CHAINS_SIGNED]: 'failed' })
    return
  }
  const next = current === undefined ? 0 : Number(current) + 1
  await annotate(kube, key, { [CHAINS_RETRIES]: String(next) })
}
