/**
 * Every pinned version and checksum the action uses by default, in one place.
 * Changing a default means changing it here; README's tables are generated from it.
 */

export type Platform = 'linux-amd64' | 'linux-arm64'

export interface PinnedBinary {
  version: string
  /** sha256 of each platform's release asset, as published next to it. */
  sha256: Partial<Record<Platform, string>>
}

export const kind: PinnedBinary = {
  version: 'v0.32.0',
  sha256: {
    'linux-amd64': '50030de23cf40a18505f20426f6a8506bedf13c6e509244bd1fa9463721b0f54',
    'linux-arm64': 'b92cd615e97585de8ddade28ed5cd7feb4248d717c233eea5b03c37298900f5d',
  },
}

/** Known kind releases other than the default, with their published checksums. */
export const otherKindReleases: PinnedBinary[] = [
  {
    version: 'v0.31.0',
    sha256: {
      'linux-amd64': 'eb244cbafcc157dff60cf68693c14c9a75c4e6e6fedaf9cd71c58117cb93e3fa',
      'linux-arm64': '8e1014e87c34901cc422a1445866835d1e666f2a61301c27e722bdeab5a1f7e4',
    },
  },
]

/** kind node images by Kubernetes version, pinned by digest (the ones kind v0.32.0 lists). */
export const kindNodeImages: Readonly<Record<string, string>> = {
  'v1.36.1':
    'kindest/node:v1.36.1@sha256:3489c7674813ba5d8b1a9977baea8a6e553784dab7b84759d1014dbd78f7ebd5',
  'v1.35.5':
    'kindest/node:v1.35.5@sha256:ce977ae6d65918d0b58a5f8b5e940429c2ce42fa3a5619ec2bbc60b949c0ac95',
  'v1.34.8':
    'kindest/node:v1.34.8@sha256:02722c2dedddcfc00febf5d27fbeb9b7b2c14294c82109ff4a85d89ac9ba3256',
}

export const kubernetesVersion = 'v1.36.1'

/** Tekton Pipelines: LTS line. No checksum file is published for release.yaml. */
export const tektonPipelinesVersion = 'v1.15.0'

/** Tekton Chains: v0.29 LTS. */
export const tektonChainsVersion = 'v0.29.2'

/** Enterprise Contract (conforma/cli): a versioned tag, never the rolling "snapshot" release. */
export const ecVersion = 'v0.9.115'

/**
 * SHA-256 of Tekton release manifests (`pipeline@vX.Y.Z`, `chains@vX.Y.Z`)
 * confirmed from two origins. None is recorded yet: until one is, each
 * download is checked against the digest GitHub reports for the release
 * asset, and the digest applied is reported in the summary.
 */
export const tektonReleaseSha256: Readonly<Record<string, string>> = {}

/** The embedded registry's image (distribution), pinned by the digest of its multi-platform index. */
export const registryImage =
  'registry:3.1.1@sha256:1be55279f18a2fe1a74edf2664cac61c1bea305b7b4642dab412e7affdcb3e33'

/**
 * The trainer image (built from Containerfile) that runs the training step,
 * pinned by digest. release.yml publishes it and records its digest here; until
 * a release has, there is no default and `trainer-image` must be given.
 */
export const trainerImage: string | undefined = undefined

/**
 * ec releases whose binaries' sha256 is confirmed from an origin other than
 * the release itself. None yet: until one is, installs check each binary
 * against the `.sha256` file conforma/cli publishes next to it.
 */
export const ecPins: readonly PinnedBinary[] = []
