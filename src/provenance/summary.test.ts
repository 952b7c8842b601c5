import { readFileSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { parseDsseEnvelope } from '../cosign/dsse.js'
import { repoRoot } from '../../test/harness/tools.js'
import { summarizeProvenance } from './summary.js'
import {
  parseStatement,
  SLSA_PROVENANCE_V02,
  SLSA_PROVENANCE_V1,
  STATEMENT_V01,
  STATEMENT_V1,
  StatementError,
  type PipelineRunBuildConfig,
  type SlsaV02Predicate,
  type SlsaV02Statement,
  type SlsaV1Statement,
} from './types.js'

const fixture = path.join(repoRoot, 'test/fixtures/chains-real')
const testdata = path.join(repoRoot, 'src/provenance/testdata')

/** The Statement inside the real Chains TaskRun attestation (signature checked in verify.test.ts). */
function realTaskRunStatement(): unknown {
  const envelope = parseDsseEnvelope(
    readFileSync(path.join(fixture, 'taskrun-attestation.dsse.json')),
  )
  return JSON.parse(Buffer.from(envelope.payload, 'base64').toString('utf8'))
}

function pipelineRunPredicate(): SlsaV02Predicate {
  return JSON.parse(
    readFileSync(path.join(testdata, 'pipelinerun-predicate.json'), 'utf8'),
  ) as SlsaV02Predicate
}

function pipelineRunStatement(predicate = pipelineRunPredicate()): SlsaV02Statement {
  return {
    _type: STATEMENT_V01,
    subject: [
      {
        name: 'registry.local:5000/ml-iris',
        digest: { sha256: '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08' },
      },
    ],
    predicateType: SLSA_PROVENANCE_V02,
    predicate,
  }
}

function tasksOf(predicate: SlsaV02Predicate): PipelineRunBuildConfig['tasks'] {
  return (predicate.buildConfig as PipelineRunBuildConfig).tasks
}

const datasetDigest = 'sha256:5c6a2d4e8f0b1c3d5e7f9a0b2c4d6e8f0a1b3c5d7e9f1a2b4c6d8e0f2a3b5c7d'

describe('summarizeProvenance on the real Chains TaskRun attestation', () => {
  it('reads subject, builder, build type, params and trainer image', () => {
    const summary = summarizeProvenance(realTaskRunStatement())
    expect(summary).toEqual({
      statementType: STATEMENT_V01,
      predicateType: SLSA_PROVENANCE_V02,
      subjects: [
        {
          name: 'quay.io/mmortari/ml-iris',
          digest: 'sha256:bf64e877c24670cf517f52df470beafc611840707cf8ee45535cd1d8313784de',
        },
      ],
      builderId: 'https://tekton.dev/chains/v2',
      buildType: 'tekton.dev/v1beta1/TaskRun',
      params: { DATASET: 'quay.io/mmortari/ml-iris:data', IMAGE: 'quay.io/mmortari/ml-iris:v1' },
      // A TaskRun slsa/v1 attestation carries no results, and its only material is the
      // trainer image: the dataset digest is simply not recorded there.
      dataset: { url: 'quay.io/mmortari/ml-iris:data', digest: undefined },
      trainerImage:
        'quay.io/mmortari/demo20240704-mltrain-as-oci@sha256:eb8792686df4a9dd6c2c261d226dbffb2e7289780ee91fd4fdeea8ace6706693',
      accuracy: undefined,
      image: undefined,
    })
  })
})

describe('summarizeProvenance on a Chains PipelineRun (SLSA v0.2) predicate', () => {
  it('reads dataset, accuracy, image and the trainer image of the task that pushed the image', () => {
    const summary = summarizeProvenance(pipelineRunStatement())
    expect(summary.buildType).toBe('tekton.dev/v1/PipelineRun')
    expect(summary.params).toEqual({
      DATASET: 'registry.local:5000/ml-iris:data',
      IMAGE: 'registry.local:5000/ml-iris:model',
    })
    expect(summary.dataset).toEqual({
      url: 'registry.local:5000/ml-iris:data',
      digest: datasetDigest,
    })
    expect(summary.accuracy).toBeCloseTo(0.9666666666666667, 15)
    // The IMAGE_URL result ends in a newline in real runs; it is trimmed.
    expect(summary.image).toEqual({
      url: 'registry.local:5000/ml-iris:model',
      digest: 'sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08',
    })
    // Not the first task's (oras) image: the step image of the task that produced IMAGE_URL.
    expect(summary.trainerImage).toBe(
      'registry.local:5000/oml-trainer@sha256:2222222222222222222222222222222222222222222222222222222222222222',
    )
  })

  it('takes the dataset from an object *ARTIFACT_INPUTS result when there is no DATASET_URL', () => {
    const predicate = pipelineRunPredicate()
    const first = tasksOf(predicate)[0]!
    first.results = [
      {
        name: 'DATASET_ARTIFACT_INPUTS',
        type: 'object',
        value: { uri: 'oci://registry.local:5000/ml-iris', digest: datasetDigest },
      },
    ]
    const summary = summarizeProvenance(pipelineRunStatement(predicate))
    expect(summary.dataset).toEqual({
      url: 'oci://registry.local:5000/ml-iris',
      digest: datasetDigest,
    })
  })

  it('matches an unnamed *ARTIFACT_INPUTS result to the DATASET param by repository', () => {
    const predicate = pipelineRunPredicate()
    tasksOf(predicate)[0]!.results = [
      {
        name: 'source-ARTIFACT_INPUTS',
        type: 'object',
        value: { uri: 'https://example.com/code.git', digest: 'sha1:abc' },
      },
      {
        name: 'data-ARTIFACT_INPUTS',
        type: 'object',
        value: { uri: 'registry.local:5000/ml-iris', digest: datasetDigest },
      },
    ]
    const summary = summarizeProvenance(pipelineRunStatement(predicate))
    expect(summary.dataset).toEqual({ url: 'registry.local:5000/ml-iris', digest: datasetDigest })
  })

  it('falls back to the DATASET param and a material of the same repository', () => {
    const predicate = pipelineRunPredicate()
    tasksOf(predicate)[0]!.results = []
    predicate.materials!.push({
      uri: 'oci://registry.local:5000/ml-iris',
      digest: { sha256: datasetDigest.slice('sha256:'.length) },
    })
    const summary = summarizeProvenance(pipelineRunStatement(predicate))
    expect(summary.dataset).toEqual({
      url: 'registry.local:5000/ml-iris:data',
      digest: datasetDigest,
    })
  })

  it('leaves the dataset digest undefined when nothing records it', () => {
    const predicate = pipelineRunPredicate()
    tasksOf(predicate)[0]!.results = []
    const summary = summarizeProvenance(pipelineRunStatement(predicate))
    expect(summary.dataset).toEqual({ url: 'registry.local:5000/ml-iris:data', digest: undefined })
  })

  it('ignores an ACCURACY that is not a number', () => {
    const predicate = pipelineRunPredicate()
    const train = tasksOf(predicate)[1]!
    train.results = train.results!.map((r) => (r.name === 'ACCURACY' ? { ...r, value: 'n/a' } : r))
    expect(summarizeProvenance(pipelineRunStatement(predicate)).accuracy).toBeUndefined()
  })

  it('tolerates a predicate with parts missing', () => {
    const statement = {
      _type: STATEMENT_V01,
      subject: [],
      predicateType: SLSA_PROVENANCE_V02,
      predicate: { buildConfig: { tasks: [{ name: 'x', results: 'not a list' }, null] } },
    }
    expect(summarizeProvenance(statement)).toEqual({
      statementType: STATEMENT_V01,
      predicateType: SLSA_PROVENANCE_V02,
      subjects: [],
      builderId: undefined,
      buildType: undefined,
      params: {},
      dataset: undefined,
      trainerImage: undefined,
      accuracy: undefined,
      image: undefined,
    })
  })
})

// Byproduct names: slsa/v2alpha3 `pipelineRunResults/<NAME>`, slsa/v2alpha4
// `pipelineRunResults/<run>/<NAME>`; a StepAction's `stepResults/...` is not the run's.
describe.each([
  ['slsa/v2alpha3', (name: string) => `pipelineRunResults/${name}`],
  ['slsa/v2alpha4', (name: string) => `pipelineRunResults/oml-chains-x7k2p/${name}`],
])('summarizeProvenance on a SLSA v1 predicate (Chains %s)', (_format, nameOf) => {
  const result = (name: string, value: unknown) => ({
    name: nameOf(name),
    mediaType: 'application/json',
    content: Buffer.from(JSON.stringify(value)).toString('base64'),
  })
  const stepResult = {
    name: 'stepResults/oml-chains-x7k2p-train/ACCURACY',
    mediaType: 'application/json',
    content: Buffer.from(JSON.stringify('0.1')).toString('base64'),
  }
  const statement: SlsaV1Statement = {
    _type: STATEMENT_V1,
    subject: [{ name: 'registry.local:5000/ml-iris', digest: { sha256: 'ab'.repeat(32) } }],
    predicateType: SLSA_PROVENANCE_V1,
    predicate: {
      buildDefinition: {
        buildType: 'https://tekton.dev/chains/v2/slsa-tekton',
        externalParameters: {
          runSpec: {
            params: [
              { name: 'DATASET', value: 'registry.local:5000/ml-iris:data' },
              { name: 'IMAGE', value: 'registry.local:5000/ml-iris:model' },
            ],
          },
        },
        resolvedDependencies: [
          {
            uri: 'oci://registry.local:5000/oml-trainer',
            digest: { sha256: '22'.repeat(32) },
          },
        ],
      },
      runDetails: {
        builder: { id: 'https://tekton.dev/chains/v2' },
        byproducts: [
          stepResult,
          result('DATASET_URL', 'registry.local:5000/ml-iris:data'),
          result('DATASET_DIGEST', datasetDigest),
          result('ACCURACY', '0.9'),
        ],
      },
    },
  }

  it('reads params from runSpec, results from byproducts, the trainer from dependencies', () => {
    const summary = summarizeProvenance(statement)
    expect(summary.builderId).toBe('https://tekton.dev/chains/v2')
    expect(summary.buildType).toBe('https://tekton.dev/chains/v2/slsa-tekton')
    expect(summary.params).toEqual({
      DATASET: 'registry.local:5000/ml-iris:data',
      IMAGE: 'registry.local:5000/ml-iris:model',
    })
    expect(summary.dataset).toEqual({
      url: 'registry.local:5000/ml-iris:data',
      digest: datasetDigest,
    })
    expect(summary.accuracy).toBe(0.9)
    expect(summary.trainerImage).toBe(`registry.local:5000/oml-trainer@sha256:${'22'.repeat(32)}`)
    // Chains leaves image results out of v1 byproducts; the image is the subject.
    expect(summary.image).toBeUndefined()
    expect(summary.subjects).toEqual([
      { name: 'registry.local:5000/ml-iris', digest: `sha256:${'ab'.repeat(32)}` },
    ])
  })
})

describe('statement checks', () => {
  it.each([
    ['a string', 'hello'],
    ['null', null],
    ['a wrong _type', { _type: 'x', subject: [], predicateType: 'p' }],
    ['no subject', { _type: STATEMENT_V01, predicateType: 'p' }],
    [
      'a subject without digest',
      { _type: STATEMENT_V01, subject: [{ name: 'n' }], predicateType: 'p' },
    ],
    ['no predicateType', { _type: STATEMENT_V1, subject: [] }],
  ])('rejects %s', (_label, value) => {
    expect(() => summarizeProvenance(value)).toThrow(StatementError)
  })

  it('names what is wrong', () => {
    expect(() => summarizeProvenance({ _type: 'https://example.com/x' })).toThrow(
      /not an in-toto Statement: _type is "https:\/\/example.com\/x"/,
    )
    expect(() => parseStatement('{')).toThrow(/not an in-toto Statement: not JSON/)
  })

  it('summarizes another predicate type by its subjects only', () => {
    const summary = summarizeProvenance({
      _type: STATEMENT_V1,
      subject: [{ name: 'x', digest: { sha512: 'ff' } }],
      predicateType: 'https://spdx.dev/Document',
      predicate: { spdxVersion: 'SPDX-2.3' },
    })
    expect(summary.subjects).toEqual([{ name: 'x', digest: 'sha512:ff' }])
    expect(summary.buildType).toBeUndefined()
    expect(summary.params).toEqual({})
  })
})
