import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { recorder } from '../../test/harness/commands.js'
import { pushTestImage } from '../../test/harness/images.js'
import { startRegistry, type TestRegistry } from '../../test/harness/registry.js'
import { RegistryClient } from '../oci/client.js'
import { parseReference } from '../oci/reference.js'
import { Docker } from '../tools/docker.js'
import { prepareTrainerImage } from './trainer-image.js'

// No Docker engine here: docker's commands are recorded, and its `push` is
// played by pushing an image into the real registry under the pushed tag.
let registry: TestRegistry
let client: RegistryClient
beforeAll(async () => {
  registry = await startRegistry()
  client = new RegistryClient({ insecure: () => true })
})
afterAll(async () => {
  await registry?.stop()
})

const embedded = { host: 'registry.local:5000' }

function dockerWith(localImages: string[]) {
  return recorder((command) => {
    const [verb, action, ...rest] = command.args
    if (verb === 'image' && action === 'inspect') {
      const ref = rest.at(-1)!
      return localImages.includes(ref)
        ? { stdout: 'sha256:1234\n' }
        : { exitCode: 1, stderr: `Error response from daemon: No such image: ${ref}` }
    }
    return {}
  })
}

describe('prepareTrainerImage', () => {
  it('pushes a runner-built image into the embedded registry and runs it by digest', async () => {
    const docker = dockerWith(['docker.io/library/oml-chains-trainer:e2e'])
    let served = ''
    const run: typeof docker.run = async (command) => {
      const result = await docker.run(command)
      if (command.args[1] === 'push') {
        const target = parseReference(command.args[2]!)
        served = (await pushTestImage(client, registry.host, target.repository, target.tag!)).digest
      }
      return result
    }
    const result = await prepareTrainerImage(
      parseReference('oml-chains-trainer:e2e', 'trainer-image'),
      embedded,
      { docker: new Docker(run), registry: client, tag: 'run-7-1', loopback: registry.host },
    )
    expect(docker.argv()).toEqual([
      [
        'docker',
        'image',
        'inspect',
        '--format',
        '{{.Id}}',
        'docker.io/library/oml-chains-trainer:e2e',
      ],
      [
        'docker',
        'image',
        'tag',
        'docker.io/library/oml-chains-trainer:e2e',
        `${registry.host}/oml-chains/trainer:run-7-1`,
      ],
      ['docker', 'image', 'push', `${registry.host}/oml-chains/trainer:run-7-1`],
    ])
    expect(result.pushedFrom).toBe('docker.io/library/oml-chains-trainer:e2e')
    expect(result.image).toEqual({
      registry: 'registry.local:5000',
      repository: 'oml-chains/trainer',
      digest: served,
    })
  })

  it('uses an image the runner does not hold, or one given by digest, as given', async () => {
    const docker = dockerWith([])
    const deps = { docker: new Docker(docker.run), registry: client, tag: 't' }
    const byTag = parseReference('ghcr.io/acme/trainer:1.0', 'trainer-image')
    expect(await prepareTrainerImage(byTag, embedded, deps)).toEqual({ image: byTag })
    const byDigest = parseReference(`ghcr.io/acme/trainer@sha256:${'a'.repeat(64)}`)
    expect(await prepareTrainerImage(byDigest, embedded, deps)).toEqual({ image: byDigest })
    // On an existing cluster there is no registry to push to.
    expect(await prepareTrainerImage(byTag, undefined, deps)).toEqual({ image: byTag })
    expect(docker.argv()).toEqual([
      ['docker', 'image', 'inspect', '--format', '{{.Id}}', 'ghcr.io/acme/trainer:1.0'],
    ])
  })
})
