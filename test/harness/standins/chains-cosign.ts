/**
 * The Chains stand-in's signer: the key in `tekton-chains/signing-secrets`,
 * read through the API at every signing (as Chains reads its mounted key
 * files), and real cosign to sign and attest with it.
 */
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { openPrivateKey } from '../../../src/cosign/keys.js'
import { statusOf, type Kube } from '../../../src/kube/client.js'
import { runCosign } from '../cosign.js'
import { CHAINS_NAMESPACE, type ChainsConfig } from './chains-config.js'
import { errorText, type ZapLog } from './chains-log.js'

const SIGNING_SECRET = 'signing-secrets'

/** The key Chains signs with, loaded from the signing secret. */
export interface Signer {
  privateKeyPem: string
  password: string
}

export function cosignFlags(config: ChainsConfig): string[] {
  return [
    '--key',
    'cosign.key',
    '--tlog-upload=false',
    ...(config.insecure ? ['--allow-insecure-registry'] : []),
    '--yes',
  ]
}

/** Runs cosign with the key in a private temp dir (mode 600), the password only in its env. */
export async function withCosign<T>(
  signer: Signer,
  use: (cosign: {
    dir: string
    run(args: string[]): Promise<{ stdout: string; stderr: string }>
  }) => Promise<T>,
): Promise<T> {
  const dir = await mkdtemp(path.join(tmpdir(), 'chains-stand-in-'))
  try {
    await chmod(dir, 0o700)
    await writeFile(path.join(dir, 'cosign.key'), signer.privateKeyPem, { mode: 0o600 })
    return await use({
      dir,
      run: (args) => runCosign({ cwd: dir, home: dir, password: signer.password }, args),
    })
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

/**
 * The signer Chains would load from its mounted secret: the cosign key opened
 * with its password. Like Chains, a key that cannot be loaded is only logged.
 * `withheld` plays mode `signed-without-signing`: no signer, whatever the key.
 */
export async function loadSigner(
  kube: Kube,
  type: string,
  withheld: boolean,
  log: ZapLog,
): Promise<Signer | undefined> {
  if (type !== 'x509') {
    log.warn(`error configuring ${type} signer: not played by the Chains stand-in`)
    return undefined
  }
  if (withheld) {
    log.warn(
      'error configuring x509 signer: withheld by the Chains stand-in (signed-without-signing)',
    )
    return undefined
  }
  let data: Record<string, string> = {}
  try {
    const secret = await kube.core.readNamespacedSecret({
      name: SIGNING_SECRET,
      namespace: CHAINS_NAMESPACE,
    })
    data = secret.data ?? {}
  } catch (err) {
    if (statusOf(err) !== 404) throw err
  }
  const file = (name: string) =>
    data[name] === undefined ? undefined : Buffer.from(data[name], 'base64').toString('utf8')
  const privateKeyPem = file('cosign.key')
  if (privateKeyPem === undefined) {
    log.warn(
      'error configuring x509 signer: no valid private key found, looked for: [x509.pem, cosign.key]',
    )
    return undefined
  }
  const password = file('cosign.password')
  if (password === undefined) {
    log.warn(
      'error configuring x509 signer: reading cosign.password file: open /etc/signing-secrets/cosign.password: no such file or directory',
    )
    return undefined
  }
  try {
    await openPrivateKey(privateKeyPem, password)
  } catch (err) {
    log.warn(`error configuring x509 signer: ${errorText(err)}`)
    return undefined
  }
  return { privateKeyPem, password }
}
