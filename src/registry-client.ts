import * as core from '@actions/core'
import { CredentialStore } from './oci/auth.js'
import { RegistryClient } from './oci/client.js'
import { EMBEDDED_REGISTRY, type RegistryAuth } from './plan.js'

/**
 * Registries spoken to over plain HTTP: the embedded one (by its one name) and
 * loopback ones. Everything else is HTTPS; there is no switch to turn TLS off
 * for a remote registry.
 */
export function isPlainHttpRegistry(registry: string): boolean {
  const host = registry.replace(/:\d+$/, '')
  return (
    registry === EMBEDDED_REGISTRY ||
    host === 'localhost' ||
    host.endsWith('.localhost') ||
    /^127\.\d+\.\d+\.\d+$/.test(host) ||
    host === '[::1]'
  )
}

/** A run's credentials: the docker config's, overridden by the inputs' for the image's registry. */
export async function credentialStoreFor(auth: RegistryAuth): Promise<CredentialStore> {
  const credentials = auth.dockerConfigPath
    ? await CredentialStore.fromDockerConfig(auth.dockerConfigPath, { required: true })
    : new CredentialStore()
  if (auth.explicit) {
    const { registry, username, password } = auth.explicit
    credentials.set(registry, { username, password })
  }
  return credentials
}

/** The registry client of a run. */
export async function createRegistryClient(auth: RegistryAuth): Promise<RegistryClient> {
  return new RegistryClient({
    credentials: await credentialStoreFor(auth),
    insecure: isPlainHttpRegistry,
    retry: { log: (line) => core.info(line) },
  })
}
