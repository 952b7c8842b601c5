/**
 * Interop with the real cosign (v2.6.5, built by scripts/test-tools.sh): keys
 * we write must be usable by cosign, and keys cosign writes must open here.
 */
import { createPublicKey, sign, verify } from 'node:crypto'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCosign, type CosignRun } from '../../test/harness/cosign.js'
import { generateKeyPair, KeyError, openPrivateKey, SCRYPT_NS, type ScryptN } from './keys.js'

let dir: string
let n = 0

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'oml-cosign-keys-'))
})

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true })
})

/** A fresh directory per test, so files of one test never satisfy another. */
async function workDir(): Promise<string> {
  const d = path.join(dir, `t${n++}`)
  await mkdir(d)
  return d
}

/**
 * Where and how cosign runs: HOME in the temp dir (cosign caches TUF data
 * there), the password only in COSIGN_PASSWORD. runCosign keeps cosign off the
 * network, which proves key signing and verification work offline.
 */
function at(cwd: string, password?: string): CosignRun {
  return { cwd, home: path.join(dir, 'home'), password }
}

/** Writes our generated key pair as cosign.key / cosign.pub, private key owner-only. */
async function writePair(d: string, scryptN?: ScryptN) {
  const pair = await generateKeyPair({ scryptN })
  await writeFile(path.join(d, 'cosign.key'), pair.privateKeyPem, { mode: 0o600 })
  await writeFile(path.join(d, 'cosign.pub'), pair.publicKeyPem)
  return pair
}

/** `cosign sign-blob` of d/blob with d/cosign.key into d/blob.sig (base64 DER), no Rekor. */
function signBlob(d: string, password: string) {
  const args = ['sign-blob', '--key', 'cosign.key', '--tlog-upload=false', '--yes']
  return runCosign(at(d, password), [...args, '--output-signature', 'blob.sig', 'blob'])
}

/** `cosign verify-blob` of d/blob and d/blob.sig against d/cosign.pub, no Rekor. */
function verifyBlob(d: string) {
  const args = ['verify-blob', '--key', 'cosign.pub', '--signature', 'blob.sig']
  return runCosign(at(d), [...args, '--insecure-ignore-tlog=true', 'blob'])
}

// A minimal predicate of the kind Chains writes (slsa/v1 = SLSA provenance v0.2).
const PREDICATE = JSON.stringify({
  builder: { id: 'https://tekton.dev/chains/v2' },
  buildType: 'tekton.dev/v1beta1/TaskRun',
})

/** DSSE pre-authentication encoding, what the envelope's signature covers. */
function pae(type: string, body: Buffer): Buffer {
  const t = Buffer.from(type)
  return Buffer.concat([Buffer.from(`DSSEv1 ${t.length} ${type} ${body.length} `), body])
}

