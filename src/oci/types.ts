/**
 * Shapes of the OCI image spec / Docker distribution documents we read and write.
 * Only the fields this project uses are typed strictly; the rest are optional.
 */

/** Manifest, index, config and layer media types we meet. */
export const MediaType = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
  ociLayerTar: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerTarGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerTarGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  /** Config type oras-py gives artifacts without one (the seed's dataset). */
  unknownConfig: 'application/vnd.unknown.config.v1+json',
  /** Layer of a cosign `.sig` manifest: the signed payload. */
  cosignSimpleSigning: 'application/vnd.dev.cosign.simplesigning.v1+json',
  /** Layer of a cosign/Chains `.att` manifest: a DSSE envelope. */
  dsseEnvelope: 'application/vnd.dsse.envelope.v1+json',
} as const

export type KnownMediaType = (typeof MediaType)[keyof typeof MediaType]

/** Manifest types that describe one image/artifact. */
export const imageManifestTypes: readonly string[] = [
  MediaType.ociManifest,
  MediaType.dockerManifest,
]
/** Manifest types that list other manifests. */
export const indexManifestTypes: readonly string[] = [
  MediaType.ociIndex,
  MediaType.dockerManifestList,
]
/** Everything a tag may point at; the Accept list for resolving a reference. */
export const allManifestTypes: readonly string[] = [...imageManifestTypes, ...indexManifestTypes]

export const Annotation = {
  /** File name of a layer (oras, omlmd). */
  title: 'org.opencontainers.image.title',
  /** Base64 DER ECDSA signature of a `.sig` layer's payload (cosign). */
  cosignSignature: 'dev.cosignproject.cosign/signature',
  /** Fulcio certificate of a keyless cosign signature (absent with keys). */
  cosignCertificate: 'dev.sigstore.cosign/certificate',
  /** Rekor bundle of a cosign signature (absent with `transparency.enabled=false`). */
  cosignBundle: 'dev.sigstore.cosign/bundle',
  /** Predicate type of an `.att` layer (cosign, Chains). */
  predicateType: 'predicateType',
} as const

/** `sha256:<64 lowercase hex>`: the only digest algorithm this project accepts. */
export type Digest = `sha256:${string}`

export interface Platform {
  architecture: string
  os: string
  'os.version'?: string
  'os.features'?: string[]
  variant?: string
}

/** OCI content descriptor (image-spec descriptor.md). */
export interface Descriptor {
  mediaType: string
  digest: Digest
  size: number
  urls?: string[]
  annotations?: Record<string, string>
  data?: string
  artifactType?: string
  platform?: Platform
}

/** OCI image manifest or Docker schema 2 manifest: one config and its layers. */
export interface ImageManifest {
  schemaVersion: 2
  mediaType?: string
  artifactType?: string
  config: Descriptor
  layers: Descriptor[]
  subject?: Descriptor
  annotations?: Record<string, string>
}

/** OCI image index or Docker manifest list. */
export interface ImageIndex {
  schemaVersion: 2
  mediaType?: string
  artifactType?: string
  manifests: Descriptor[]
  subject?: Descriptor
  annotations?: Record<string, string>
}

export type Manifest = ImageManifest | ImageIndex

export function isIndex(manifest: Manifest): manifest is ImageIndex {
  return 'manifests' in manifest
}

/** Body of a registry error response (distribution-spec "Error Codes"). */
export interface RegistryErrorBody {
  errors?: { code?: string; message?: string; detail?: unknown }[]
}
