import {
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  scryptSync,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { secretbox } from '@noble/ciphers/salsa.js'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { UserError } from '../errors.js'
import { repoRoot } from '../../test/harness/tools.js'
import {
  generateKeyPair,
  KeyError,
  LEGACY_PRIVATE_KEY_LABEL,
  openPrivateKey,
  PRIVATE_KEY_LABEL,
  publicKeyPemOf,
  SCRYPT_NS,
  type EncryptedKeyEnvelope,
  type ScryptN,
} from './keys.js'
import { decodePem, decodePemBlocks, encodePem, PemError } from './pem.js'

const fixtures = path.join(repoRoot, 'test', 'fixtures', 'cosign-keys')
const PASSWORD = 'correct horse battery staple ✓'

// The exact shape cosign writes (Go's encoding/json: compact, struct field order,
// padded standard base64). Checked against the real cosign fixture below too.
const ENVELOPE_SHAPE =
  /^\{"kdf":\{"name":"scrypt","params":\{"N":(32768|65536|131072),"r":8,"p":1\},"salt":"[A-Za-z0-9+/]{43}="\},"cipher":\{"name":"nacl\/secretbox","nonce":"[A-Za-z0-9+/]{32}"\},"ciphertext":"[A-Za-z0-9+/]+={0,2}"\}$/

function envelopeOf(pem: string): { label: string; json: string } {
  const block = decodePem(pem)
  return { label: block.label, json: block.body.toString('utf8') }
}

/** The envelope as parsed JSON, loose enough to break it on purpose. */
interface Editable {
  kdf: Record<string, unknown>
  cipher: Record<string, unknown>
  ciphertext?: unknown
}

function withEnvelope(pem: string, edit: (e: Editable) => void, label?: string) {
  const { label: oldLabel, json } = envelopeOf(pem)
  const e = JSON.parse(json) as Editable
  edit(e)
  return encodePem(label ?? oldLabel, Buffer.from(JSON.stringify(e)))
}

/**
 * Seals arbitrary DER in cosign's format, written separately from keys.ts so
 * the tests can put keys keys.ts refuses to make (P-384, Ed25519, junk) inside.
 */
function sealDer(der: Uint8Array, password: string, N: number = 32768): string {
  const salt = randomBytes(32)
  const nonce = randomBytes(24)
  const key = scryptSync(password, salt, 32, { N, r: 8, p: 1, maxmem: 512 * 1024 * 1024 })
  const envelope: EncryptedKeyEnvelope = {
    kdf: { name: 'scrypt', params: { N, r: 8, p: 1 }, salt: salt.toString('base64') },
    cipher: { name: 'nacl/secretbox', nonce: nonce.toString('base64') },
    ciphertext: Buffer.from(secretbox(key, nonce).seal(der)).toString('base64'),
  }
  return encodePem(PRIVATE_KEY_LABEL, Buffer.from(JSON.stringify(envelope)))
}

function pkcs8Of(key: KeyObject): Buffer {
  return key.export({ type: 'pkcs8', format: 'der' })
}

/** Awaits a rejection, checks it is a KeyError (a UserError), and that no secret leaks into it. */
async function keyError(p: Promise<unknown>, secrets: string[] = [PASSWORD]): Promise<string> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(KeyError)
  expect(err).toBeInstanceOf(UserError)
  const message = (err as Error).message
  expect(message).not.toContain('\n')
  for (const s of secrets) expect(message).not.toContain(s)
  return message
}

function signsAndVerifies(privateKey: KeyObject, publicKey: KeyObject): boolean {
  const data = Buffer.from('payload')
  return verify('sha256', data, publicKey, sign('sha256', data, privateKey))
}

// One shared key pair for the negative cases: scrypt at N=32768 costs ~100 ms a run.
const shared = generateKeyPair({ password: PASSWORD })

