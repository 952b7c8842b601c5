import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { recorder as recordCommands } from '../../test/harness/commands.js'
import type { Command, CommandResult, CommandRunner } from '../tools/exec.js'
import { cleanup, type CleanupDeps } from './cleanup.js'
import type { CreatedResources } from './cluster.js'

let dir: string
let hostsPath: string

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'oml-cleanup-'))
  hostsPath = path.join(dir, 'hosts')
  await writeFile(hostsPath, '127.0.0.1 localhost\n127.0.0.1 registry.local\n')
})

afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

/** The shared recorder, its command lines as strings. */
function recorder(reply?: (c: Command) => Partial<CommandResult>) {
  const r = recordCommands(reply)
  return { run: r.run, argv: () => r.argv().map((argv) => argv.join(' ')) }
}

function deps(run: CommandRunner): CleanupDeps & { logged: string[] } {
  const logged: string[] = []
  return {
    run,
    hostsFile: { path: hostsPath, isRoot: true, run },
    log: (line) => logged.push(line),
    logged,
  }
}

const everything: CreatedResources = {
  cluster: 'oml-chains',
  kindBinary: '/tools/kind',
  registryContainer: 'oml-chains-registry',
  hostsEntry: true,
  trainerTag: '127.0.0.1:5000/oml-chains/trainer:build-0123456789abcdef',
}

describe('cleanup', () => {
  it('deletes the cluster, the registry container, the hosts line and the trainer tag it created', async () => {
    const r = recorder()
    const result = await cleanup(everything, { keepCluster: false }, deps(r.run))
    expect(r.argv()).toEqual([
      '/tools/kind delete cluster --name oml-chains',
      'docker container rm --force oml-chains-registry',
      'docker image rm 127.0.0.1:5000/oml-chains/trainer:build-0123456789abcdef',
    ])
    expect(await readFile(hostsPath, 'utf8')).toBe('127.0.0.1 localhost\n')
    expect(result).toEqual({
      removed: [
        'kind cluster oml-chains',
        'registry container oml-chains-registry',
        `"127.0.0.1 registry.local" from ${hostsPath}`,
        'trainer image 127.0.0.1:5000/oml-chains/trainer:build-0123456789abcdef',
      ],
      kept: [],
      warnings: [],
    })
  })

  it('touches nothing it reused: an existing cluster, a registry, a hosts line already there', async () => {
    const r = recorder()
    const d = deps(r.run)
    const result = await cleanup({}, { keepCluster: false }, d)
    expect(r.argv()).toEqual([])
    expect(await readFile(hostsPath, 'utf8')).toBe(
      '127.0.0.1 localhost\n127.0.0.1 registry.local\n',
    )
    expect(result).toEqual({ removed: [], kept: [], warnings: [] })
    expect(d.logged).toEqual([
      'nothing to remove: this run created no cluster, registry or hosts entry',
    ])
  })

  it('removes only what was created: a reused cluster stays, the new registry goes', async () => {
    const r = recorder()
    const result = await cleanup(
      { registryContainer: 'oml-chains-registry' },
      { keepCluster: false },
      deps(r.run),
    )
    expect(r.argv()).toEqual(['docker container rm --force oml-chains-registry'])
    expect(result.removed).toEqual(['registry container oml-chains-registry'])
  })

  it('turns every failure into a warning and still does the rest', async () => {
    const r = recorder((c) =>
      c.file === '/tools/kind'
        ? { exitCode: 1, stderr: 'ERROR: failed to delete cluster "oml-chains": permission denied' }
        : { exitCode: 1, stderr: 'Cannot connect to the Docker daemon' },
    )
    const result = await cleanup(everything, { keepCluster: false }, deps(r.run))
    expect(result.warnings).toEqual([
      'could not remove kind cluster oml-chains: `/tools/kind delete cluster --name oml-chains` failed (exit 1): ERROR: failed to delete cluster "oml-chains": permission denied',
      'could not remove registry container oml-chains-registry: `docker container rm --force oml-chains-registry` failed (exit 1): Cannot connect to the Docker daemon',
      'could not remove trainer image 127.0.0.1:5000/oml-chains/trainer:build-0123456789abcdef: `docker image rm 127.0.0.1:5000/oml-chains/trainer:build-0123456789abcdef` failed (exit 1): Cannot connect to the Docker daemon',
    ])
    // The hosts line does not depend on Docker.
    expect(result.removed).toEqual([`"127.0.0.1 registry.local" from ${hostsPath}`])
    expect(await readFile(hostsPath, 'utf8')).toBe('127.0.0.1 localhost\n')
  })

  it('does not throw when a program cannot even start', async () => {
    const run: CommandRunner = async (command) => {
      throw new Error(`${command.file} cannot be run: not found`)
    }
    const result = await cleanup(
      { cluster: 'oml-chains', kindBinary: '/gone/kind' },
      { keepCluster: false },
      deps(run),
    )
    expect(result.warnings).toEqual([
      'could not remove kind cluster oml-chains: /gone/kind cannot be run: not found',
    ])
  })

  it('counts things already gone as nothing to warn about', async () => {
    const r = recorder(() => ({
      exitCode: 1,
      stderr: 'Error: No such container: oml-chains-registry',
    }))
    await writeFile(hostsPath, '127.0.0.1 localhost\n')
    const d = deps(r.run)
    const result = await cleanup(
      { registryContainer: 'oml-chains-registry', hostsEntry: true },
      { keepCluster: false },
      d,
    )
    expect(result).toEqual({ removed: [], kept: [], warnings: [] })
    expect(d.logged).toContain('registry container oml-chains-registry was already gone')
    expect(d.logged).toContain(`"127.0.0.1 registry.local" from ${hostsPath} was already gone`)
  })

  it('with keep-cluster leaves everything running and says what and where', async () => {
    const r = recorder()
    const d = deps(r.run)
    const result = await cleanup(everything, { keepCluster: true }, d)
    expect(r.argv()).toEqual([])
    expect(await readFile(hostsPath, 'utf8')).toContain('127.0.0.1 registry.local')
    expect(result.kept).toEqual([
      'kind cluster oml-chains (kubectl context kind-oml-chains)',
      'registry container oml-chains-registry on 127.0.0.1:5000',
      `"127.0.0.1 registry.local" in ${hostsPath}`,
      "trainer image 127.0.0.1:5000/oml-chains/trainer:build-0123456789abcdef in the runner's Docker",
    ])
    expect(d.logged).toEqual([`keep-cluster: left running ${result.kept.join('; ')}`])
  })
})
