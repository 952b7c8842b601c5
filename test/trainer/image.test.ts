/**
 * The trainer image as the action builds it (the real Containerfile, the
 * action's own build code, the real Docker engine) trains like trainer/ does:
 * run against a real registry, as user 65532, it pushes a model whose digest
 * is the one the same dataset gives through trainer/train.py directly.
 */
import { chmod, cp, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { prepareTrainerImage } from '../../src/phases/trainer-image.js'
import { RegistryClient } from '../../src/oci/client.js'
import { Docker } from '../../src/tools/docker.js'
import { docker, dockerChecked, trainerBaseImage } from '../harness/docker.js'
import { startRegistry, type TestRegistry } from '../harness/registry.js'
import { repoRoot } from '../harness/tools.js'
import { publishDataset, runTrainerProgram } from '../harness/trainer.js'

const TRAINER_UID = 65532

let registry: TestRegistry
let work: string
let image: string
/** The phase's build, as tagged in the runner's Docker. */
let builtLocal: string
let datasetDigest: string

beforeAll(async () => {
  registry = await startRegistry()
  work = await mkdtemp(path.join(os.tmpdir(), 'trainer-image-run-'))
  const built = await prepareTrainerImage(
    { source: 'build', baseImage: trainerBaseImage() },
    {
      docker: new Docker(),
      registry: new RegistryClient({ insecure: () => true }),
      embeddedRegistry: () => Promise.resolve({ host: 'registry.local:5000' }),
      runTag: 'image-test',
      actionRoot: repoRoot,
      workDir: work,
      loopback: registry.host,
      log: () => undefined,
    },
  )
  // Pulled back by digest from where the phase pushed it, as a node would.
  image = `${registry.host}/${built.image.repository}@${built.image.digest}`
  builtLocal = built.local!
  datasetDigest = await publishDataset(`${registry.host}/ml/iris:data`)
}, 600_000)

afterAll(async () => {
  await registry?.stop()
  if (work) await rm(work, { recursive: true, force: true })
})

/** Runs the image's entrypoint (train.py) on the host network, results into a fresh folder. */
async function trainInImage(name: string) {
  const results = path.join(work, name)
  await rm(results, { recursive: true, force: true })
  // Writable by anyone: the trainer makes its results folder as the image's user.
  await chmod(work, 0o777)
  const run = await docker([
    'run',
    '--rm',
    '--network',
    'host',
    '--volume',
    `${work}:/out`,
    '--env',
    `DATASET=${registry.host}/ml/iris@${datasetDigest}`,
    '--env',
    `IMAGE=${registry.host}/ml/model:${name}`,
    '--env',
    'PLAIN_HTTP=true',
    '--env',
    `RESULTS_DIR=/out/${name}`,
    image,
  ])
  return { ...run, results }
}

describe('the trainer image built from Containerfile', () => {
  it('trains as user 65532 and pushes the model trainer/ makes from the same dataset', async () => {
    const inImage = await trainInImage('in-image')
    expect(inImage.code, inImage.stderr).toBe(0)
    const digestFile = path.join(inImage.results, 'IMAGE_DIGEST')
    expect((await stat(digestFile)).uid).toBe(TRAINER_UID)
    const imageDigest = await readFile(digestFile, 'utf8')
    expect(imageDigest).toMatch(/^sha256:[0-9a-f]{64}$/)
    expect(await readFile(path.join(inImage.results, 'DATASET_DIGEST'), 'utf8')).toBe(datasetDigest)

    const direct = path.join(work, 'direct')
    // OpenBLAS picks its kernels from the CPU unless OPENBLAS_CORETYPE names
    // one (some machines set it); the last bits of the SVC's probability
    // calibration depend on that choice. The container picks from the CPU, so
    // the direct run does too.
    const openblas = Object.keys(process.env).filter((name) => name.startsWith('OPENBLAS_'))
    const run = await runTrainerProgram('train.py', ['--results-dir', direct], {
      ...Object.fromEntries(openblas.map((name) => [name, undefined])),
      DATASET: `${registry.host}/ml/iris@${datasetDigest}`,
      IMAGE: `${registry.host}/ml/model:direct`,
      PLAIN_HTTP: 'true',
      MIN_ACCURACY: '',
    })
    expect(run.code, run.stderr).toBe(0)
    expect(await readFile(path.join(direct, 'IMAGE_DIGEST'), 'utf8')).toBe(imageDigest)
  })

  it("is the Containerfile's default build: BASE_IMAGE only names the base", async () => {
    // The Containerfile as it was before the build argument, FROM the same base:
    // with Docker's build cache, every step matching gives the very same image.
    const containerfile = await readFile(path.join(repoRoot, 'Containerfile'), 'utf8')
    const fixed = containerfile
      .replace(/^ARG BASE_IMAGE=.*\n/m, '')
      .replace(/^FROM \$\{BASE_IMAGE\}$/m, `FROM ${trainerBaseImage()}`)
    expect(fixed.split('\n').filter((line) => !line.startsWith('#'))).not.toContainEqual(
      expect.stringContaining('BASE_IMAGE'),
    )
    const context = await mkdtemp(path.join(work, 'fixed-base-'))
    await cp(path.join(repoRoot, 'trainer'), path.join(context, 'trainer'), { recursive: true })
    await writeFile(path.join(context, 'Containerfile'), fixed)
    await dockerChecked([
      'image',
      'build',
      '--file',
      path.join(context, 'Containerfile'),
      '--tag',
      'oml-chains-test/fixed-base:1',
      context,
    ])
    const id = (ref: string) => dockerChecked(['image', 'inspect', '--format', '{{.Id}}', ref])
    expect(await id('oml-chains-test/fixed-base:1')).toBe(await id(builtLocal))
  })
})
