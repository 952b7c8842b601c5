import { readFile } from 'node:fs/promises'
import { InputError } from '../errors.js'

/** Reads a file named by a flag; a missing or unreadable file is an error naming the flag. */
export async function readFlagFile(flag: string, file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    const why =
      code === 'ENOENT' ? 'does not exist' : code === 'EISDIR' ? 'is a directory' : 'cannot be read'
    throw new InputError(`--${flag}`, `file ${file} ${why}`)
  }
}

/**
 * A password file as cosign's k8s secret holds it: the bytes are the password.
 * One trailing newline (what an editor or `echo` adds) is dropped.
 */
export async function readPasswordFile(flag: string, file: string): Promise<string> {
  return (await readFlagFile(flag, file)).replace(/\r?\n$/, '')
}
