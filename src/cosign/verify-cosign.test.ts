/**
 * Interoperability with real cosign (v2.6.5 from scripts/test-tools.sh): what
 * cosign signs, with keys cosign made, our verifiers must accept, and reject
 * once anything changes.
 */
import { createHash, generateKeyPairSync } from 'node:crypto'
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCosign, type CosignRun } from '../../test/harness/cosign.js'
import { repoRoot } from '../../test/harness/tools.js'
import { summarizeProvenance } from '../provenance/summary.js'
import { SLSA_PROVENANCE_V02, STATEMENT_V01 } from '../provenance/types.js'
import { IN_TOTO_PAYLOAD_TYPE, parseDsseEnvelope, type DsseEnvelope } from './dsse.js'
import { chainsKeyId } from './keyid.js'
import { buildSimpleSigningPayload, SIMPLE_SIGNING_TYPE } from './simplesigning.js'
import {
  verifyAttestation,
  verifyDsse,
  VerificationError,
  verifySimpleSignature,
  type VerificationFailure,
} from './verify.js'

const password = 'correct horse battery staple'
const predicateFile = path.join(repoRoot, 'src/provenance/testdata/pipelinerun-predicate.json')
const fixturePub = path.join(repoRoot, 'test/fixtures/chains-real/cosign.pub')

let work: string

/**
 * cosign runs in the work dir, which is also its HOME (anything cosign caches,
 * ~/.sigstore, goes with it); the password only ever travels in the environment.
 */
function inWork(): CosignRun {
  return { cwd: work, home: work, password }
}

function expectFailure(fn: () => unknown, reason: VerificationFailure, message: RegExp): void {
  let thrown: unknown
  try {
    fn()
  } catch (err) {
    thrown = err
  }
  expect(thrown).toBeInstanceOf(VerificationError)
  expect((thrown as VerificationError).reason).toBe(reason)
  expect((thrown as VerificationError).message).toMatch(message)
}

let ecPub: string
let rsaPub: string

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'oml-cosign-'))
  await runCosign(inWork(), ['generate-key-pair']) // writes cosign.key / cosign.pub in cwd
  ecPub = await readFile(path.join(work, 'cosign.pub'), 'utf8')
  // An RSA key imported by cosign, to check the RSA verification path against cosign's signer.
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 })
  await writeFile(
    path.join(work, 'rsa.pem'),
    rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    { mode: 0o600 },
  )
  await runCosign(inWork(), [
    'import-key-pair',
    '--key',
    'rsa.pem',
    '--output-key-prefix',
    'rsa',
    '--yes',
  ])
  rsaPub = await readFile(path.join(work, 'rsa.pub'), 'utf8')
})

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true })
})

describe('attestations made by cosign attest-blob', () => {
  const model = Buffer.from('pretend model bytes\n')
  let envelope: DsseEnvelope

  /** cosign attest-blob writes the signed DSSE envelope to --output-signature. */
  async function attest(key: string, out: string): Promise<DsseEnvelope> {
    await writeFile(path.join(work, 'model.bin'), model)
    await copyFile(predicateFile, path.join(work, 'predicate.json'))
    await runCosign(inWork(), [
      'attest-blob',
      '--key',
      key,
      '--predicate',
      'predicate.json',
      '--type',
      'slsaprovenance',
      '--tlog-upload=false',
      '--output-signature',
      out,
      '--yes',
      'model.bin',
    ])
    return parseDsseEnvelope(await readFile(path.join(work, out)))
  }

  beforeAll(async () => {
    envelope = await attest('cosign.key', 'attestation.json')
  })

  it('verifies, and the statement carries our predicate about the blob', () => {
    expect(envelope.payloadType).toBe(IN_TOTO_PAYLOAD_TYPE)
    const statement = verifyAttestation(envelope, ecPub)
    expect(statement._type).toBe(STATEMENT_V01)
    expect(statement.predicateType).toBe(SLSA_PROVENANCE_V02)
    expect(statement.subject).toEqual([
      { name: 'model.bin', digest: { sha256: createHash('sha256').update(model).digest('hex') } },
    ])
  })

  it('summarizes to the dataset, accuracy, image and trainer of the predicate', () => {
    const summary = summarizeProvenance(verifyAttestation(envelope, ecPub))
    expect(summary.buildType).toBe('tekton.dev/v1/PipelineRun')
    expect(summary.builderId).toBe('https://tekton.dev/chains/v2')
    expect(summary.dataset).toEqual({
      url: 'registry.local:5000/ml-iris:data',
      digest: 'sha256:5c6a2d4e8f0b1c3d5e7f9a0b2c4d6e8f0a1b3c5d7e9f1a2b4c6d8e0f2a3b5c7d',
    })
    expect(summary.accuracy).toBeCloseTo(0.9666666666666667, 15)
    expect(summary.image).toEqual({
      url: 'registry.local:5000/ml-iris:model',
      digest: 'sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08',
    })
    expect(summary.trainerImage).toBe(`registry.local:5000/oml-trainer@sha256:${'2'.repeat(64)}`)
  })

  it('reports our keyid; cosign leaves the envelope keyid empty', () => {
    const verified = verifyDsse(envelope, ecPub)
    expect(verified.keyid).toBe(chainsKeyId(ecPub))
    expect(verified.keyid).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/)
    // cosign v2.6.5 writes "keyid": "" (Chains writes the fingerprint); a newer cosign that
    // fills it in should make this fail, so we then check that it agrees with chainsKeyId.
    expect(verified.signature).toEqual({ keyid: '', sig: envelope.signatures[0]!.sig })
  })

  it('rejects a changed payload, a changed signature and another key', () => {
    const payload = Buffer.from(envelope.payload, 'base64')
    const statement = JSON.parse(payload.toString('utf8')) as { subject: { name: string }[] }
    statement.subject[0]!.name = 'other.bin'
    const retargeted = {
      ...envelope,
      payload: Buffer.from(JSON.stringify(statement)).toString('base64'),
    }
    expectFailure(() => verifyAttestation(retargeted, ecPub), 'signature', /does not match/)

    const sig = Buffer.from(envelope.signatures[0]!.sig, 'base64')
    sig[sig.length - 2] = sig[sig.length - 2]! ^ 0x80
    const resigned = { ...envelope, signatures: [{ sig: sig.toString('base64') }] }
    expectFailure(() => verifyAttestation(resigned, ecPub), 'signature', /does not match/)

    expectFailure(() => verifyAttestation(envelope, rsaPub), 'signature', /does not match/)
  })

  it('verifies an attestation cosign made with an imported RSA key', async () => {
    const rsaEnvelope = await attest('rsa.key', 'attestation-rsa.json')
    expect(verifyAttestation(rsaEnvelope, rsaPub).predicateType).toBe(SLSA_PROVENANCE_V02)
    expect(verifyDsse(rsaEnvelope, rsaPub).keyid).toBe(chainsKeyId(rsaPub))
    expectFailure(() => verifyAttestation(rsaEnvelope, ecPub), 'signature', /does not match/)
  })
})

