import { errorMessage, UserError } from '../errors.js'
import type { FetchedManifest, RegistryClient } from '../oci/client.js'
import { formatReference, type Reference } from '../oci/reference.js'
import { Annotation, isIndex, MediaType, type Descriptor, type Digest } from '../oci/types.js'
import type { InTotoStatement } from '../provenance/types.js'
import { parseDsseEnvelope } from './dsse.js'
import type { PublicKeyInput } from './keyid.js'
import type { SimpleSigningPayload } from './simplesigning.js'
import { verifyAttestation, verifySimpleSignature } from './verify.js'

/** One `.att` layer whose DSSE signature verified. */
export interface VerifiedAttestation {
  /** Digest of the layer (the envelope blob) in the `.att` manifest. */
  layer: Digest
  statement: InTotoStatement
}

/** A layer of `.sig` or `.att` that did not verify, and why. */
export interface RejectedLayer {
  kind: 'sig' | 'att'
  layer: string
  reason: string
}

/** What the registry holds next to an image, checked against a public key. */
export interface ImageAttachments {
  image: Reference & { digest: Digest }
  signatures: SimpleSigningPayload[]
  attestations: VerifiedAttestation[]
  rejected: RejectedLayer[]
}

/** An image whose `.sig` or `.att` is missing, or holds nothing that verifies. */
export class AttachmentError extends UserError {
  override name = 'AttachmentError'
  constructor(
    message: string,
    /** What failed: one of them missing, or nothing in one that verifies. */
    readonly failed: 'missing' | 'signature' | 'attestation' = 'missing',
    /** How many attestations did verify (when the signatures did not). */
    readonly verifiedAttestations = 0,
  ) {
    super(message)
  }
}

/**
 * Fetches the image's `.sig` and `.att` (the tags cosign and Chains write) and
 * verifies every layer with the public key. Fails when either is missing or
 * has no layer that verifies: that is the check that catches a signer that
 * reported success without signing.
 */
export async function verifyImageAttachments(
  registry: RegistryClient,
  image: Reference & { digest: Digest },
  publicKey: PublicKeyInput,
): Promise<ImageAttachments> {
  const { signatures: sig, attestations: att } = await registry.findCosignAttachments(
    image,
    image.digest,
  )
  const name = formatReference(image)
  const missing = [!sig && '.sig (signature)', !att && '.att (attestations)'].filter(Boolean)
  if (missing.length > 0) {
    throw new AttachmentError(`${name} has no ${missing.join(' and no ')} in ${image.registry}`)
  }
  const rejected: RejectedLayer[] = []
  const [signatures, attestations] = await Promise.all([
    verifyLayers(registry, image, sig!, 'sig', rejected, async (layer, bytes) =>
      verifySimpleSignature(bytes, signatureOf(layer), publicKey, image.digest),
    ),
    verifyLayers(registry, image, att!, 'att', rejected, async (layer, bytes) => ({
      layer: layer.digest as Digest,
      statement: verifyAttestation(parseDsseEnvelope(bytes), publicKey),
    })),
  ])
  for (const [kind, verified] of [
    ['signature', signatures],
    ['attestation', attestations],
  ] as const) {
    if (verified.length === 0) {
      const reasons = rejected.map((r) => `${r.kind} layer ${r.layer}: ${r.reason}`).join('; ')
      throw new AttachmentError(
        `${name}: no ${kind} verifies with the public key (${reasons})`,
        kind,
        attestations.length,
      )
    }
  }
  return { image, signatures, attestations, rejected }
}

function signatureOf(layer: Descriptor): string {
  const signature = layer.annotations?.[Annotation.cosignSignature]
  if (!signature) throw new UserError(`no ${Annotation.cosignSignature} annotation`)
  return signature
}

const layerMediaType = { sig: MediaType.cosignSimpleSigning, att: MediaType.dsseEnvelope }

/** Verifies each layer of an attachment manifest; layers that fail are collected in `rejected`. */
async function verifyLayers<T>(
  registry: RegistryClient,
  image: Reference,
  attachment: FetchedManifest,
  kind: 'sig' | 'att',
  rejected: RejectedLayer[],
  verify: (layer: Descriptor, bytes: Uint8Array) => Promise<T>,
): Promise<T[]> {
  if (isIndex(attachment.manifest)) {
    rejected.push({ kind, layer: attachment.digest, reason: 'is an index, not an image manifest' })
    return []
  }
  const results = await Promise.all(
    attachment.manifest.layers.map(async (layer): Promise<T | undefined> => {
      if (layer.mediaType !== layerMediaType[kind]) {
        rejected.push({ kind, layer: layer.digest, reason: `media type ${layer.mediaType}` })
        return undefined
      }
      // A registry failure is an error; a layer that does not verify is a finding.
      const bytes = await registry.getBlob(image, layer.digest, layer.size)
      try {
        return await verify(layer, bytes)
      } catch (err) {
        if (!(err instanceof UserError)) throw err
        rejected.push({ kind, layer: layer.digest, reason: errorMessage(err) })
        return undefined
      }
    }),
  )
  return results.filter((result): result is Awaited<T> => result !== undefined)
}
