import type { Credentials } from '../oci/auth.js'
import { credentialStoreFor } from '../registry-client.js'
import { applyObject } from '../kube/apply.js'
import { apiMessage, type Kube } from '../kube/client.js'
import { UserError } from '../errors.js'
import type { RegistryAuth } from '../plan.js'
import { maskSecret } from '../secrets.js'

/** The Secret the pipeline's service account pushes and pulls with. */
export const REGISTRY_SECRET = 'oml-chains-registry'

/** `~/.docker/config.json` as kubelet, Tekton and Chains read it from a Secret. */
export interface DockerConfigJson {
  auths: Record<string, { username: string; password: string; auth: string }>
}

export interface RegistryCredentials {
  /** The Secret's name, or undefined when no registry the run uses needs credentials. */
  secret?: string
  /** Registries that got credentials. */
  registries: string[]
}

/**
 * Credentials for exactly the registries the run uses: the inputs' for the
 * image's registry, the docker config's for the others. Registries without
 * credentials are left out (anonymous).
 */
export async function credentialsFor(
  auth: RegistryAuth,
  registries: readonly string[],
): Promise<Map<string, Credentials>> {
  const store = await credentialStoreFor(auth)
  const found = new Map<string, Credentials>()
  for (const registry of new Set(registries)) {
    const credentials = store.get(registry)
    if (credentials) found.set(registry, credentials)
  }
  return found
}

/** The docker config JSON for some credentials; masked before it exists anywhere else. */
export function dockerConfigJson(credentials: Map<string, Credentials>): string {
  const auths: DockerConfigJson['auths'] = {}
  for (const [registry, { username, password }] of credentials) {
    auths[registry] = {
      username,
      password,
      auth: Buffer.from(`${username}:${password}`).toString('base64'),
    }
  }
  const json = JSON.stringify({ auths } satisfies DockerConfigJson)
  maskSecret(json)
  maskSecret(Buffer.from(json).toString('base64'))
  return json
}

/**
 * What the seed did by hand (`kubectl create secret docker-registry` and
 * patching the service account), for the run's namespace: a
 * kubernetes.io/dockerconfigjson Secret with only the registries the run
 * needs, listed in the service account's `secrets` (Tekton's credential
 * initialisation) and `imagePullSecrets` (Chains' registry client, kubelet).
 */
export async function linkRegistryCredentials(
  kube: Kube,
  target: { namespace: string; serviceAccount: string },
  auth: RegistryAuth,
  registries: readonly string[],
  deadline: number,
): Promise<RegistryCredentials> {
  const credentials = await credentialsFor(auth, registries)
  if (credentials.size === 0) return { registries: [] }
  const { namespace, serviceAccount } = target
  await applyObject(
    kube,
    {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: REGISTRY_SECRET, namespace },
      type: 'kubernetes.io/dockerconfigjson',
      data: { '.dockerconfigjson': Buffer.from(dockerConfigJson(credentials)).toString('base64') },
    },
    deadline,
  )
  await linkToServiceAccount(kube, namespace, serviceAccount)
  return { secret: REGISTRY_SECRET, registries: [...credentials.keys()] }
}

/** The run's namespace and the pipeline's service account, created when missing (server-side apply). */
export async function prepareRunNamespace(
  kube: Kube,
  target: { namespace: string; serviceAccount: string },
  deadline: number,
): Promise<void> {
  const { namespace, serviceAccount } = target
  await applyObject(
    kube,
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } },
    deadline,
  )
  await applyObject(
    kube,
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: serviceAccount, namespace } },
    deadline,
  )
}

/** Adds the Secret to the service account's lists, keeping whatever else is there. */
async function linkToServiceAccount(kube: Kube, namespace: string, name: string): Promise<void> {
  let account
  try {
    account = await kube.core.readNamespacedServiceAccount({ name, namespace })
  } catch (err) {
    throw new UserError(`service account ${namespace}/${name} cannot be read: ${apiMessage(err)}`)
  }
  const secrets = account.secrets ?? []
  const pulls = account.imagePullSecrets ?? []
  if (
    secrets.some((s) => s.name === REGISTRY_SECRET) &&
    pulls.some((s) => s.name === REGISTRY_SECRET)
  ) {
    return
  }
  account.secrets = [
    ...secrets.filter((s) => s.name !== REGISTRY_SECRET),
    { name: REGISTRY_SECRET },
  ]
  account.imagePullSecrets = [
    ...pulls.filter((s) => s.name !== REGISTRY_SECRET),
    { name: REGISTRY_SECRET },
  ]
  try {
    // A replace carrying the resourceVersion read: a concurrent change makes it fail, not vanish.
    await kube.core.replaceNamespacedServiceAccount({ name, namespace, body: account })
  } catch (err) {
    throw new UserError(
      `linking ${REGISTRY_SECRET} to service account ${namespace}/${name} failed: ${apiMessage(err)}`,
    )
  }
}