describe('simple signing payloads signed by cosign sign-blob', () => {
  const digest = `sha256:${createHash('sha256').update('manifest').digest('hex')}`
  const payload = buildSimpleSigningPayload('registry.local:5000/ml-iris', digest, {
    'dev.oml/run': 'nightly',
  })
  let signature: string

  async function signBlob(key: string, file: string, bytes: Buffer): Promise<string> {
    await writeFile(path.join(work, file), bytes)
    await runCosign(inWork(), [
      'sign-blob',
      '--key',
      key,
      '--tlog-upload=false',
      '--yes',
      '--output-signature',
      `${file}.sig`,
      file,
    ])
    return (await readFile(path.join(work, `${file}.sig`), 'utf8')).trim()
  }

  beforeAll(async () => {
    signature = await signBlob('cosign.key', 'payload.json', payload)
  })

  it('verifies and returns the payload', () => {
    const verified = verifySimpleSignature(payload, signature, ecPub, digest)
    expect(verified.critical).toEqual({
      identity: { 'docker-reference': 'registry.local:5000/ml-iris' },
      image: { 'docker-manifest-digest': digest },
      type: SIMPLE_SIGNING_TYPE,
    })
    expect(verified.optional).toEqual({ 'dev.oml/run': 'nightly' })
  })

  it('rejects a signature for another image digest', () => {
    const other = `sha256:${'0'.repeat(64)}`
    expectFailure(
      () => verifySimpleSignature(payload, signature, ecPub, other),
      'digest',
      new RegExp(`is for ${digest}, not for the image ${other}`),
    )
  })

  it('rejects a changed payload, a changed signature and another key', async () => {
    // Same meaning, one byte of whitespace more: the signature covers exact bytes.
    const reformatted = Buffer.concat([payload, Buffer.from(' ')])
    expectFailure(
      () => verifySimpleSignature(reformatted, signature, ecPub, digest),
      'signature',
      /does not verify/,
    )
    const sig = Buffer.from(signature, 'base64')
    sig[8] = sig[8]! ^ 0x01
    expectFailure(
      () => verifySimpleSignature(payload, sig.toString('base64'), ecPub, digest),
      'signature',
      /does not verify/,
    )
    const fixtureKey = await readFile(fixturePub, 'utf8')
    expectFailure(
      () => verifySimpleSignature(payload, signature, fixtureKey, digest),
      'signature',
      /does not verify with public key SHA256:Y4cmlwgzt8bj7evep9/,
    )
  })

  it('rejects a signed payload that is not a simple-signing payload', async () => {
    const notSimple = Buffer.from('{"critical":{"type":"something else"}}')
    const sig = await signBlob('cosign.key', 'not-simple.json', notSimple)
    expectFailure(
      () => verifySimpleSignature(notSimple, sig, ecPub, digest),
      'payload',
      /critical.type is "something else"/,
    )
  })

  it('verifies an RSA signature made by cosign', async () => {
    const sig = await signBlob('rsa.key', 'payload-rsa.json', payload)
    expect(verifySimpleSignature(payload, sig, rsaPub, digest).critical.type).toBe(
      SIMPLE_SIGNING_TYPE,
    )
  })

  it('rejects a malformed expected digest and a non-base64 signature', () => {
    expectFailure(
      () => verifySimpleSignature(payload, signature, ecPub, digest.toUpperCase()),
      'digest',
      /not sha256:<64 lowercase hex>/,
    )
    expectFailure(
      () => verifySimpleSignature(payload, 'not base64!', ecPub, digest),
      'signature',
      /not base64/,
    )
  })
})
