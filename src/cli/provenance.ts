import { existsSync } from 'node:fs'
import { verifyImageAttachments } from '../cosign/attached.js'
import { parseDsseEnvelope } from '../cosign/dsse.js'
import { chainsKeyId } from '../cosign/keyid.js'
import { verifyAttestation } from '../cosign/verify.js'
import { errorMessage, InputError, UserError } from '../errors.js'
import { formatReference, parseReference, withDigest } from '../oci/reference.js'
import { summarizeProvenance, type ProvenanceSummary } from '../provenance/summary.js'
import { PIPELINERUN_BUILD_TYPE, type InTotoStatement } from '../provenance/types.js'
import { createRegistryClient } from '../registry-client.js'
import { defaultDockerConfigPath } from '../oci/auth.js'
import { parseFlags, required, type Command } from './args.js'
import { readFlagFile } from './files.js'

const usage = `Usage: oml-chains provenance (--envelope FILE | --image REF) --key PUB [--json]

Verifies a Chains attestation with a public key and prints what its provenance
says: the subject, the builder, the dataset (URL and digest), the trainer image,
the accuracy. With --image, the image's .sig and .att are fetched from its
registry (credentials from the docker config) and both must verify; the
PipelineRun attestation is preferred. Exits 1 when nothing verifies.

Options:
  --envelope FILE   a DSSE envelope (JSON), as in an .att layer
  --image REF       an image in a registry (tag or digest)
  --key PUB         the cosign public key (PEM)
  --json            print the result as JSON`

/** What `--json` prints. */
export interface ProvenanceReport {
  verified: boolean
  /** Chains' keyid of the public key that verified it. */
  keyid?: string
  /** The subject the attestation is about (the image's, with --image). */
  subject?: { name: string; digest: string | undefined }
  buildType?: string
  builder?: string
  dataset?: { url: string | undefined; digest: string | undefined }
  trainerImage?: string
  accuracy?: number
  params?: ProvenanceSummary['params']
  /** With --image: the image verified, pinned by digest, and how many signatures verified. */
  image?: string
  signatures?: number
  error?: string
}

export const provenance: Command = {
  name: 'provenance',
  usage,
  async run(argv) {
    const flags = parseFlags(
      argv,
      {
        envelope: { type: 'string' },
        image: { type: 'string' },
        key: { type: 'string' },
        json: { type: 'boolean' },
      },
      usage,
    )
    if (Boolean(flags.envelope) === Boolean(flags.image)) {
      throw new InputError('--envelope', 'give exactly one of --envelope FILE or --image REF')
    }
    const publicKey = await readFlagFile('key', required(flags.key, 'key', 'the cosign public key'))
    let report: ProvenanceReport
    try {
      report = flags.envelope
        ? await fromEnvelope(flags.envelope, publicKey)
        : await fromImage(flags.image ?? '', publicKey)
    } catch (err) {
      if (flags.json && err instanceof UserError && !(err instanceof InputError)) {
        print({ verified: false, error: errorMessage(err) }, true)
      }
      throw err
    }
    print(report, flags.json ?? false)
  },
}

async function fromEnvelope(file: string, publicKey: string): Promise<ProvenanceReport> {
  const envelope = parseDsseEnvelope(await readFlagFile('envelope', file))
  const statement = verifyAttestation(envelope, publicKey)
  return report(statement, publicKey, undefined)
}

async function fromImage(text: string, publicKey: string): Promise<ProvenanceReport> {
  const ref = parseReference(text, '--image')
  // The docker config is optional, as for docker: without one, registries are used anonymously.
  const dockerConfigPath = defaultDockerConfigPath()
  const registry = await createRegistryClient({
    dockerConfigPath: existsSync(dockerConfigPath) ? dockerConfigPath : undefined,
  })
  const image = ref.digest
    ? { ...ref, digest: ref.digest }
    : withDigest(ref, (await registry.resolve(ref)).digest)
  const attached = await verifyImageAttachments(registry, image, publicKey)
  // Chains writes one attestation per TaskRun and one per PipelineRun; the
  // PipelineRun's holds every task's results, so it is the one to read.
  const about = attached.attestations.filter((a) =>
    a.statement.subject.some((s) => `sha256:${s.digest.sha256}` === image.digest),
  )
  const chosen =
    about.find((a) =>
      PIPELINERUN_BUILD_TYPE.test(summarizeProvenance(a.statement).buildType ?? ''),
    ) ?? about[0]
  if (!chosen) {
    throw new UserError(
      `${formatReference(image)}: no verified attestation has this image as its subject`,
    )
  }
  return {
    ...report(chosen.statement, publicKey, image.digest),
    image: formatReference(image),
    signatures: attached.signatures.length,
  }
}

function report(
  statement: InTotoStatement,
  publicKey: string,
  digest: string | undefined,
): ProvenanceReport {
  const summary = summarizeProvenance(statement)
  const subject = summary.subjects.find((s) => s.digest === digest) ?? summary.subjects[0]
  return {
    verified: true,
    keyid: chainsKeyId(publicKey),
    subject,
    buildType: summary.buildType,
    builder: summary.builderId,
    dataset: summary.dataset ?? { url: undefined, digest: undefined },
    trainerImage: summary.trainerImage,
    accuracy: summary.accuracy,
    params: summary.params,
  }
}

function print(report: ProvenanceReport, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`)
    return
  }
  const notRecorded = 'not recorded in this attestation'
  const rows: [string, string][] = [
    ['verified', report.verified ? `yes, with key ${report.keyid}` : 'no'],
    ...(report.image
      ? [
          ['image', `${report.image} (${report.signatures} signature(s) verified)`] as [
            string,
            string,
          ],
        ]
      : []),
    ['subject', report.subject ? `${report.subject.name}@${report.subject.digest ?? '?'}` : 'none'],
    ['build type', report.buildType ?? notRecorded],
    ['builder', report.builder ?? notRecorded],
    ['dataset', report.dataset?.url ?? notRecorded],
    ['dataset digest', report.dataset?.digest ?? notRecorded],
    ['trainer image', report.trainerImage ?? notRecorded],
    ['accuracy', report.accuracy === undefined ? notRecorded : String(report.accuracy)],
    ...Object.entries(report.params ?? {}).map(
      ([k, v]) => [`param ${k}`, typeof v === 'string' ? v : JSON.stringify(v)] as [string, string],
    ),
  ]
  const width = Math.max(...rows.map(([label]) => label.length)) + 2
  const lines = rows.map(([label, value]) => `${`${label}:`.padEnd(width)}${value}`)
  process.stdout.write(`${lines.join('\n')}\n`)
}
