import { existsSync, readFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import * as core from '@actions/core'
import { parseDuration } from './duration.js'
import { bundledFile } from './bundled.js'
import { errorMessage, InputError, UserError } from './errors.js'
import { parseReference, type Reference } from './oci/reference.js'
import { maskSecret } from './secrets.js'
import {
  OWN_PARAMS,
  paramProblems,
  parsePipelineFile,
  type PipelineDefinition,
} from './pipeline-definition.js'
import {
  embeddedModelImage,
  EMBEDDED_REGISTRY,
  type ClusterPlan,
  type Plan,
  type RegistryAuth,
  type SigningKeyInput,
  type TrainerPlan,
} from './plan.js'
import * as versions from './versions.js'

/** Every input of action.yml, by name. */
export const INPUT_NAMES = [
  'dataset',
  'image',
  'registry-username',
  'registry-password',
  'cluster',
  'kubeconfig',
  'cluster-name',
  'kind-version',
  'kubernetes-version',
  'tekton-pipelines-version',
  'tekton-chains-version',
  'ec-version',
  'trainer-image',
  'trainer-base-image',
  'pipeline',
  'params',
  'policy',
  'allowed-dataset-prefixes',
  'min-accuracy',
  'signing-key',
  'signing-key-password',
  'fail-on-violation',
  'keep-cluster',
  'timeout',
] as const
export type InputName = (typeof INPUT_NAMES)[number]

/**
 * Inputs whose values are secrets: masked as they are read, before anything can
 * log them. `signing-key` may be a path (not secret, and useful in messages):
 * its content is masked when it is read, whether given inline or from the file.
 */
export const SECRET_INPUTS: readonly InputName[] = ['registry-password', 'signing-key-password']

/**
 * Params the action sets from other inputs; `params` may not set them.
 * MIN_ACCURACY is not one: `params` may set it to stop the training itself
 * (see OWN_PARAMS).
 */
const RESERVED_PARAMS: Readonly<Record<string, InputName>> = OWN_PARAMS

/** Where readPlan gets its values; the action and the CLI each provide one, tests a plain one. */
export interface InputSource {
  /** The input's value, trimmed; '' when not set. Action defaults from action.yml apply. */
  get(name: InputName): string
  env: Readonly<Record<string, string | undefined>>
  readFile(file: string): string
  exists(file: string): boolean
  homedir: string
  /** Called on secret values read from files, before they are used. */
  mask(value: string): void
}

export interface PlanResult {
  plan: Plan
  /** Things worth telling the user that do not stop the run. */
  warnings: string[]
}

/** Every bad input of a run, each its own InputError; the message has one line per input. */
export class InputErrors extends UserError {
  override name = 'InputErrors'
  constructor(readonly errors: readonly InputError[]) {
    super(errors.map((e) => e.message).join('\n'))
  }
}

/**
 * Reads and validates every input once. Every input is checked, also after
 * one is found wrong: all the mistakes come back together as InputErrors,
 * each naming its input and what it accepts. Creates nothing.
 */
export function readPlan(source: InputSource): PlanResult {
  const warnings: string[] = []
  const problems: InputError[] = []
  const get = (name: InputName): string => source.get(name).trim()
  /** One input's reading: a mistake is noted and `fallback` stands in, so the others are read too. */
  function check<T>(read: () => T, fallback: T): T {
    try {
      return read()
    } catch (err) {
      if (!(err instanceof InputError)) throw err
      problems.push(err)
      return fallback
    }
  }

  const dataset = check(() => readDataset(get('dataset')), undefined)
  const runId = runIdFrom(source.env)
  const cluster = check(() => readCluster(source, get, check), undefined)
  const { image, embeddedRegistry } = check<{ image?: Reference; embeddedRegistry: boolean }>(
    () => readImage(get('image'), runId, cluster),
    { embeddedRegistry: false },
  )
  const registryAuth = check(() => readRegistryAuth(source, get, image), undefined)
  const trainer = check(() => readTrainer(get, cluster), undefined)
  const allowedDatasetPrefixes = check(() => readPrefixes(get, warnings), [])
  const pipelinePath = check(() => readPath(source, get, 'pipeline'), undefined)
  const pipeline = problems.some((p) => p.input === 'pipeline')
    ? undefined
    : check(() => readPipeline(source, pipelinePath), undefined)
  const params = check(() => readParams(get('params')), {})
  // Only a Pipeline that could be read can say which params it declares.
  if (pipeline && !problems.some((p) => p.input === 'params')) {
    check(() => checkParamsDeclared(pipeline, params), undefined)
  }
  const plan = {
    tektonPipelinesVersion: check(
      () => readVersion(get, 'tekton-pipelines-version', versions.tektonPipelinesVersion),
      '',
    ),
    tektonChainsVersion: check(
      () => readVersion(get, 'tekton-chains-version', versions.tektonChainsVersion),
      '',
    ),
    ecVersion: check(() => readVersion(get, 'ec-version', versions.ecVersion), ''),
    policyPath: check(() => readPath(source, get, 'policy'), undefined),
    minAccuracy: check(() => readMinAccuracy(get('min-accuracy')), undefined),
    signingKey: check(() => readSigningKey(source, get), undefined),
    failOnViolation: check(() => readBoolean(get, 'fail-on-violation', true), true),
    keepCluster: check(() => readBoolean(get, 'keep-cluster', false), false),
    timeoutMs: check(() => readTimeout(get('timeout')), 0),
  }
  if (problems.length > 0) {
    // In the order of action.yml, whatever order they were read in.
    const order = (e: InputError) => INPUT_NAMES.indexOf(e.input as InputName)
    throw new InputErrors(problems.sort((a, b) => order(a) - order(b)))
  }
  // Every reader that fell back has recorded a problem, so none is missing here.
  if (!dataset || !cluster || !image || !registryAuth || !trainer) {
    throw new Error('readPlan: an input was neither read nor reported')
  }
  return {
    plan: {
      dataset,
      image,
      embeddedRegistry,
      runsEmbeddedRegistry: cluster.mode === 'kind' && (embeddedRegistry || pushesTrainer(trainer)),
      registryAuth,
      cluster,
      trainer,
      pipelinePath,
      params,
      allowedDatasetPrefixes,
      ...plan,
      runId,
    },
    warnings,
  }
}

function readDataset(text: string) {
  if (!text)
    throw new InputError('dataset', 'is required (an OCI reference such as quay.io/org/data:tag)')
  return parseReference(text, 'dataset')
}

/**
 * The trainer image: the input; else a build from a given base; else the
 * published image pinned in versions.ts; else, next to a kind cluster, a build
 * from the action's own Containerfile.
 */
function readTrainer(get: (n: InputName) => string, cluster: ClusterPlan | undefined): TrainerPlan {
  const given = get('trainer-image')
  const base = get('trainer-base-image')
  if (given) {
    if (base) {
      throw new InputError(
        'trainer-base-image',
        'applies only when the action builds the trainer image; leave it empty with trainer-image',
      )
    }
    return { source: 'input', image: parseReference(given, 'trainer-image') }
  }
  if (!base && versions.trainerImage) {
    return { source: 'published', image: parseReference(versions.trainerImage, 'trainer-image') }
  }
  if (cluster?.mode === 'existing') {
    throw new InputError(
      'trainer-image',
      'is required with cluster: existing (the action builds the trainer image only next to a kind cluster, into its embedded registry); build it from Containerfile, push it where the cluster pulls from, and give it by digest',
    )
  }
  if (base) parseReference(base, 'trainer-base-image')
  return base ? { source: 'build', baseImage: base } : { source: 'build' }
}

/** A trainer image that goes through the embedded registry: a build, or a tag that may be the runner's own. */
function pushesTrainer(trainer: TrainerPlan): boolean {
  return trainer.source === 'build' || (trainer.source === 'input' && !trainer.image.digest)
}

function readPrefixes(get: (n: InputName) => string, warnings: string[]): string[] {
  const prefixes = lines(get('allowed-dataset-prefixes'))
  for (const prefix of prefixes) {
    if (/\s/.test(prefix)) {
      throw new InputError(
        'allowed-dataset-prefixes',
        `"${prefix}" contains a space; give one prefix per line`,
      )
    }
  }
  if (prefixes.length === 0) {
    warnings.push(
      'allowed-dataset-prefixes is empty: the policy accepts no dataset, so the dataset.permitted rule will fail',
    )
  }
  return prefixes
}

/** The Pipeline file, the user's or the bundled one, parsed and checked. */
function readPipeline(source: InputSource, pipelinePath: string | undefined): PipelineDefinition {
  if (!pipelinePath) {
    // The action's own file: read from where the action is, not through `source`.
    const file = bundledFile('tekton/pipeline.yaml')
    return parsePipelineFile(readFileSync(file, 'utf8'), 'the bundled pipeline.yaml')
  }
  try {
    return parsePipelineFile(source.readFile(pipelinePath), `file ${pipelinePath}`)
  } catch (err) {
    throw new InputError('pipeline', errorMessage(err))
  }
}

/** Every `params` key must be one the Pipeline declares, and what it needs must be set. */
function checkParamsDeclared(pipeline: PipelineDefinition, params: Record<string, string>): void {
  const problems = paramProblems(pipeline, params)
  if (problems.length > 0) throw new InputError('params', problems.join('; '))
}

/** The InputSource of a GitHub Actions run: INPUT_* variables, secrets masked as read. */
export function actionInputSource(): InputSource {
  return {
    get(name) {
      const value = core.getInput(name)
      if (SECRET_INPUTS.includes(name)) maskSecret(value)
      return value
    },
    env: process.env,
    readFile: (file) => readFileSync(file, 'utf8'),
    exists: (file) => existsSync(file),
    homedir: os.homedir(),
    mask: maskSecret,
  }
}

function runIdFrom(env: InputSource['env']): string {
  const id = env.GITHUB_RUN_ID
  if (id) return `run-${id}-${env.GITHUB_RUN_ATTEMPT ?? '1'}`
  // Outside Actions: a sortable timestamp, valid as a tag and a Kubernetes name part.
  return `local-${new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').toLowerCase()}`
}

function readCluster(
  source: InputSource,
  get: (n: InputName) => string,
  check: <T>(read: () => T, fallback: T) => T,
): ClusterPlan | undefined {
  const mode = get('cluster') || 'kind'
  if (mode === 'kind') {
    const name = check(() => readClusterName(get('cluster-name') || 'oml-chains'), undefined)
    const kindVersion = check(() => readVersion(get, 'kind-version', versions.kind.version), '')
    const node = check(() => readNodeImage(get), undefined)
    if (name === undefined || node === undefined) return undefined
    return { mode, name, kindVersion, ...node }
  }
  if (mode === 'existing') {
    const given = get('kubeconfig')
    if (given && looksLikeKubeconfigContent(given)) {
      return { mode, kubeconfig: given, kubeconfigSource: 'the kubeconfig input' }
    }
    const file = given || source.env.KUBECONFIG?.split(path.delimiter)[0] || ''
    if (!file) {
      throw new InputError(
        'kubeconfig',
        'is required with cluster: existing (a path or the content; $KUBECONFIG is not set)',
      )
    }
    return { mode, kubeconfig: readInputFile(source, 'kubeconfig', file), kubeconfigSource: file }
  }
  throw new InputError('cluster', `"${mode}" is not accepted; use kind or existing`)
}

function readClusterName(name: string): string {
  if (!/^[a-z0-9]([-a-z0-9]{0,48}[a-z0-9])?$/.test(name)) {
    throw new InputError(
      'cluster-name',
      `"${name}" is not a valid kind cluster name (lowercase letters, digits and '-', at most 50 characters)`,
    )
  }
  return name
}

function readNodeImage(get: (n: InputName) => string): {
  kubernetesVersion: string
  nodeImage: string
} {
  const kubernetesVersion = readVersion(get, 'kubernetes-version', versions.kubernetesVersion)
  const nodeImage = versions.kindNodeImages[kubernetesVersion]
  if (!nodeImage) {
    throw new InputError(
      'kubernetes-version',
      `${kubernetesVersion} has no pinned kind node image; accepted: ${Object.keys(versions.kindNodeImages).join(', ')}`,
    )
  }
  return { kubernetesVersion, nodeImage }
}

function looksLikeKubeconfigContent(text: string): boolean {
  return (
    text.includes('\n') || /^\s*(apiVersion|clusters|kind)\s*:/.test(text) || text.startsWith('{')
  )
}

function readImage(
  text: string,
  runId: string,
  cluster: ClusterPlan | undefined,
): { image: Reference; embeddedRegistry: boolean } {
  if (!text) {
    if (cluster?.mode === 'existing') {
      throw new InputError(
        'image',
        'is required with cluster: existing (the embedded registry exists only next to a kind cluster)',
      )
    }
    return {
      image: parseReference(embeddedModelImage(runId), 'image'),
      embeddedRegistry: true,
    }
  }
  // registry.local:5000 with cluster: existing is a registry the action does
  // not start (a kind cluster kept by an earlier run has one): the cluster
  // phase checks that it answers.
  const image = parseReference(text, 'image')
  if (image.digest) {
    throw new InputError(
      'image',
      `${text} has a digest; give the repository (and optionally a tag) to push to`,
    )
  }
  const tagged = image.tag ? image : { ...image, tag: runId }
  return { image: tagged, embeddedRegistry: image.registry === EMBEDDED_REGISTRY }
}

function readRegistryAuth(
  source: InputSource,
  get: (n: InputName) => string,
  image: Reference | undefined,
): RegistryAuth {
  const username = get('registry-username')
  const password = source.get('registry-password') // not trimmed: a password is taken as given
  if (username && !password) {
    throw new InputError('registry-password', 'is required with registry-username')
  }
  if (password && !username) {
    throw new InputError('registry-username', 'is required with registry-password')
  }
  const dockerConfigDir = source.env.DOCKER_CONFIG || path.join(source.homedir, '.docker')
  const dockerConfigFile = path.join(dockerConfigDir, 'config.json')
  return {
    // Without a valid image (reported already) there is no registry to give them to.
    explicit: username && image ? { registry: image.registry, username, password } : undefined,
    dockerConfigPath: source.exists(dockerConfigFile) ? dockerConfigFile : undefined,
  }
}

function readVersion(get: (n: InputName) => string, name: InputName, fallback: string): string {
  const value = get(name) || fallback
  if (!/^v\d+\.\d+\.\d+$/.test(value)) {
    throw new InputError(name, `"${value}" is not a release version; use the form v1.2.3`)
  }
  return value
}

function readPath(
  source: InputSource,
  get: (n: InputName) => string,
  name: InputName,
): string | undefined {
  const file = get(name)
  if (!file) return undefined
  readInputFile(source, name, file) // fails now, before anything is created, if unreadable
  return file
}

function readInputFile(source: InputSource, name: InputName, file: string): string {
  try {
    return source.readFile(file)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    const why =
      code === 'ENOENT' ? 'does not exist' : code === 'EISDIR' ? 'is a directory' : 'cannot be read'
    throw new InputError(name, `file ${file} ${why}`)
  }
}

function readParams(text: string): Record<string, string> {
  const params: Record<string, string> = {}
  for (const line of lines(text)) {
    const eq = line.indexOf('=')
    const key = eq > 0 ? line.slice(0, eq).trim() : ''
    if (!/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(key)) {
      throw new InputError('params', `"${line}" is not key=value with a Tekton param name as key`)
    }
    const owner = RESERVED_PARAMS[key]
    if (owner)
      throw new InputError('params', `${key} is set by the '${owner}' input, not by params`)
    if (key in params) throw new InputError('params', `${key} is given twice`)
    params[key] = line.slice(eq + 1).trim()
  }
  return params
}

function readMinAccuracy(text: string): number | undefined {
  if (!text) return undefined
  const value = Number(text)
  if (!/^\d*\.?\d+$/.test(text) || !Number.isFinite(value) || value < 0 || value > 1) {
    throw new InputError(
      'min-accuracy',
      `"${text}" is not accepted; use a number from 0 to 1, e.g. 0.9`,
    )
  }
  return value
}

function readSigningKey(
  source: InputSource,
  get: (n: InputName) => string,
): SigningKeyInput | undefined {
  const given = get('signing-key')
  const inline = given.startsWith('-----BEGIN')
  if (inline) source.mask(given)
  const password = source.get('signing-key-password')
  if (!given) {
    if (password) throw new InputError('signing-key', 'is required with signing-key-password')
    return undefined
  }
  if (!password) {
    throw new InputError(
      'signing-key-password',
      'is required with signing-key (the password of the encrypted key)',
    )
  }
  if (inline) return { pem: given, password, source: 'the given key' }
  const pem = readInputFile(source, 'signing-key', given)
  source.mask(pem)
  if (!pem.trimStart().startsWith('-----BEGIN')) {
    throw new InputError(
      'signing-key',
      `file ${given} is not a PEM key (an encrypted cosign private key)`,
    )
  }
  return { pem, password, source: given }
}

function readBoolean(get: (n: InputName) => string, name: InputName, fallback: boolean): boolean {
  const value = get(name)
  if (!value) return fallback
  // The YAML 1.2 core schema booleans, as @actions/core accepts them.
  if (['true', 'True', 'TRUE'].includes(value)) return true
  if (['false', 'False', 'FALSE'].includes(value)) return false
  throw new InputError(name, `"${value}" is not accepted; use true or false`)
}

function readTimeout(text: string): number {
  const value = text || '30m'
  const ms = parseDuration(value)
  if (ms === undefined || ms <= 0) {
    throw new InputError(
      'timeout',
      `"${value}" is not accepted; use a duration such as 30m, 1h or 1h30m`,
    )
  }
  return ms
}

/** Non-empty, trimmed lines; `#` starts a comment line. */
function lines(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
}
