import { readFileSync } from 'node:fs'
import { appendFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { UserError } from '../errors.js'
import type { Command, CommandResult, CommandRunner } from '../tools/exec.js'
import {
  addressesOf,
  ensureHostsEntry,
  HOSTS_LINE,
  removeHostsEntry,
  type HostsFile,
} from './hosts.js'

let dir: string
let file: string

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'oml-hosts-'))
  file = path.join(dir, 'hosts')
})

afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

/** Fails the test if the root path tries to run anything. */
const noCommands: CommandRunner = async (command) => {
  throw new Error(`unexpected command ${command.file} ${command.args.join(' ')}`)
}
const asRoot = (): HostsFile => ({ path: file, isRoot: true, run: noCommands })

/**
 * The non-root path: records the sudo commands and plays `tee` on the temp
 * file (there is no passwordless sudo to rely on here).
 */
function viaSudo() {
  const commands: Command[] = []
  const run: CommandRunner = async (command): Promise<CommandResult> => {
    commands.push(command)
    const [, tee, ...rest] = command.args
    if (command.file !== 'sudo' || tee !== 'tee') throw new Error('not sudo tee')
    const append = rest[0] === '-a'
    const target = rest[rest.length - 1]!
    await (append ? appendFile : writeFile)(target, command.input ?? '')
    return { exitCode: 0, stdout: command.input ?? '', stderr: '' }
  }
  return { commands, hosts: { path: file, isRoot: false, run } satisfies HostsFile }
}

const base = '127.0.0.1 localhost\n::1 localhost ip6-localhost\n'

describe('ensureHostsEntry', () => {
  it('appends 127.0.0.1 registry.local when missing, and says it did', async () => {
    await writeFile(file, base)
    expect(await ensureHostsEntry(asRoot())).toBe(true)
    expect(await readFile(file, 'utf8')).toBe(`${base}127.0.0.1 registry.local\n`)
    expect(HOSTS_LINE).toBe('127.0.0.1 registry.local')
  })

  it('leaves the file alone when the name already maps to 127.0.0.1', async () => {
    const text = `${base}127.0.0.1   registry.local other.local # set up by hand\n`
    await writeFile(file, text)
    let told = false
    expect(await ensureHostsEntry(asRoot(), () => (told = true))).toBe(false)
    expect(await readFile(file, 'utf8')).toBe(text)
    expect(told).toBe(false)
  })

  it('says it will add the line before writing it, so a run stopped meanwhile has it recorded', async () => {
    await writeFile(file, base)
    const seen: string[] = []
    const added = await ensureHostsEntry(asRoot(), () => seen.push(readFileSync(file, 'utf8')))
    expect(added).toBe(true)
    expect(seen).toEqual([base])
    expect(await readFile(file, 'utf8')).toBe(`${base}127.0.0.1 registry.local\n`)
  })

  it('does not count a commented-out mapping', async () => {
    await writeFile(file, `${base}# 127.0.0.1 registry.local\n`)
    expect(await ensureHostsEntry(asRoot())).toBe(true)
    expect(addressesOf(await readFile(file, 'utf8'), 'registry.local')).toEqual(['127.0.0.1'])
  })

  it('starts a new line when the file does not end with one', async () => {
    await writeFile(file, '127.0.0.1 localhost')
    await ensureHostsEntry(asRoot())
    expect(await readFile(file, 'utf8')).toBe('127.0.0.1 localhost\n127.0.0.1 registry.local\n')
  })

  it('refuses a file that maps the name elsewhere, naming the address', async () => {
    await writeFile(file, `${base}10.1.2.3 registry.local\n`)
    const failure = ensureHostsEntry(asRoot())
    await expect(failure).rejects.toBeInstanceOf(UserError)
    await expect(failure).rejects.toThrow(`${file} maps registry.local to 10.1.2.3`)
    expect(await readFile(file, 'utf8')).toBe(`${base}10.1.2.3 registry.local\n`)
  })

  it('goes through sudo -n tee -a when not root, the line on stdin', async () => {
    await writeFile(file, base)
    const { commands, hosts } = viaSudo()
    expect(await ensureHostsEntry(hosts)).toBe(true)
    expect(commands.map((c) => [c.file, ...c.args])).toEqual([['sudo', '-n', 'tee', '-a', file]])
    expect(commands[0]?.input).toBe('127.0.0.1 registry.local\n')
    expect(commands[0]?.silent).toBe(true)
    expect(await readFile(file, 'utf8')).toBe(`${base}127.0.0.1 registry.local\n`)
  })

  it('says which file it could not read', async () => {
    await expect(ensureHostsEntry(asRoot())).rejects.toThrow(`cannot read ${file}`)
  })
})

describe('removeHostsEntry', () => {
  it('removes exactly the line that was added, keeping the rest byte for byte', async () => {
    await writeFile(file, base)
    await ensureHostsEntry(asRoot())
    await appendFile(file, '10.0.0.1 added-later\n')
    expect(await removeHostsEntry(asRoot())).toBe(true)
    expect(await readFile(file, 'utf8')).toBe(`${base}10.0.0.1 added-later\n`)
  })

  it('keeps other lines that mention registry.local', async () => {
    const text = `${base}127.0.0.1 registry.local other.local\n`
    await writeFile(file, text)
    expect(await removeHostsEntry(asRoot())).toBe(false)
    expect(await readFile(file, 'utf8')).toBe(text)
  })

  it('rewrites the file in place through sudo -n tee when not root', async () => {
    await writeFile(file, `${base}127.0.0.1 registry.local\n`)
    const { commands, hosts } = viaSudo()
    expect(await removeHostsEntry(hosts)).toBe(true)
    expect(commands.map((c) => [c.file, ...c.args])).toEqual([['sudo', '-n', 'tee', file]])
    expect(await readFile(file, 'utf8')).toBe(base)
  })

  it('reports a failed sudo as an error naming the file', async () => {
    await writeFile(file, `${base}127.0.0.1 registry.local\n`)
    const hosts: HostsFile = {
      path: file,
      isRoot: false,
      run: async () => ({ exitCode: 1, stdout: '', stderr: 'sudo: a password is required' }),
    }
    await expect(removeHostsEntry(hosts)).rejects.toThrow(
      `cannot update ${file}: \`sudo -n tee ${file}\` failed (exit 1): sudo: a password is required`,
    )
  })
})
