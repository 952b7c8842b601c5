/**
 * A throwaway certificate authority for the harness: the test API server's
 * serving certificate, and the stand-ins that serve TLS to the API server
 * (the admission webhook). Keys come from node:crypto; certificates from
 * `openssl`, since node:crypto cannot issue X.509.
 */
import { execFile } from 'node:child_process'
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { isIP } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'

const execFileAsync = promisify(execFile)

export interface ServingCert {
  cert: string
  key: string
}

export interface TestCA {
  /** The CA certificate (PEM): what a client trusts, e.g. a webhook's caBundle. */
  caPem: string
  /** A serving certificate for these DNS names and IP addresses, signed by the CA. */
  issue(names: string[]): Promise<ServingCert>
  /**
   * A client certificate: Kubernetes takes the user name from its CN and the
   * groups from its O (e.g. the API server's certificate for kubelets).
   */
  issueClient(commonName: string, organization?: string): Promise<ServingCert>
  /** Removes the key files. */
  dispose(): Promise<void>
}

function ecKeyPem(): string {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
  return privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
}

// Our own config file, so nothing from the system's openssl.cnf adds extensions.
function opensslConfig(subjectAltName: string): string {
  return [
    '[req]',
    'distinguished_name = dn',
    'prompt = no',
    '[dn]',
    'CN = oml-chains test CA',
    '[ca]',
    'basicConstraints = critical,CA:TRUE',
    'keyUsage = critical,keyCertSign,cRLSign,digitalSignature',
    'subjectKeyIdentifier = hash',
    '[serving]',
    'basicConstraints = critical,CA:FALSE',
    'keyUsage = critical,digitalSignature,keyEncipherment',
    'extendedKeyUsage = serverAuth',
    `subjectAltName = ${subjectAltName}`,
    'authorityKeyIdentifier = keyid',
    '[client]',
    'basicConstraints = critical,CA:FALSE',
    'keyUsage = critical,digitalSignature,keyEncipherment',
    'extendedKeyUsage = clientAuth',
    'authorityKeyIdentifier = keyid',
    '',
  ].join('\n')
}

export async function makeTestCA(): Promise<TestCA> {
  const dir = await mkdtemp(path.join(tmpdir(), 'oml-standin-ca-'))
  const file = (name: string) => path.join(dir, name)
  const common = ['-days', '2', '-sha256']
  await writeFile(file('ca.key'), ecKeyPem(), { mode: 0o600 })
  await writeFile(file('ca.cnf'), opensslConfig('IP:127.0.0.1'))
  await execFileAsync('openssl', [
    'req',
    '-x509',
    '-config',
    file('ca.cnf'),
    ...common,
    '-extensions',
    'ca',
    '-key',
    file('ca.key'),
    '-out',
    file('ca.crt'),
  ])
  const caPem = await readFile(file('ca.crt'), 'utf8')

  /** A key and a certificate signed by the CA, with the extensions of `section`. */
  const sign = async (
    section: 'serving' | 'client',
    subject: string,
    subjectAltName: string,
  ): Promise<ServingCert> => {
    const id = randomBytes(6).toString('hex')
    const key = ecKeyPem()
    await writeFile(file(`${id}.key`), key, { mode: 0o600 })
    await writeFile(file(`${id}.cnf`), opensslConfig(subjectAltName))
    await execFileAsync('openssl', [
      'req',
      '-x509',
      '-config',
      file(`${id}.cnf`),
      ...common,
      '-extensions',
      section,
      '-key',
      file(`${id}.key`),
      '-CA',
      file('ca.crt'),
      '-CAkey',
      file('ca.key'),
      '-subj',
      subject,
      '-out',
      file(`${id}.crt`),
    ])
    return { cert: await readFile(file(`${id}.crt`), 'utf8'), key }
  }

  return {
    caPem,
    issue(names) {
      if (names.length === 0) throw new Error('a serving certificate needs at least one name')
      const san = names.map((n) => (isIP(n) ? `IP:${n}` : `DNS:${n}`)).join(',')
      return sign('serving', `/CN=${names[0]}`, san)
    },
    issueClient(commonName, organization) {
      // openssl -subj takes `/` and `=` as separators: names with them are not ours to make.
      if (/[/=]/.test(commonName + (organization ?? ''))) {
        throw new Error(`a client certificate name must not hold / or =: ${commonName}`)
      }
      // The config's subjectAltName is only read by the serving section.
      return sign(
        'client',
        `${organization ? `/O=${organization}` : ''}/CN=${commonName}`,
        'IP:127.0.0.1',
      )
    },
    dispose: () => rm(dir, { recursive: true, force: true }),
  }
}
