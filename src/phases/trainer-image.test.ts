/**
 * The trainer image phase with the real Docker engine and a real registry in
 * the embedded registry's place: the build from the action's own
 * Containerfile (on the base image test-tools.sh made from Debian packages),
 * the push, the skip when the registry has the build already, and a
 * runner-built tag pushed for the run.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { dockerChecked, trainerBaseImage } from '../../test/harness/docker.js'
import { startRegistry, type TestRegistry } from '../../test/harness/registry.js'
import { repoRoot } from '../../test/harness/tools.js'
import { RegistryClient } from '../oci/client.js'
import { parseReference } from '../oci/reference.js'
import { Docker } from '../tools/docker.js'
import { execRunner, type Command } from '../tools/exec.js'
import { trainerBuildContext } from './trainer-build.js'
import { prepareTrainerImage, TRAINER_REPOSITORY, type TrainerImageDeps } from './trainer-image.js'

let registry: TestRegistry
let client: RegistryClient
let workDir: string
beforeAll(async () => {
  registry = await startRegistry()
  client = new RegistryClient({ insecure: () => true })
  workDir = await mkdtemp(path.join(os.tmpdir(), 'trainer-image-'))
})
afterAll(async () => {
  await registry?.stop()
  if (workDir) await rm(workDir, { recursive: true, force: true })
})

const embedded = Promise.resolve({ host: 'registry.local:5000' })

/** The real Docker, with every command it was asked to run kept for assertions. */
function observedDocker() {
  const commands: Command[] = []
  const docker = new Docker(async (command) => {
    commands.push(command)
    return execRunner(command)
  })
  const verbs = () => commands.map((c) => c.args.slice(0, 2).join(' '))
  return { docker, verbs, commands }
}

function deps(docker: Docker, extra: Partial<TrainerImageDeps> = {}): TrainerImageDeps {
  return {
    docker,
    registry: client,
    embeddedRegistry: () => embedded,
    runTag: 'run-7-1',
    actionRoot: repoRoot,
    workDir,
    loopback: registry.host,
    log: () => undefined,
    ...extra,
  }
}

