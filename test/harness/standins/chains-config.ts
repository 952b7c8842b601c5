/**
 * `tekton-chains/chains-config` as the Chains stand-in plays it, read through
 * the API at every signing (Chains watches the ConfigMap). What it does not
 * play throws `Unsupported`: the run is then marked failed, the reason logged.
 */
import { statusOf, type Kube } from '../../../src/kube/client.js'

export const CHAINS_NAMESPACE = 'tekton-chains'
const CHAINS_CONFIG = 'chains-config'
const DEFAULT_BUILDER_ID = 'https://tekton.dev/chains/v2'

/** One signable type of Chains' config (artifacts.taskrun / pipelinerun / oci). */
export interface ArtifactConfig {
  format: string
  storage: Set<string>
  signer: string
}
export interface ChainsConfig {
  taskrun: ArtifactConfig
  pipelinerun: ArtifactConfig & { deepInspection: boolean }
  oci: ArtifactConfig
  builderId: string
  insecure: boolean
}

/** A config the stand-in does not play: the run is marked failed, with this reason logged. */
export class Unsupported extends Error {}

export async function readConfig(kube: Kube): Promise<ChainsConfig> {
  let data: Record<string, string> = {}
  try {
    const map = await kube.core.readNamespacedConfigMap({
      name: CHAINS_CONFIG,
      namespace: CHAINS_NAMESPACE,
    })
    data = map.data ?? {}
  } catch (err) {
    if (statusOf(err) !== 404) throw err
  }
  const artifact = (kind: string, format: string): ArtifactConfig => {
    const storage = new Set(
      (data[`artifacts.${kind}.storage`] ?? (kind === 'oci' ? 'oci' : 'tekton'))
        .split(',')
        .map((s) => s.trim()),
    )
    const config = {
      format: data[`artifacts.${kind}.format`] ?? format,
      storage,
      signer: data[`artifacts.${kind}.signer`] ?? 'x509',
    }
    const enabled = config.signer !== 'none' && !(storage.size === 1 && storage.has(''))
    const wanted = kind === 'oci' ? ['simplesigning'] : ['slsa/v1', 'in-toto']
    if (enabled && !wanted.includes(config.format)) {
      throw new Unsupported(
        `artifacts.${kind}.format ${config.format}: the Chains stand-in plays only ${wanted.join(', ')}`,
      )
    }
    const other = [...storage].filter((s) => s !== 'oci')
    if (enabled && other.length > 0) {
      throw new Unsupported(
        `artifacts.${kind}.storage ${other.join(',')}: the Chains stand-in stores only in oci`,
      )
    }
    return config
  }
  if (['true', 'manual'].includes(data['transparency.enabled'] ?? '')) {
    throw new Unsupported('transparency.enabled: the Chains stand-in has no Rekor')
  }
  if (data['storage.oci.repository']) {
    throw new Unsupported('storage.oci.repository: not played by the Chains stand-in')
  }
  if ((data['storage.oci.encoding-format'] ?? 'dsse') !== 'dsse') {
    throw new Unsupported('storage.oci.encoding-format: the Chains stand-in writes only dsse')
  }
  return {
    taskrun: artifact('taskrun', 'in-toto'),
    pipelinerun: {
      ...artifact('pipelinerun', 'in-toto'),
      deepInspection: data['artifacts.pipelinerun.enable-deep-inspection'] === 'true',
    },
    oci: artifact('oci', 'simplesigning'),
    builderId: data['builder.id'] || DEFAULT_BUILDER_ID,
    insecure: data['storage.oci.repository.insecure'] === 'true',
  }
}
