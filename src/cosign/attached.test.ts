/**
 * verifyImageAttachments against a real registry holding what real cosign
 * (v2.6.5) writes: the `sha256-<hex>.sig` / `.att` tags Chains leaves too.
 */
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCosign } from '../../test/harness/cosign.js'
import {
  cosignAttest,
  pushTestImage,
  signAndAttest,
  testPredicateFile,
  writeImagePredicate,
  type PushedImage,
} from '../../test/harness/images.js'
import { startRegistry, type TestRegistry } from '../../test/harness/registry.js'
import { repoRoot } from '../../test/harness/tools.js'
import { RegistryClient } from '../oci/client.js'
import { isIndex } from '../oci/types.js'
import { summarizeProvenance } from '../provenance/summary.js'
import { SLSA_PROVENANCE_V02 } from '../provenance/types.js'
import { AttachmentError, verifyImageAttachments } from './attached.js'

const password = 'attached-test password'

let registry: TestRegistry
let client: RegistryClient
let work: string
let home: string
let keyDir: string
let otherKeyDir: string
let publicKey: string
let otherPublicKey: string

/** A key pair made by `cosign generate-key-pair` in a new directory. */
async function cosignKeyPair(name: string): Promise<string> {
  const dir = path.join(work, name)
  await mkdir(dir)
  await runCosign({ cwd: dir, home, password }, ['generate-key-pair'])
  return dir
}

let images = 0
/** A new image in its own repository, so attachments of one test never reach another. */
function push(): Promise<PushedImage> {
  images++
  return pushTestImage(client, registry.host, `models/iris-${images}`, 'v1')
}

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'oml-attached-'))
  home = path.join(work, 'home')
  await mkdir(home)
  ;[registry, keyDir, otherKeyDir] = await Promise.all([
    startRegistry(),
    cosignKeyPair('key'),
    cosignKeyPair('other-key'),
  ])
  client = new RegistryClient({ insecure: () => true })
  publicKey = await readFile(path.join(keyDir, 'cosign.pub'), 'utf8')
  otherPublicKey = await readFile(path.join(otherKeyDir, 'cosign.pub'), 'utf8')
})

afterAll(async () => {
  await registry?.stop()
  if (work) await rm(work, { recursive: true, force: true })
})

describe('verifyImageAttachments', () => {
  it('verifies an image cosign signed and attested, and reads its provenance', async () => {
    const image = await push()
    await signAndAttest({ image, keyDir, password, home, predicateFile: testPredicateFile })

    const attached = await verifyImageAttachments(client, image.ref, publicKey)
    expect(attached.image).toEqual(image.ref)
    expect(attached.rejected).toEqual([])
    expect(attached.signatures).toHaveLength(1)
    // cosign signs the repository and the manifest digest it pushed.
    expect(attached.signatures[0]?.critical.identity['docker-reference']).toBe(
      `${registry.host}/${image.ref.repository}`,
    )
    expect(attached.signatures[0]?.critical.image['docker-manifest-digest']).toBe(image.digest)

    expect(attached.attestations).toHaveLength(1)
    const statement = attached.attestations[0]!.statement
    expect(statement.predicateType).toBe(SLSA_PROVENANCE_V02)
    expect(statement.subject).toEqual([
      {
        name: `${registry.host}/${image.ref.repository}`,
        digest: { sha256: image.digest.slice('sha256:'.length) },
      },
    ])
    const summary = summarizeProvenance(statement)
    expect(summary.dataset).toEqual({
      url: 'registry.local:5000/ml-iris:data',
      digest: 'sha256:5c6a2d4e8f0b1c3d5e7f9a0b2c4d6e8f0a1b3c5d7e9f1a2b4c6d8e0f2a3b5c7d',
    })
    // The attested predicate is about this image, as Chains' would be.
    expect(summary.image).toEqual({ url: image.tagged, digest: image.digest })
  })

  it('fails naming .sig when the image is attested but not signed', async () => {
    const image = await push()
    const predicateFile = await writeImagePredicate(home, testPredicateFile, image)
    await cosignAttest({ image, keyDir, password, home, predicateFile })
    // The .att really is there: the failure is about the missing .sig alone.
    const found = await client.findCosignAttachments(image.ref, image.digest)
    expect(found.attestations).toBeDefined()
    expect(found.signatures).toBeUndefined()

    const failure = verifyImageAttachments(client, image.ref, publicKey)
    await expect(failure).rejects.toBeInstanceOf(AttachmentError)
    await expect(failure).rejects.toThrow(
      `${image.pinned} has no .sig (signature) in ${registry.host}`,
    )
  })

  it('fails naming both .sig and .att when the image has neither', async () => {
    const image = await push()
    const failure = verifyImageAttachments(client, image.ref, publicKey)
    await expect(failure).rejects.toBeInstanceOf(AttachmentError)
    await expect(failure).rejects.toThrow(
      `${image.pinned} has no .sig (signature) and no .att (attestations) in ${registry.host}`,
    )
  })

  it('fails when nothing verifies with the public key given', async () => {
    const image = await push()
    await signAndAttest({ image, keyDir, password, home, predicateFile: testPredicateFile })
    const chainsKey = await readFile(path.join(repoRoot, 'test/fixtures/chains-real/cosign.pub'))

    const failure = verifyImageAttachments(client, image.ref, chainsKey.toString('utf8'))
    await expect(failure).rejects.toBeInstanceOf(AttachmentError)
    await expect(failure).rejects.toThrow(/: no signature verifies with the public key \(/)
  })

  it('accepts an image whose .att also holds a layer signed with another key', async () => {
    const image = await push()
    await signAndAttest({ image, keyDir, password, home, predicateFile: testPredicateFile })
    // A second attestation by another key: cosign appends it to the same .att tag.
    const predicateFile = await writeImagePredicate(home, testPredicateFile, image)
    await cosignAttest({ image, keyDir: otherKeyDir, password, home, predicateFile })
    const { attestations: att } = await client.findCosignAttachments(image.ref, image.digest)
    if (!att || isIndex(att.manifest)) throw new Error('expected an .att image manifest')
    const [ours, theirs] = att.manifest.layers
    expect(att.manifest.layers).toHaveLength(2)

    const attached = await verifyImageAttachments(client, image.ref, publicKey)
    expect(attached.signatures).toHaveLength(1)
    expect(attached.attestations.map((a) => a.layer)).toEqual([ours?.digest])
    expect(attached.rejected).toEqual([
      { kind: 'att', layer: theirs?.digest, reason: expect.stringMatching(/does not match/) },
    ])

    // With the other key the attestation layer verifies, but no signature does.
    await expect(verifyImageAttachments(client, image.ref, otherPublicKey)).rejects.toThrow(
      /: no signature verifies with the public key/,
    )
  })
})
