import { execFile } from 'node:child_process'
import { createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { repoRoot } from '../../test/harness/tools.js'
import {
  DsseFormatError,
  IN_TOTO_PAYLOAD_TYPE,
  pae,
  parseDsseEnvelope,
  type DsseEnvelope,
} from './dsse.js'
import { chainsKeyId, sshPublicKeyBlob } from './keyid.js'
import {
  verifyAttestation,
  verifyDsse,
  VerificationError,
  type VerificationFailure,
} from './verify.js'

const run = promisify(execFile)
const fixture = path.join(repoRoot, 'test/fixtures/chains-real')
const fixtureKeyId = 'SHA256:Y4cmlwgzt8bj7evep9/GBYwJZxLV2pgYyQzmsUeF2ks'

let work: string
let publicKeyPem: string
let envelope: DsseEnvelope

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'oml-verify-'))
  publicKeyPem = await readFile(path.join(fixture, 'cosign.pub'), 'utf8')
  envelope = parseDsseEnvelope(await readFile(path.join(fixture, 'taskrun-attestation.dsse.json')))
})

afterAll(async () => {
  await rm(work, { recursive: true, force: true })
})

/** Runs fn and returns the VerificationError it throws (fails the test if it does not). */
function failure(fn: () => unknown): VerificationError {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(VerificationError)
    return err as VerificationError
  }
  throw new Error('expected a VerificationError, nothing was thrown')
}

function expectFailure(fn: () => unknown, reason: VerificationFailure, message: RegExp): void {
  const err = failure(fn)
  expect(err.reason).toBe(reason)
  expect(err.message).toMatch(message)
}

/** Flips one bit of byte `index` of a base64 field. */
function flipByte(b64: string, index: number): string {
  const bytes = Buffer.from(b64, 'base64')
  bytes[index] = bytes[index]! ^ 0x01
  return bytes.toString('base64')
}

/** A DSSE envelope signed here with node:crypto, for the error paths real tools would not produce. */
function signEnvelope(key: KeyObject, payloadType: string, payload: Buffer): DsseEnvelope {
  const sig = sign('sha256', pae(payloadType, payload), key).toString('base64')
  return { payloadType, payload: payload.toString('base64'), signatures: [{ keyid: '', sig }] }
}

const sshEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin' }

/** Runs ssh-keygen, the independent implementation of SSH fingerprints. */
async function sshKeygen(args: string[]): Promise<string> {
  try {
    return (await run('ssh-keygen', args, { env: sshEnv })).stdout
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new Error(
        'ssh-keygen is not installed: install openssh-client (apt-get install openssh-client)',
        { cause: err },
      )
    }
    throw err
  }
}

/** The SHA256:… field of `ssh-keygen -l -E sha256 -f <OpenSSH public key file>`. */
async function sshFingerprintOfFile(file: string): Promise<string> {
  const stdout = await sshKeygen(['-l', '-E', 'sha256', '-f', file])
  // "<bits> SHA256:<b64> <comment> (<type>)"
  const fingerprint = stdout.split(' ')[1]
  if (!fingerprint?.startsWith('SHA256:'))
    throw new Error(`unexpected ssh-keygen output: ${stdout}`)
  return fingerprint
}

/** ssh-keygen's fingerprint of a PEM public key, converted by ssh-keygen itself (ECDSA, RSA). */
async function sshKeygenFingerprint(pem: string, name: string): Promise<string> {
  const pemFile = path.join(work, `${name}.pem`)
  await writeFile(pemFile, pem)
  const sshFile = path.join(work, `${name}.ssh.pub`)
  await writeFile(sshFile, await sshKeygen(['-i', '-m', 'PKCS8', '-f', pemFile]))
  return sshFingerprintOfFile(sshFile)
}

describe('pae', () => {
  it('encodes type and body with their byte lengths', () => {
    expect(pae('http://example.com/HelloWorld', Buffer.from('hello world')).toString()).toBe(
      'DSSEv1 29 http://example.com/HelloWorld 11 hello world',
    )
    // Lengths count bytes, not characters.
    expect(pae('t/é', Buffer.from('ü€')).toString()).toBe('DSSEv1 4 t/é 5 ü€')
    expect(pae('x', Buffer.alloc(0)).toString()).toBe('DSSEv1 1 x 0 ')
  })
})

