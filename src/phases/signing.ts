import { generateKeyPair, KeyError, openPrivateKey, type OpenedKey } from '../cosign/keys.js'
import { InputError } from '../errors.js'
import type { Plan } from '../plan.js'

/** The key pair Chains signs with, as the signing secret holds it. */
export interface SigningKey {
  privateKeyPem: string
  publicKeyPem: string
  password: string
  /** True when the action made the key pair for this run. */
  generated: boolean
}

/**
 * Makes a fresh cosign key pair, or opens the user's key to prove the password
 * fits before anything is created with it. Secrets are masked by the key module.
 */
export async function prepareSigningKey(plan: Pick<Plan, 'signingKey'>): Promise<SigningKey> {
  if (plan.signingKey) {
    const { pem, password, source } = plan.signingKey
    let opened: OpenedKey
    try {
      opened = await openPrivateKey(pem, password)
    } catch (err) {
      if (!(err instanceof KeyError)) throw err
      throw new InputError(
        'signing-key',
        `${source} does not open with signing-key-password: ${err.message}`,
      )
    }
    return {
      privateKeyPem: plan.signingKey.pem,
      publicKeyPem: opened.publicKeyPem,
      password: plan.signingKey.password,
      generated: false,
    }
  }
  const pair = await generateKeyPair()
  return { ...pair, generated: true }
}