describe('generateKeyPair / openPrivateKey round trip', () => {
  it.each(SCRYPT_NS)('N=%i writes the cosign envelope and opens again', async (N: ScryptN) => {
    const pair = await generateKeyPair({ password: PASSWORD, scryptN: N })
    expect(pair.password).toBe(PASSWORD)
    expect(pair.privateKeyPem).toMatch(
      /^-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n([A-Za-z0-9+/=]{64}\n)*[A-Za-z0-9+/=]{1,64}\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n$/,
    )
    const { json } = envelopeOf(pair.privateKeyPem)
    expect(json).toMatch(ENVELOPE_SHAPE)
    const e = JSON.parse(json) as EncryptedKeyEnvelope
    expect(e.kdf.params.N).toBe(N)
    expect(Buffer.from(e.kdf.salt, 'base64')).toHaveLength(32)
    expect(Buffer.from(e.cipher.nonce, 'base64')).toHaveLength(24)

    const opened = await openPrivateKey(pair.privateKeyPem, PASSWORD)
    expect(opened.publicKeyPem).toBe(pair.publicKeyPem)
    expect(opened.privateKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1')
    expect(signsAndVerifies(opened.privateKey, createPublicKey(pair.publicKeyPem))).toBe(true)
    // Plaintext size of a P-256 PKCS#8 key with its public point, as cosign stores it.
    expect(Buffer.from(e.ciphertext, 'base64')).toHaveLength(16 + pkcs8Of(opened.privateKey).length)
  })

  it('defaults to N=32768 and a random URL-safe password', async () => {
    const a = await generateKeyPair()
    const b = await generateKeyPair({ password: '' }) // an unset action input
    expect(JSON.parse(envelopeOf(a.privateKeyPem).json).kdf.params.N).toBe(32768)
    for (const p of [a.password, b.password]) expect(p).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(a.password).not.toBe(b.password)
    expect(a.publicKeyPem).not.toBe(b.publicKeyPem)
    expect((await openPrivateKey(b.privateKeyPem, b.password)).publicKeyPem).toBe(b.publicKeyPem)
  })

  it('writes a public key that is SPKI PEM as node (and cosign) write it', async () => {
    const pair = await shared
    const pub = createPublicKey(pair.publicKeyPem)
    expect(pair.publicKeyPem).toBe(pub.export({ type: 'spki', format: 'pem' }))
    expect(pub.asymmetricKeyDetails?.namedCurve).toBe('prime256v1')
  })

  it('reads the older ENCRYPTED COSIGN PRIVATE KEY label', async () => {
    const pair = await shared
    const legacy = withEnvelope(pair.privateKeyPem, () => {}, LEGACY_PRIVATE_KEY_LABEL)
    expect(legacy).toContain(`-----BEGIN ${LEGACY_PRIVATE_KEY_LABEL}-----`)
    expect((await openPrivateKey(legacy, PASSWORD)).publicKeyPem).toBe(pair.publicKeyPem)
  })

  it('reads CRLF line endings and surrounding whitespace', async () => {
    const pair = await shared
    const crlf = `\n  ${pair.privateKeyPem.replace(/\n/g, '\r\n')}\r\n\n`
    expect((await openPrivateKey(crlf, PASSWORD)).publicKeyPem).toBe(pair.publicKeyPem)
  })

  it('rejects an N outside the accepted set when generating', async () => {
    await keyError(generateKeyPair({ scryptN: 16384 as ScryptN }))
  })
})

describe('openPrivateKey errors', () => {
  it('wrong password', async () => {
    const pair = await shared
    const msg = await keyError(openPrivateKey(pair.privateKeyPem, 'not the password'), [
      PASSWORD,
      'not the password',
    ])
    expect(msg).toMatch(/wrong password/)
  })

  it('tampered ciphertext fails authentication', async () => {
    const pair = await shared
    const tampered = withEnvelope(pair.privateKeyPem, (e) => {
      const ct = Buffer.from(e.ciphertext as string, 'base64')
      ct[ct.length - 1]! ^= 0x01
      e.ciphertext = ct.toString('base64')
    })
    expect(await keyError(openPrivateKey(tampered, PASSWORD))).toMatch(
      /secretbox authentication failed/,
    )
  })

  it('wrong label: an unencrypted PKCS#8 key', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const plain = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string
    const msg = await keyError(openPrivateKey(plain, PASSWORD), [PASSWORD, plain.split('\n')[1]!])
    expect(msg).toContain(
      "PEM label is 'PRIVATE KEY', expected 'ENCRYPTED SIGSTORE PRIVATE KEY' or 'ENCRYPTED COSIGN PRIVATE KEY'",
    )
  })

  it('a public key instead of the private key', async () => {
    const pair = await shared
    expect(await keyError(openPrivateKey(pair.publicKeyPem, PASSWORD))).toMatch(
      /PEM label is 'PUBLIC KEY'/,
    )
  })

  it('body that is not JSON, or not the envelope', async () => {
    const notJson = encodePem(PRIVATE_KEY_LABEL, Buffer.from('secret-ish bytes {'))
    const notJsonMsg = await keyError(openPrivateKey(notJson, PASSWORD), [PASSWORD, 'secret-ish'])
    expect(notJsonMsg).toMatch(/not cosign's encrypted key JSON/)
    const array = encodePem(PRIVATE_KEY_LABEL, Buffer.from('[1,2]'))
    expect(await keyError(openPrivateKey(array, PASSWORD))).toMatch(/needs 'kdf', 'cipher'/)
  })

  it('unknown kdf or cipher, naming what is accepted', async () => {
    const pair = await shared
    const kdf = withEnvelope(pair.privateKeyPem, (e) => (e.kdf.name = 'pbkdf2'))
    expect(await keyError(openPrivateKey(kdf, PASSWORD))).toMatch(
      /key derivation 'pbkdf2' is not supported, only 'scrypt'/,
    )
    const cipher = withEnvelope(pair.privateKeyPem, (e) => (e.cipher.name = 'aes-gcm'))
    expect(await keyError(openPrivateKey(cipher, PASSWORD))).toMatch(
      /cipher 'aes-gcm' is not supported, only 'nacl\/secretbox'/,
    )
  })

  it.each([
    ['N too small', { N: 16384, r: 8, p: 1 }, 'N=16384, r=8, p=1'],
    ['N not a power of the set', { N: 32769, r: 8, p: 1 }, 'N=32769'],
    ['r', { N: 32768, r: 16, p: 1 }, 'r=16'],
    ['p', { N: 32768, r: 8, p: 2 }, 'p=2'],
    ['N as a string', { N: '32768', r: 8, p: 1 }, `N='32768'`],
    ['missing r', { N: 32768, p: 1 }, 'r=missing'],
  ])('unsupported scrypt parameters: %s', async (_name, params, named) => {
    const pair = await shared
    const bad = withEnvelope(pair.privateKeyPem, (e) => (e.kdf.params = params))
    const msg = await keyError(openPrivateKey(bad, PASSWORD))
    expect(msg).toContain(named)
    expect(msg).toContain('accepted: N 32768, 65536, 131072 with r=8 and p=1')
  })

  it('bad salt, nonce or ciphertext encoding', async () => {
    const pair = await shared
    const cases: [(e: Editable) => void, RegExp][] = [
      [(e) => (e.kdf.salt = 'not base64!'), /salt is missing or not base64/],
      [(e) => (e.cipher.nonce = Buffer.alloc(12).toString('base64')), /nonce must be 24 bytes/],
      [(e) => delete e.ciphertext, /ciphertext is missing/],
      [(e) => (e.ciphertext = Buffer.alloc(16).toString('base64')), /too short/],
    ]
    for (const [edit, want] of cases) {
      expect(
        await keyError(openPrivateKey(withEnvelope(pair.privateKeyPem, edit), PASSWORD)),
      ).toMatch(want)
    }
  })

  it('a P-384 key in the same format decrypts but is refused', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' })
    const pem = sealDer(pkcs8Of(privateKey), PASSWORD)
    // The same sealing with a P-256 key opens: the refusal is about the curve only.
    const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const ok = await openPrivateKey(sealDer(pkcs8Of(p256.privateKey), PASSWORD), PASSWORD)
    expect(ok.publicKeyPem).toBe(publicKeyPemOf(p256.publicKey))
    expect(await keyError(openPrivateKey(pem, PASSWORD))).toMatch(
      /decrypts, but is an EC key on secp384r1; only ECDSA P-256 keys/,
    )
  })

  it('an Ed25519 key, or bytes that are not PKCS#8, are refused', async () => {
    const { privateKey } = generateKeyPairSync('ed25519')
    expect(
      await keyError(openPrivateKey(sealDer(pkcs8Of(privateKey), PASSWORD), PASSWORD)),
    ).toMatch(/is a key of type 'ed25519'/)
    const junk = sealDer(randomBytes(100), PASSWORD)
    expect(await keyError(openPrivateKey(junk, PASSWORD))).toMatch(/does not hold a PKCS#8/)
  })

  it.each([
    ['empty input', '', /empty, expected a PEM block/],
    ['not PEM', 'hello', /not PEM/],
    ['no END line', `-----BEGIN ${PRIVATE_KEY_LABEL}-----\nAAAA\n`, /has no END line/],
    [
      'mismatched END',
      `-----BEGIN ${PRIVATE_KEY_LABEL}-----\nAAAA\n-----END PUBLIC KEY-----\n`,
      /ends with a different label/,
    ],
    [
      'bad base64',
      `-----BEGIN ${PRIVATE_KEY_LABEL}-----\nAA*A\n-----END ${PRIVATE_KEY_LABEL}-----\n`,
      /invalid base64 body/,
    ],
    [
      'empty body',
      `-----BEGIN ${PRIVATE_KEY_LABEL}-----\n-----END ${PRIVATE_KEY_LABEL}-----\n`,
      /is empty/,
    ],
  ])('malformed PEM: %s', async (_name, pem, want) => {
    expect(await keyError(openPrivateKey(pem, PASSWORD))).toMatch(want)
  })

  it('malformed PEM: two blocks, or text after the block', async () => {
    const pair = await shared
    expect(
      await keyError(openPrivateKey(pair.privateKeyPem + pair.privateKeyPem, PASSWORD)),
    ).toMatch(/expected one PEM block, found 2/)
    expect(await keyError(openPrivateKey(`${pair.privateKeyPem}trailing`, PASSWORD))).toMatch(
      /unexpected text after the PEM block/,
    )
  })
})

describe('the key real cosign made (test/fixtures/cosign-keys)', () => {
  it('opens with its password file and gives the same public key', async () => {
    const [pem, password, pub] = await Promise.all([
      readFile(path.join(fixtures, 'chains-testdata-cosign.key'), 'utf8'),
      readFile(path.join(fixtures, 'chains-testdata-cosign.password')),
      readFile(path.join(fixtures, 'chains-testdata-cosign.pub'), 'utf8'),
    ])
    // The secret's cosign.password holds raw bytes, no newline.
    expect(password.includes(0x0a)).toBe(false)
    expect(envelopeOf(pem).label).toBe(LEGACY_PRIVATE_KEY_LABEL)
    expect(envelopeOf(pem).json).toMatch(ENVELOPE_SHAPE)

    const opened = await openPrivateKey(pem, password.toString('utf8'))
    expect(opened.publicKeyPem).toBe(`${pub.trimEnd()}\n`)
    expect(signsAndVerifies(opened.privateKey, createPublicKey(pub))).toBe(true)
  })

  it('does not open with a wrong password', async () => {
    const pem = await readFile(path.join(fixtures, 'chains-testdata-cosign.key'), 'utf8')
    expect(await keyError(openPrivateKey(pem, 'q'))).toMatch(/wrong password/)
  })
})

describe('masking', () => {
  afterEach(() => {
    vi.restoreAllMocks()
    vi.unstubAllEnvs()
  })

  it('registers the password and private key with the runner before returning them', async () => {
    vi.stubEnv('GITHUB_ACTIONS', 'true')
    const written: string[] = []
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      written.push(String(chunk))
      return true
    })
    const pair = await generateKeyPair()
    await openPrivateKey(pair.privateKeyPem, 'opened-with-this-password').catch(() => {})
    const masks = written.filter((w) => w.startsWith('::add-mask::')).map((w) => w.trim())
    expect(masks).toContain(`::add-mask::${pair.password}`)
    expect(masks).toContain('::add-mask::opened-with-this-password')
    // Every base64 line of the key is masked (the runner masks multi-line values per line).
    const bodyLines = pair.privateKeyPem.split('\n').filter((l) => l && !l.startsWith('-----'))
    for (const line of bodyLines) expect(masks).toContain(`::add-mask::${line}`)
  })
})

