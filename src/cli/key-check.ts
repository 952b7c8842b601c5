import { openPrivateKey } from '../cosign/keys.js'
import { parseFlags, required, type Command } from './args.js'
import { readFlagFile, readPasswordFile } from './files.js'

const usage = `Usage: oml-chains key-check --key FILE --password-file FILE

Opens an encrypted cosign private key with its password and prints its public
key (PEM). Exits 1 with the reason when the key does not open.

Options:
  --key FILE             encrypted cosign private key (cosign.key)
  --password-file FILE   its password (cosign.password; one trailing newline is ignored)`

export const keyCheck: Command = {
  name: 'key-check',
  usage,
  async run(argv) {
    const flags = parseFlags(
      argv,
      { key: { type: 'string' }, 'password-file': { type: 'string' } },
      usage,
    )
    const keyFile = required(flags.key, 'key', 'the encrypted cosign private key')
    const passwordFile = required(flags['password-file'], 'password-file', 'the key password')
    const [pem, password] = await Promise.all([
      readFlagFile('key', keyFile),
      readPasswordFile('password-file', passwordFile),
    ])
    const opened = await openPrivateKey(pem, password)
    process.stdout.write(opened.publicKeyPem)
  },
}