describe('parseDsseEnvelope', () => {
  it('reads the real Chains envelope', () => {
    expect(envelope.payloadType).toBe(IN_TOTO_PAYLOAD_TYPE)
    expect(envelope.signatures).toEqual([{ keyid: fixtureKeyId, sig: expect.any(String) }])
  })

  it.each([
    ['not JSON', '{"payloadType":', /not JSON/],
    ['an array', '[]', /not a JSON object/],
    ['no payloadType', '{"payload":"","signatures":[]}', /"payloadType" is missing/],
    ['no payload', '{"payloadType":"t","signatures":[]}', /"payload" is missing/],
    ['a non-base64 payload', '{"payloadType":"t","payload":"a!b","signatures":[]}', /not base64/],
    ['no signatures', '{"payloadType":"t","payload":"e30="}', /"signatures" is missing/],
    [
      'a signature without sig',
      '{"payloadType":"t","payload":"e30=","signatures":[{"keyid":"k"}]}',
      /signatures\[0\]\.sig is missing/,
    ],
    [
      'a numeric keyid',
      '{"payloadType":"t","payload":"e30=","signatures":[{"keyid":1,"sig":"AA=="}]}',
      /signatures\[0\]\.keyid is not a string/,
    ],
  ])('rejects %s', (_label, json, message) => {
    expect(() => parseDsseEnvelope(json)).toThrow(DsseFormatError)
    expect(() => parseDsseEnvelope(json)).toThrow(message)
  })

  it('treats a null keyid as absent', () => {
    const parsed = parseDsseEnvelope(
      '{"payloadType":"t","payload":"e30","signatures":[{"keyid":null,"sig":"AA"}]}',
    )
    expect(parsed.signatures).toEqual([{ sig: 'AA' }])
  })
})

describe('chainsKeyId', () => {
  it('is the keyid Chains wrote for the fixture key', () => {
    expect(chainsKeyId(publicKeyPem)).toBe(fixtureKeyId)
  })

  it('encodes an ecdsa-sha2-nistp256 blob as SSH does', () => {
    const blob = sshPublicKeyBlob(publicKeyPem)
    // 4+19 type, 4+8 curve, 4+65 point.
    expect(blob.length).toBe(104)
    expect(blob.subarray(0, 23).toString('latin1')).toBe('\0\0\0\x13ecdsa-sha2-nistp256')
    expect(blob[39]).toBe(0x04) // uncompressed point marker
  })

  it('agrees with ssh-keygen for the fixture key and for P-384, P-521 and RSA keys', async () => {
    expect(await sshKeygenFingerprint(publicKeyPem, 'fixture')).toBe(fixtureKeyId)
    const keys = {
      p384: generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey,
      p521: generateKeyPairSync('ec', { namedCurve: 'P-521' }).publicKey,
      // 2048-bit moduli have the top bit set: exercises the mpint sign byte.
      rsa: generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey,
    }
    for (const [name, key] of Object.entries(keys)) {
      const pem = key.export({ type: 'spki', format: 'pem' }).toString()
      expect(chainsKeyId(pem), name).toBe(await sshKeygenFingerprint(pem, name))
    }
  })

  it('agrees with ssh-keygen for an Ed25519 key ssh-keygen made', async () => {
    // ssh-keygen cannot import an Ed25519 PEM, so it makes the key and we read its public half.
    const file = path.join(work, 'ed25519')
    await sshKeygen(['-q', '-t', 'ed25519', '-N', '', '-C', '', '-f', file])
    const line = await readFile(`${file}.pub`, 'utf8')
    const blob = Buffer.from(line.split(' ')[1] ?? '', 'base64')
    // string "ssh-ed25519" (4 + 11 bytes), then string key (4 + 32 bytes).
    expect(blob.subarray(4, 15).toString('latin1')).toBe('ssh-ed25519')
    const x = blob.subarray(19, 51).toString('base64url')
    const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x }, format: 'jwk' })
    expect(chainsKeyId(key)).toBe(await sshFingerprintOfFile(`${file}.pub`))
  })
})

