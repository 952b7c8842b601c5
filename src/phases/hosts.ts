/**
 * The runner's /etc/hosts line that makes `registry.local` the loopback
 * address, so the runner reaches the registry under the same name as pods
 * and nodes. Added only when missing; removed only by the run that added it.
 */
import { appendFile, readFile, writeFile } from 'node:fs/promises'
import { UserError } from '../errors.js'
import { runChecked, type CommandRunner } from '../tools/exec.js'
import { REGISTRY_HOST, REGISTRY_HOST_ADDRESS } from '../tools/kind/config.js'

/** The line the action adds. */
export const HOSTS_LINE = `${REGISTRY_HOST_ADDRESS} ${REGISTRY_HOST}`

export interface HostsFile {
  /** Normally /etc/hosts. */
  path: string
  /** Root writes the file itself; anyone else goes through `sudo -n tee`. */
  isRoot: boolean
  /** Runs `sudo` when not root. */
  run: CommandRunner
}

/**
 * Makes sure `registry.local` resolves to 127.0.0.1 on the runner. Returns
 * true when it added the line (cleanup then removes exactly that line), false
 * when the file already had it. `beforeAdding` is called just before the
 * line is written, so that a run stopped mid-write still has it recorded. A
 * line mapping the name elsewhere is an error: the registry would not be
 * reachable, and it is not ours to change.
 */
export async function ensureHostsEntry(
  file: HostsFile,
  beforeAdding: () => void = () => undefined,
): Promise<boolean> {
  const text = await readHosts(file.path)
  const addresses = addressesOf(text, REGISTRY_HOST)
  if (addresses.includes(REGISTRY_HOST_ADDRESS)) return false
  if (addresses.length > 0) {
    throw new UserError(
      `${file.path} maps ${REGISTRY_HOST} to ${addresses.join(', ')}; the embedded registry needs ${REGISTRY_HOST_ADDRESS}: remove that line or use image: to push elsewhere`,
    )
  }
  // A file without a final newline would glue our line onto its last one.
  const addition = `${text === '' || text.endsWith('\n') ? '' : '\n'}${HOSTS_LINE}\n`
  beforeAdding()
  await write(file, addition, 'append')
  return true
}

/**
 * Removes the last line that is exactly HOSTS_LINE (the one ensureHostsEntry
 * appended). Returns false when there was none. The file is rewritten in
 * place, not replaced: /etc/hosts is often a bind mount that cannot be renamed over.
 */
export async function removeHostsEntry(file: HostsFile): Promise<boolean> {
  const text = await readHosts(file.path)
  const lines = text.split('\n')
  let index = -1
  lines.forEach((line, i) => {
    if (line.trim().split(/\s+/).join(' ') === HOSTS_LINE) index = i
  })
  if (index < 0) return false
  lines.splice(index, 1)
  await write(file, lines.join('\n'), 'replace')
  return true
}

async function readHosts(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8')
  } catch (err) {
    throw new UserError(`cannot read ${file}: ${(err as Error).message}`)
  }
}

/** Addresses `name` is mapped to by the file's (non-comment) lines. */
export function addressesOf(text: string, name: string): string[] {
  const found: string[] = []
  for (const raw of text.split('\n')) {
    const [address, ...names] = raw.replace(/#.*/, '').trim().split(/\s+/)
    if (address && names.includes(name)) found.push(address)
  }
  return found
}

async function write(file: HostsFile, content: string, mode: 'append' | 'replace'): Promise<void> {
  try {
    if (file.isRoot) {
      await (mode === 'append' ? appendFile : writeFile)(file.path, content)
      return
    }
    // -n: fail at once rather than wait for a password nobody will type.
    const args = ['-n', 'tee', ...(mode === 'append' ? ['-a'] : []), file.path]
    await runChecked(file.run, { file: 'sudo', args, input: content, silent: true })
  } catch (err) {
    throw new UserError(`cannot update ${file.path}: ${(err as Error).message}`)
  }
}
