import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { RegistryClient } from '../../src/oci/client.js'
import { parseReference } from '../../src/oci/reference.js'
import { startRegistry, type TestRegistry } from '../harness/registry.js'
import { runTrainerProgram, type PythonRun as Run } from '../harness/trainer.js'

const python = runTrainerProgram

async function readResults(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  for (const name of await readdir(dir)) out[name] = await readFile(path.join(dir, name), 'utf8')
  return out
}

const digestRe = /^sha256:[0-9a-f]{64}$/

describe('trainer against a real registry', () => {
  let registry: TestRegistry
  let client: RegistryClient
  let work: string
  let datasetDigest: string

  beforeAll(async () => {
    registry = await startRegistry()
    client = new RegistryClient({ insecure: () => true })
    work = await mkdtemp(path.join(tmpdir(), 'trainer-test-'))
    const published = await python('publish_dataset.py', [
      `${registry.host}/ml/iris:data`,
      '--plain-http',
    ])
    expect(published.code, published.stderr).toBe(0)
    datasetDigest = published.stdout.trim()
  })
  afterAll(async () => {
    await registry?.stop()
    if (work) await rm(work, { recursive: true, force: true })
  })

  async function train(
    name: string,
    dataset: string,
    extra: string[] = [],
  ): Promise<Run & { results: string }> {
    const results = path.join(work, name)
    const run = await python('train.py', ['--results-dir', results, ...extra], {
      DATASET: dataset,
      IMAGE: `${registry.host}/ml/model:${name}`,
      PLAIN_HTTP: 'true',
      MIN_ACCURACY: '',
    })
    return { ...run, results }
  }

  it('publishes the dataset as the seed did: unknown config, tar layers titled by file', async () => {
    expect(datasetDigest).toMatch(digestRe)
    const fetched = await client.getManifest(parseReference(`${registry.host}/ml/iris:data`))
    expect(fetched.digest).toBe(datasetDigest)
    const manifest = fetched.manifest as {
      config: { mediaType: string }
      layers: { mediaType: string; annotations: Record<string, string> }[]
    }
    expect(manifest.config.mediaType).toBe('application/vnd.unknown.config.v1+json')
    expect(manifest.layers.map((l) => l.mediaType)).toEqual(
      Array(4).fill('application/vnd.oci.image.layer.v1.tar'),
    )
    expect(
      manifest.layers.map((l) => l.annotations['org.opencontainers.image.title']).sort(),
    ).toEqual(['X_test.joblib', 'X_train.joblib', 'y_test.joblib', 'y_train.joblib'])
    // Same seed, same bytes: publishing again gives the same digest.
    const again = await python('publish_dataset.py', [
      `${registry.host}/ml/iris:again`,
      '--plain-http',
    ])
    expect(again.stdout.trim()).toBe(datasetDigest)
  })

  it('trains from a tag, pushes the model with omlmd metadata and writes the results', async () => {
    const run = await train('bytag', `${registry.host}/ml/iris:data`)
    expect(run.code, run.stderr).toBe(0)
    const results = await readResults(run.results)
    const served = await client.getManifest(parseReference(`${registry.host}/ml/model:bytag`))
    // The digest the trainer computed from its push is what the registry serves.
    expect(results.IMAGE_DIGEST).toMatch(digestRe)
    expect(results.IMAGE_DIGEST).toBe(served.digest)
    expect(results.IMAGE_URL).toBe(`${registry.host}/ml/model:bytag`)
    expect(results.DATASET_URL).toBe(`${registry.host}/ml/iris`)
    expect(results.DATASET_DIGEST).toBe(datasetDigest)
    expect(JSON.parse(results.DATASET_ARTIFACT_INPUTS!)).toEqual({
      uri: `${registry.host}/ml/iris`,
      digest: datasetDigest,
    })
    const accuracy = Number(results.ACCURACY)
    expect(accuracy).toBeGreaterThan(0.9)

    const manifest = served.manifest as {
      config: { mediaType: string }
      layers: { mediaType: string; annotations: Record<string, string> }[]
      annotations: Record<string, string>
    }
    expect(served.mediaType).toBe('application/vnd.oci.image.manifest.v1+json')
    expect(manifest.config.mediaType).toBe('application/x-config')
    expect(
      manifest.layers.map((l) => [l.mediaType, l.annotations['org.opencontainers.image.title']]),
    ).toEqual([
      ['application/x-mlmodel', 'model.joblib'],
      ['application/x-config', 'model_metadata.omlmd.json'],
      ['application/x-config', 'model_metadata.omlmd.yaml'],
    ])
    expect(manifest.annotations.name).toBe('iris-svc')
    expect(JSON.parse(manifest.annotations['customProperties+json']!)).toEqual({
      accuracy,
      dataset_url: `${registry.host}/ml/iris`,
      dataset_digest: datasetDigest,
    })
    // No timestamps anywhere in the metadata (they would break reproducibility).
    const config = new TextDecoder().decode(
      await client.getBlob(
        parseReference(`${registry.host}/ml/model`),
        (served.manifest as { config: { digest: string } }).config.digest,
      ),
    )
    expect(JSON.parse(config).customProperties.accuracy).toBe(accuracy)
    expect(config + JSON.stringify(manifest)).not.toMatch(/created|time|date/i)
  })

  it('trains from a digest, and the same dataset digest gives the same model digest', async () => {
    const byDigest = await train('bydigest', `${registry.host}/ml/iris@${datasetDigest}`)
    expect(byDigest.code, byDigest.stderr).toBe(0)
    const again = await train('again', `${registry.host}/ml/iris@${datasetDigest}`)
    expect(again.code, again.stderr).toBe(0)
    const first = await readResults(byDigest.results)
    const second = await readResults(again.results)
    expect(first.DATASET_DIGEST).toBe(datasetDigest)
    expect(first.IMAGE_DIGEST).toMatch(digestRe)
    expect(second.IMAGE_DIGEST).toBe(first.IMAGE_DIGEST)
    const served = await client.resolve(parseReference(`${registry.host}/ml/model:again`))
    expect(served.digest).toBe(second.IMAGE_DIGEST)
  })

  it('fails with one clear line and pushes nothing when accuracy is below MIN_ACCURACY', async () => {
    const run = await train('gated', `${registry.host}/ml/iris:data`, ['--min-accuracy', '0.99'])
    expect(run.code).toBe(1)
    expect(run.stderr.trim()).toMatch(
      /^error: accuracy 0\.\d{4} is below MIN_ACCURACY 0\.99; model not pushed$/,
    )
    await expect(
      client.resolve(parseReference(`${registry.host}/ml/model:gated`)),
    ).rejects.toThrow()
    await expect(readdir(run.results)).rejects.toThrow()
  })

  it('fails clearly for a dataset that does not exist', async () => {
    const run = await train('missing', `${registry.host}/ml/nothing:here`)
    expect(run.code).toBe(1)
    expect(run.stderr.trim()).toBe(
      `error: ${registry.host}/ml/nothing:here: no such manifest in the registry (404)`,
    )
    const wrong = `sha256:${'0'.repeat(64)}`
    const byDigest = await train('missing2', `${registry.host}/ml/iris@${wrong}`)
    expect(byDigest.code).toBe(1)
    expect(byDigest.stderr.trim()).toBe(
      `error: ${registry.host}/ml/iris@${wrong}: no such manifest in the registry (404)`,
    )
  })
})