describe('prepareTrainerImage', () => {
  it("builds from the action's Containerfile, pushes it and runs it by digest; a re-run skips the build", async () => {
    const base = trainerBaseImage()
    const { tag } = await trainerBuildContext(repoRoot, base)
    const first = observedDocker()
    const recorded: string[] = []
    const built = await prepareTrainerImage(
      { source: 'build', baseImage: base },
      deps(first.docker, {
        record: (tag) => recorded.push(`${tag} before ${first.commands.length} commands`),
      }),
    )
    expect(first.verbs()).toEqual(['image build', 'image push'])
    // Its tag is recorded for the cleanup before the build makes it.
    expect(recorded).toEqual([`${registry.host}/${TRAINER_REPOSITORY}:${tag} before 0 commands`])
    // The staged Containerfile, by absolute path: docker would read a relative
    // one from its working directory, the user's workspace on a runner.
    const build = first.commands[0]!.args
    const file = build[build.indexOf('--file') + 1]!
    expect(path.isAbsolute(file) && file.startsWith(workDir)).toBe(true)
    expect(path.basename(file)).toBe('Containerfile')
    const served = await client.resolve(
      parseReference(`${registry.host}/${TRAINER_REPOSITORY}:${tag}`),
    )
    expect(built).toEqual({
      origin: 'built',
      local: `${registry.host}/${TRAINER_REPOSITORY}:${tag}`,
      image: {
        registry: 'registry.local:5000',
        repository: TRAINER_REPOSITORY,
        digest: served.digest,
      },
    })
    // The image really is the Containerfile's: its user and entrypoint.
    const config = JSON.parse(
      await dockerChecked(['image', 'inspect', '--format', '{{json .Config}}', built.local!]),
    ) as { User: string; Entrypoint: string[] }
    expect(config.User).toBe('65532:65532')
    expect(config.Entrypoint).toEqual(['python', '/app/train.py'])

    // A re-run on a kept cluster: the tag answers, nothing is built or pushed.
    const again = observedDocker()
    const reused = await prepareTrainerImage(
      { source: 'build', baseImage: base },
      deps(again.docker, { record: (tag) => recorded.push(tag) }),
    )
    expect(again.verbs()).toEqual([])
    // Nothing made: nothing for the cleanup to remove.
    expect(recorded).toHaveLength(1)
    expect(reused).toEqual({ ...built, origin: 'reused' })
  })

  it('names a failed build with the lines that say why', async () => {
    const { docker } = observedDocker()
    const build = prepareTrainerImage(
      { source: 'build', baseImage: 'oml-chains-test/no-such-base:1' },
      deps(docker),
    )
    await expect(build).rejects.toThrow(/docker image build .*failed \(exit 1\)/s)
    await expect(build).rejects.toThrow(/no-such-base/)
  })

  it('pushes a trainer image built on the runner and runs it by digest; the cleanup removes only its own tag', async () => {
    const local = 'oml-chains-test/runner-built:e2e'
    await dockerChecked(['image', 'tag', trainerBaseImage(), local])
    const { docker, verbs } = observedDocker()
    const recorded: string[] = []
    const result = await prepareTrainerImage(
      { source: 'input', image: parseReference(local, 'trainer-image') },
      deps(docker, { record: (tag) => recorded.push(tag) }),
    )
    expect(verbs()).toEqual(['image inspect', 'image tag', 'image push'])
    const ours = `${registry.host}/${TRAINER_REPOSITORY}:run-7-1`
    expect(recorded).toEqual([ours])
    const served = await client.resolve(
      parseReference(`${registry.host}/${TRAINER_REPOSITORY}:run-7-1`),
    )
    expect(result).toEqual({
      origin: 'pushed',
      local: `docker.io/${local}`,
      image: {
        registry: 'registry.local:5000',
        repository: TRAINER_REPOSITORY,
        digest: served.digest,
      },
    })

    // What the post step does with the recorded tag: the run's tag goes, the
    // user's image stays; a second removal finds nothing and says so.
    const cleanup = new Docker()
    expect(await cleanup.removeImage(ours)).toBe(true)
    expect(await cleanup.hasImage(ours)).toBe(false)
    expect(await cleanup.hasImage(local)).toBe(true)
    expect(await cleanup.removeImage(ours)).toBe(false)
  })

  it('uses an image the runner does not hold, one given by digest, or any without the registry, as given', async () => {
    const { docker, verbs } = observedDocker()
    const byTag = parseReference('ghcr.io/acme/trainer:1.0', 'trainer-image')
    expect(await prepareTrainerImage({ source: 'input', image: byTag }, deps(docker))).toEqual({
      image: byTag,
      origin: 'given',
    })
    const byDigest = parseReference(`ghcr.io/acme/trainer@sha256:${'a'.repeat(64)}`)
    expect(
      await prepareTrainerImage({ source: 'published', image: byDigest }, deps(docker)),
    ).toEqual({ image: byDigest, origin: 'given' })
    // On an existing cluster there is no registry to push to.
    const none = deps(docker, { embeddedRegistry: () => Promise.resolve(undefined) })
    expect(await prepareTrainerImage({ source: 'input', image: byTag }, none)).toEqual({
      image: byTag,
      origin: 'given',
    })
    expect(verbs()).toEqual(['image inspect'])
  })
})

describe('trainerBuildContext', () => {
  it('names the build after its inputs: the same files give the same tag, a base image another', async () => {
    const plain = await trainerBuildContext(repoRoot)
    expect(plain.tag).toMatch(/^build-[0-9a-f]{16}$/)
    expect(plain.files).toContain('Containerfile')
    expect(plain.files).toContain('trainer/train.py')
    expect(plain.files).toContain('trainer/requirements.txt')
    expect(plain.files.every((f) => f === 'Containerfile' || f.startsWith('trainer/'))).toBe(true)
    expect(plain.buildArgs).toEqual({})
    expect((await trainerBuildContext(repoRoot)).tag).toBe(plain.tag)
    const mirrored = await trainerBuildContext(repoRoot, 'mirror.example/python:3.11')
    expect(mirrored.tag).not.toBe(plain.tag)
    expect(mirrored.buildArgs).toEqual({ BASE_IMAGE: 'mirror.example/python:3.11' })
  })
})
