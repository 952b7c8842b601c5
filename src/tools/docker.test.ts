import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { UserError } from '../errors.js'
import { recorder } from '../../test/harness/commands.js'
import { recordFault } from '../../test/harness/faults/record.js'
import { dockerChecked, trainerBaseImage } from '../../test/harness/docker.js'
import { Docker, parseInspect, PORT_TAKEN, REGISTRY_IMAGE } from './docker.js'
import { CommandError, commandRunner } from './exec.js'

describe('REGISTRY_IMAGE', () => {
  it('is distribution v3 pinned by a sha256 digest', () => {
    expect(REGISTRY_IMAGE).toMatch(/^registry:3\.\d+\.\d+@sha256:[0-9a-f]{64}$/)
  })
})

/** Creates (does not start) a container of the trainer base image that would only sleep, publishing `publish`. */
function createSleeper(name: string, publish: string): Promise<string> {
  return dockerChecked([
    'create',
    '--name',
    name,
    '--publish',
    publish,
    trainerBaseImage(),
    'sleep',
    'infinity',
  ])
}

describe('Docker', () => {
  it('runs the registry detached, restarting, published on 127.0.0.1 only, tracing off', async () => {
    const r = recorder()
    await new Docker(r.run).runRegistry({
      name: 'oml-chains-registry',
      image: REGISTRY_IMAGE,
      hostAddress: '127.0.0.1',
      hostPort: 5000,
    })
    expect(r.argv()).toEqual([
      [
        'docker',
        'run',
        '--detach',
        '--restart=always',
        '--publish',
        '127.0.0.1:5000:5000',
        '--env',
        'OTEL_TRACES_EXPORTER=none',
        '--name',
        'oml-chains-registry',
        REGISTRY_IMAGE,
      ],
    ])
  })

  it('attaches a container to a network under an alias, and detaches it', async () => {
    const r = recorder()
    const docker = new Docker(r.run)
    await docker.connectNetwork('kind', 'oml-chains-registry', 'registry.local')
    await docker.disconnectNetwork('kind', 'oml-chains-registry')
    expect(r.argv()).toEqual([
      ['docker', 'network', 'connect', '--alias', 'registry.local', 'kind', 'oml-chains-registry'],
      ['docker', 'network', 'disconnect', 'kind', 'oml-chains-registry'],
    ])
  })

  it('writes a file in a container through stdin, the path as a shell argument', async () => {
    const r = recorder()
    const content = '[host."http://registry.local:5000"]\n'
    const file = '/etc/containerd/certs.d/registry.local:5000/hosts.toml'
    await new Docker(r.run).writeFile('oml-chains-control-plane', file, content)
    const [command] = r.commands
    expect(command?.args).toEqual([
      'exec',
      '--interactive',
      'oml-chains-control-plane',
      'sh',
      '-c',
      'mkdir -p "$(dirname "$1")" && cat > "$1"',
      'sh',
      file,
    ])
    expect(command?.input).toBe(content)
    expect(command?.args.join(' ')).not.toContain('registry.local:5000"]') // content not on argv
  })

  it('refuses a relative path for writeFile', async () => {
    const r = recorder()
    await expect(new Docker(r.run).writeFile('node', 'etc/hosts', 'x')).rejects.toThrow(
      /absolute path/,
    )
    expect(r.commands).toEqual([])
  })

  it('execs with --interactive only when there is input', async () => {
    const r = recorder(() => ({ stdout: 'ok' }))
    const docker = new Docker(r.run)
    expect((await docker.exec('node', ['curl', 'http://x/'])).stdout).toBe('ok')
    await docker.exec('node', ['cat'], 'data')
    expect(r.argv()).toEqual([
      ['docker', 'exec', 'node', 'curl', 'http://x/'],
      ['docker', 'exec', '--interactive', 'node', 'cat'],
    ])
  })

  it('inspects a real container: its state, image, aliases per network, and ports kept while stopped', async () => {
    const name = `oml-inspect-${process.pid}`
    const network = `oml-inspect-${process.pid}`
    const image = trainerBaseImage()
    const docker = new Docker()
    await dockerChecked(['network', 'create', network])
    try {
      await createSleeper(name, '127.0.0.1:5999:5000')
      await dockerChecked(['network', 'connect', '--alias', 'registry.local', network, name])
      const stopped = await docker.inspectContainer(name)
      expect(stopped).toMatchObject({ name, running: false, status: 'created', image })
      expect(stopped?.ports).toEqual({ '5000/tcp': [{ hostIp: '127.0.0.1', hostPort: '5999' }] })
      expect(stopped?.networks[network]?.aliases).toContain('registry.local')
      expect(Object.keys(stopped?.networks ?? {}).sort()).toEqual(['bridge', network].sort())
    } finally {
      await docker.removeContainer(name)
      await dockerChecked(['network', 'rm', network])
    }
  })

  it("fails to start a container whose published port another program holds, in words PORT_TAKEN knows (the registry's port-taken error)", async () => {
    const name = `oml-port-taken-${process.pid}`
    const holder = createServer()
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve))
    const port = (holder.address() as AddressInfo).port
    const docker = new Docker()
    try {
      await createSleeper(name, `127.0.0.1:${port}:5000`)
      const failure = docker.startContainer(name)
      await expect(failure).rejects.toThrow(PORT_TAKEN)
      await expect(failure).rejects.toThrow(`127.0.0.1:${port}`)
    } finally {
      await docker.removeContainer(name)
      holder.close()
    }
  })

  it('stops a build that outlives its deadline, saying so, and leaves no build container', async () => {
    const context = await mkdtemp(path.join(tmpdir(), 'oml-slow-build-'))
    const tag = `oml-chains-test/slow-build:${process.pid}`
    try {
      await writeFile(
        path.join(context, 'Containerfile'),
        `FROM ${trainerBaseImage()}\nRUN sleep 600\n`,
      )
      const started = Date.now()
      const build = new Docker().buildImage({
        context,
        file: path.join(context, 'Containerfile'),
        tag,
        deadline: started + 3_000,
      })
      await expect(build).rejects.toThrow(
        `building ${tag} did not finish by the run's deadline (the timeout input) and was stopped`,
      )
      expect(Date.now() - started).toBeLessThan(15_000)
      // The engine cancels the build with its client: its `sleep 600` container goes too.
      const containers = await dockerChecked(['ps', '--all', '--format', '{{.Command}}'])
      expect(containers).not.toContain('sleep 600')
      recordFault('timeout in the trainer image build', 'reported')
    } finally {
      await rm(context, { recursive: true, force: true })
    }
  })

  it('reads a container without networks or ports as having none', () => {
    const info = parseInspect('x', JSON.stringify([{ State: {}, Config: { Image: 'i' } }]))
    expect(info).toEqual({
      name: 'x',
      running: false,
      status: 'unknown',
      image: 'i',
      networks: {},
      ports: {},
    })
  })

  it('reports a missing container as undefined, and any other failure as an error', async () => {
    const missing = recorder(() => ({
      exitCode: 1,
      stderr: 'Error response from daemon: No such container: oml-chains-registry',
    }))
    expect(await new Docker(missing.run).inspectContainer('oml-chains-registry')).toBeUndefined()

    const down = recorder(() => ({
      exitCode: 1,
      stderr: 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock.',
    }))
    const failure = new Docker(down.run).inspectContainer('oml-chains-registry')
    await expect(failure).rejects.toBeInstanceOf(CommandError)
    await expect(failure).rejects.toThrow(
      '`docker container inspect oml-chains-registry` failed (exit 1): Cannot connect to the Docker daemon',
    )
  })

  it('removes a container by force; one that is gone already is not an error', async () => {
    const r = recorder()
    expect(await new Docker(r.run).removeContainer('oml-chains-registry')).toBe(true)
    expect(r.argv()).toEqual([['docker', 'container', 'rm', '--force', 'oml-chains-registry']])

    const gone = recorder(() => ({ exitCode: 1, stderr: 'Error: No such container: x' }))
    expect(await new Docker(gone.run).removeContainer('x')).toBe(false)
  })

  it('rejects an inspect answer that is not a container list', () => {
    expect(() => parseInspect('x', '{}')).toThrow(UserError)
    expect(() => parseInspect('x', 'not json')).toThrow(/docker container inspect x/)
  })
})

// The real runner, on programs every machine has (there is no Docker engine here).
describe('commandRunner', () => {
  it('feeds stdin, collects stdout and stderr, and returns a non-zero exit as a result', async () => {
    const run = commandRunner()
    const result = await run({
      file: 'sh',
      args: ['-c', 'cat; echo oops >&2; exit 3'],
      input: 'from stdin\n',
      silent: true,
    })
    expect(result).toEqual({ exitCode: 3, stdout: 'from stdin\n', stderr: 'oops\n' })
  })

  it('uses the environment it was given', async () => {
    const run = commandRunner({ env: { PATH: process.env.PATH ?? '', ONLY_HERE: 'yes' } })
    const result = await run({ file: 'sh', args: ['-c', 'echo "$ONLY_HERE"'], silent: true })
    expect(result.stdout).toBe('yes\n')
  })

  it('names a program that cannot be started', async () => {
    const run = commandRunner()
    await expect(run({ file: 'oml-no-such-program', args: [], silent: true })).rejects.toThrow(
      /^oml-no-such-program cannot be run: /,
    )
  })
})