describe('our keys in real cosign', () => {
  it.each(SCRYPT_NS)(
    'cosign sign-blob signs with our N=%i key; cosign and node:crypto verify it',
    async (N) => {
      const d = await workDir()
      const pair = await writePair(d, N)
      const blob = Buffer.from(`model weights for N=${N}\n`)
      await writeFile(path.join(d, 'blob'), blob)

      await signBlob(d, pair.password)
      const sig = Buffer.from((await readFile(path.join(d, 'blob.sig'), 'utf8')).trim(), 'base64')

      const verified = await verifyBlob(d)
      expect(verified.stderr).toContain('Verified OK')
      const pub = createPublicKey(pair.publicKeyPem)
      expect(verify('sha256', blob, pub, sig)).toBe(true)
      expect(verify('sha256', Buffer.from('other'), pub, sig)).toBe(false)
    },
  )

  it('cosign verify-blob rejects our signature over other bytes', async () => {
    // Shows the verification above can fail: same key and signature, changed blob.
    const d = await workDir()
    const pair = await writePair(d)
    await writeFile(path.join(d, 'blob'), 'original')
    await signBlob(d, pair.password)
    await writeFile(path.join(d, 'blob'), 'changed')
    await expect(verifyBlob(d)).rejects.toThrow(/invalid signature/)
  })

  it('cosign cannot use our key with a wrong password (the key really is encrypted)', async () => {
    const d = await workDir()
    await writePair(d)
    await writeFile(path.join(d, 'blob'), 'data')
    await expect(
      runCosign(at(d, 'not-the-password'), [
        'sign-blob',
        '--key',
        'cosign.key',
        '--tlog-upload=false',
        '--yes',
        'blob',
      ]),
    ).rejects.toThrow(/decryption failed/)
  })

  it('cosign attest-blob makes a DSSE attestation with our key that verifies', async () => {
    const d = await workDir()
    const pair = await writePair(d)
    await writeFile(path.join(d, 'model.bin'), 'model bytes')
    await writeFile(path.join(d, 'predicate.json'), PREDICATE)
    await runCosign(at(d, pair.password), [
      'attest-blob',
      '--key',
      'cosign.key',
      '--tlog-upload=false',
      '--yes',
      '--predicate',
      'predicate.json',
      '--type',
      'slsaprovenance',
      '--output-signature',
      'model.att.json',
      'model.bin',
    ])
    const envelope = JSON.parse(await readFile(path.join(d, 'model.att.json'), 'utf8')) as {
      payloadType: string
      payload: string
      signatures: { sig: string }[]
    }
    expect(envelope.payloadType).toBe('application/vnd.in-toto+json')
    const body = Buffer.from(envelope.payload, 'base64')
    const statement = JSON.parse(body.toString('utf8')) as {
      predicateType: string
      subject: { name: string }[]
    }
    expect(statement.predicateType).toBe('https://slsa.dev/provenance/v0.2')
    expect(statement.subject[0]?.name).toBe('model.bin')

    expect(envelope.signatures).toHaveLength(1)
    const sig = Buffer.from(envelope.signatures[0]?.sig ?? '', 'base64')
    const pub = createPublicKey(pair.publicKeyPem)
    expect(verify('sha256', pae(envelope.payloadType, body), pub, sig)).toBe(true)

    const verifyArgs = [
      'verify-blob-attestation',
      '--key',
      'cosign.pub',
      '--signature',
      'model.att.json',
      '--type',
      'slsaprovenance',
      '--insecure-ignore-tlog=true',
      'model.bin',
    ]
    expect((await runCosign(at(d), verifyArgs)).stderr).toContain('Verified OK')
    // The subject digest binds the attestation to the blob: other bytes must fail.
    await writeFile(path.join(d, 'model.bin'), 'other model bytes')
    await expect(runCosign(at(d), verifyArgs)).rejects.toThrow(/no matching subject digest/)
  })
})

describe('keys from cosign generate-key-pair', () => {
  it('open with openPrivateKey and sign what cosign verifies', async () => {
    const d = await workDir()
    const password = 'cosign-made password'
    await runCosign(at(d, password), ['generate-key-pair'])
    const [pem, pub] = await Promise.all([
      readFile(path.join(d, 'cosign.key'), 'utf8'),
      readFile(path.join(d, 'cosign.pub'), 'utf8'),
    ])
    expect(pem).toMatch(/^-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n/)

    const opened = await openPrivateKey(pem, password)
    expect(opened.publicKeyPem).toBe(`${pub.trimEnd()}\n`)

    // Our signature with the opened key, checked by cosign against cosign's own public key.
    const blob = Buffer.from('signed by node with a cosign-made key')
    await writeFile(path.join(d, 'blob'), blob)
    await writeFile(
      path.join(d, 'blob.sig'),
      sign('sha256', blob, opened.privateKey).toString('base64'),
    )
    const verified = await verifyBlob(d)
    expect(verified.stderr).toContain('Verified OK')

    const wrong = openPrivateKey(pem, 'wrong')
    await expect(wrong).rejects.toBeInstanceOf(KeyError)
    await expect(wrong).rejects.toThrow(
      'cannot decrypt the cosign private key: wrong password, or the key was altered (secretbox authentication failed)',
    )
  })
})