describe('verifyDsse and verifyAttestation on the real Chains attestation', () => {
  it('verifies and reports the keyid', () => {
    const verified = verifyDsse(envelope, publicKeyPem)
    expect(verified.keyid).toBe(fixtureKeyId)
    expect(verified.signature.keyid).toBe(fixtureKeyId)
    expect(verified.signatureIndex).toBe(0)
    expect(verified.payload.equals(Buffer.from(envelope.payload, 'base64'))).toBe(true)
  })

  it('returns the in-toto Statement', () => {
    const statement = verifyAttestation(envelope, publicKeyPem)
    expect(statement.predicateType).toBe('https://slsa.dev/provenance/v0.2')
    expect(statement.subject).toEqual([
      {
        name: 'quay.io/mmortari/ml-iris',
        digest: { sha256: 'bf64e877c24670cf517f52df470beafc611840707cf8ee45535cd1d8313784de' },
      },
    ])
  })

  it('rejects a payload with one byte changed', () => {
    const payloadLength = Buffer.from(envelope.payload, 'base64').length
    for (const index of [0, Math.floor(payloadLength / 2), payloadLength - 1]) {
      const tampered = { ...envelope, payload: flipByte(envelope.payload, index) }
      expectFailure(() => verifyAttestation(tampered, publicKeyPem), 'signature', /does not match/)
    }
  })

  it('rejects a signature with one byte changed', () => {
    const sig = envelope.signatures[0]!.sig
    // Byte 10 lies inside r; the last byte inside s.
    for (const index of [10, Buffer.from(sig, 'base64').length - 1]) {
      const tampered = {
        ...envelope,
        signatures: [{ ...envelope.signatures[0]!, sig: flipByte(sig, index) }],
      }
      expectFailure(() => verifyDsse(tampered, publicKeyPem), 'signature', /no signature verifies/)
    }
  })

  it('rejects another key, naming it', () => {
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey
    const err = failure(() => verifyAttestation(envelope, other))
    expect(err.reason).toBe('signature')
    expect(err.message).toContain(`public key ${chainsKeyId(other)}`)
    expect(err.message).toContain(`keyid ${fixtureKeyId}): does not match`)
  })

  it('rejects another payload type (PAE binds it) and a non-in-toto type for attestations', () => {
    const retyped = { ...envelope, payloadType: 'application/json' }
    expectFailure(() => verifyDsse(retyped, publicKeyPem), 'signature', /does not match/)
    expectFailure(
      () => verifyAttestation(retyped, publicKeyPem),
      'payload-type',
      /expected "application\/vnd.in-toto\+json"/,
    )
  })

  it('finds the matching signature among several', () => {
    const bogus = { keyid: 'SHA256:other', sig: flipByte(envelope.signatures[0]!.sig, 10) }
    const notBase64 = { sig: '%%%' }
    const several = { ...envelope, signatures: [bogus, notBase64, envelope.signatures[0]!] }
    expect(verifyDsse(several, publicKeyPem).signatureIndex).toBe(2)
  })

  it('rejects an envelope without signatures and a key that is not a key', () => {
    expectFailure(
      () => verifyDsse({ ...envelope, signatures: [] }, publicKeyPem),
      'no-signature',
      /no signatures/,
    )
    expectFailure(() => verifyDsse(envelope, 'not a pem'), 'key', /not a PEM public key/)
  })
})

describe('verifyAttestation on payloads signed here', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })

  it('rejects a validly signed payload that is not a Statement', () => {
    const signed = signEnvelope(privateKey, IN_TOTO_PAYLOAD_TYPE, Buffer.from('{"_type":"nope"}'))
    expectFailure(() => verifyAttestation(signed, publicKey), 'payload', /not an in-toto Statement/)
  })

  it('verifies RSA (PKCS#1 v1.5, SHA-256) signatures and refuses Ed25519 keys', () => {
    const statement = Buffer.from(
      JSON.stringify({
        _type: 'https://in-toto.io/Statement/v1',
        subject: [],
        predicateType: 'x',
        predicate: {},
      }),
    )
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 })
    const rsaEnvelope = signEnvelope(rsa.privateKey, IN_TOTO_PAYLOAD_TYPE, statement)
    expect(verifyAttestation(rsaEnvelope, rsa.publicKey).predicateType).toBe('x')
    expectFailure(() => verifyAttestation(rsaEnvelope, publicKey), 'signature', /does not match/)

    const ed = generateKeyPairSync('ed25519')
    expectFailure(
      () => verifyAttestation(rsaEnvelope, ed.publicKey),
      'key',
      /unsupported public key type ed25519/,
    )
  })
})
