import { mkdir, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { generateKeyPair } from '../cosign/keys.js'
import { InputError, UserError } from '../errors.js'
import { parseFlags, required, type Command } from './args.js'
import { readPasswordFile } from './files.js'

const usage = `Usage: oml-chains keygen --out DIR [--password-file FILE]

Generates an ECDSA P-256 cosign key pair in cosign's encrypted format and writes
DIR/cosign.key, DIR/cosign.pub and DIR/cosign.password, the three keys of Chains'
signing-secrets. Without --password-file a random password is made. Existing
files are never overwritten.

Options:
  --out DIR              directory to write into (created if missing)
  --password-file FILE   use the password in FILE (one trailing newline is ignored)`

export const keygen: Command = {
  name: 'keygen',
  usage,
  async run(argv) {
    const flags = parseFlags(
      argv,
      { out: { type: 'string' }, 'password-file': { type: 'string' } },
      usage,
    )
    const out = required(flags.out, 'out', 'the directory to write the key pair into')
    const passwordFile = flags['password-file']
    const password = passwordFile
      ? await readPasswordFile('password-file', passwordFile)
      : undefined
    if (passwordFile && !password)
      throw new InputError('--password-file', `${passwordFile} is empty`)

    const pair = await generateKeyPair({ password })
    await mkdir(out, { recursive: true })
    const files: [string, string, number][] = [
      ['cosign.key', pair.privateKeyPem, 0o600],
      ['cosign.password', pair.password, 0o600],
      ['cosign.pub', pair.publicKeyPem, 0o644],
    ]
    // 'wx' never replaces an existing file; if one exists, the files this run
    // already wrote are removed again, so a half pair is never left behind.
    const written: string[] = []
    for (const [name, content, mode] of files) {
      const file = path.join(out, name)
      try {
        await writeFile(file, content, { mode, flag: 'wx' })
      } catch (err) {
        await Promise.all(written.map((done) => rm(done, { force: true })))
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
          throw new UserError(`${file} already exists; keygen never overwrites a key`)
        }
        throw err
      }
      written.push(file)
    }
    process.stderr.write(`wrote ${written.join(', ')}\n`)
    process.stdout.write(pair.publicKeyPem)
  },
}