describe('pem', () => {
  it('wraps at 64 characters and ends with a newline, like Go encoding/pem', () => {
    // 60 bytes = 80 base64 characters: one full line and one of 16.
    const pem = encodePem('TEST', Buffer.alloc(60, 0xff))
    const lines = pem.split('\n')
    expect(lines[0]).toBe('-----BEGIN TEST-----')
    expect(lines[1]).toHaveLength(64)
    expect(lines[2]).toHaveLength(16)
    expect(lines[3]).toBe('-----END TEST-----')
    expect(lines[4]).toBe('')
    expect(decodePem(pem)).toEqual({ label: 'TEST', body: Buffer.alloc(60, 0xff) })
  })

  it('body lines of other lengths decode too; several blocks decode in order', () => {
    const text =
      '-----BEGIN A-----\nAQID\nBA==\n-----END A-----\n-----BEGIN B C-----\nBQ==\n-----END B C-----'
    expect(decodePemBlocks(text)).toEqual([
      { label: 'A', body: Buffer.from([1, 2, 3, 4]) },
      { label: 'B C', body: Buffer.from([5]) },
    ])
  })

  it('rejects headers, names the input, and throws PemError', () => {
    const text = '-----BEGIN A-----\nProc-Type: 4,ENCRYPTED\nAQID\n-----END A-----\n'
    expect(() => decodePem(text, 'my key')).toThrow(PemError)
    expect(() => decodePem(text, 'my key')).toThrow(/^my key: PEM headers are not supported$/)
  })
})
