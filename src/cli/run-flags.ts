/**
 * The flags of `oml-chains run`: one per input of action.yml, read into the
 * same InputSource the action reads its inputs from, so both validate alike.
 */
import { existsSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { InputError } from '../errors.js'
import { INPUT_NAMES, type InputName } from '../inputs.js'
import { UsageError } from './args.js'
import { readPasswordFile } from './files.js'

/**
 * How each input of action.yml is given on the command line. A Record over
 * InputName: an input added to action.yml does not compile until it has a flag.
 * `list` inputs (one value per line in action.yml) are repeated flags;
 * `secret` inputs come only from a file or the environment, never as a flag
 * value (the command line shows in `ps` and the shell's history).
 */
type FlagKind = 'string' | 'list' | 'boolean' | 'secret'
interface InputFlag {
  kind: FlagKind
  /** The flag's name when it is not the input's (singular for a list). */
  flag?: string
  /** What the value looks like, for --help. */
  value?: string
  help: string
}

export const RUN_FLAGS: Record<InputName, InputFlag> = {
  dataset: {
    kind: 'string',
    value: 'REF',
    help: 'OCI reference of the training dataset (tag or digest); required',
  },
  image: {
    kind: 'string',
    value: 'REF',
    help: 'where to push the model (repository[:tag]); default the embedded registry',
  },
  'registry-username': {
    kind: 'string',
    value: 'USER',
    help: 'user for the registry of --image; default the docker config',
  },
  'registry-password': {
    kind: 'secret',
    help: 'password or token for --registry-username',
  },
  cluster: {
    kind: 'string',
    value: 'kind|existing',
    help: 'a new kind cluster (default), or the existing one of --kubeconfig',
  },
  kubeconfig: {
    kind: 'string',
    value: 'PATH',
    help: 'for --cluster existing; default $KUBECONFIG, else ~/.kube/config',
  },
  'cluster-name': {
    kind: 'string',
    value: 'NAME',
    help: 'name of the kind cluster; default oml-chains',
  },
  'kind-version': {
    kind: 'string',
    value: 'V',
    help: 'kind release to install; default the pinned version',
  },
  'kubernetes-version': {
    kind: 'string',
    value: 'V',
    help: 'Kubernetes of the kind node image; one of the pinned node images',
  },
  'tekton-pipelines-version': {
    kind: 'string',
    value: 'V',
    help: 'Tekton Pipelines release to install; default the pinned version',
  },
  'tekton-chains-version': {
    kind: 'string',
    value: 'V',
    help: 'Tekton Chains release to install; default the pinned version',
  },
  'ec-version': {
    kind: 'string',
    value: 'V',
    help: 'Enterprise Contract (conforma/cli) release; default the pinned version',
  },
  'trainer-image': {
    kind: 'string',
    value: 'REF',
    help: 'image built from Containerfile: by digest, or a local tag; default built from Containerfile',
  },
  'trainer-base-image': {
    kind: 'string',
    value: 'REF',
    help: "base image of the trainer build (Containerfile's BASE_IMAGE), e.g. a mirror",
  },
  pipeline: {
    kind: 'string',
    value: 'FILE',
    help: 'your own Pipeline (and Task) YAML; default the bundled one',
  },
  params: {
    kind: 'list',
    flag: 'param',
    value: 'K=V',
    help: 'an extra pipeline param; repeatable',
  },
  policy: {
    kind: 'string',
    value: 'FILE',
    help: 'Enterprise Contract policy config; default the bundled one',
  },
  'allowed-dataset-prefixes': {
    kind: 'list',
    flag: 'allowed-dataset-prefix',
    value: 'P',
    help: 'dataset prefix the policy accepts (quay.io/my-org/); repeatable',
  },
  'min-accuracy': {
    kind: 'string',
    value: 'X',
    help: 'lowest test accuracy the policy accepts, 0 to 1; default none',
  },
  'signing-key': {
    kind: 'string',
    value: 'FILE',
    help: 'your encrypted cosign private key; default a fresh key pair',
  },
  'signing-key-password': { kind: 'secret', help: 'password of --signing-key' },
  'fail-on-violation': {
    kind: 'string',
    value: 'true|false',
    help: 'exit 1 on verdict fail (default true; an error always exits 1)',
  },
  'keep-cluster': {
    kind: 'boolean',
    help: 'leave the kind cluster and the embedded registry running',
  },
  timeout: {
    kind: 'string',
    value: 'D',
    help: 'time limit for the whole run: 30m (default), 1h, 1h30m, ...',
  },
}

/** The flag of an input, without `--`: a secret's is its file flag. */
export function flagOf(input: InputName): string {
  const spec = RUN_FLAGS[input]
  return spec.flag ?? (spec.kind === 'secret' ? `${input}-file` : input)
}

/** The environment variable a secret input may come from instead of its file flag. */
export function secretEnvOf(input: InputName): string {
  return `OML_CHAINS_${input.toUpperCase().replace(/-/g, '_')}`
}

/** `--registry-password VALUE` and the like: refused, without repeating the value. */
export function refuseSecretFlags(argv: string[]): void {
  for (const input of INPUT_NAMES) {
    if (RUN_FLAGS[input].kind !== 'secret') continue
    const given = `--${input}`
    if (argv.some((arg) => arg === given || arg.startsWith(`${given}=`))) {
      throw new UsageError(
        `${given}: secrets are not taken on the command line (ps and shell history show it); use --${flagOf(input)} FILE or $${secretEnvOf(input)}`,
      )
    }
  }
}

/** One input's value from its flag (or, for a secret, its file or variable); '' when not given. */
export async function inputValue(
  input: InputName,
  given: string | string[] | boolean | undefined,
): Promise<string> {
  const spec = RUN_FLAGS[input]
  const flag = `--${flagOf(input)}`
  switch (spec.kind) {
    case 'boolean':
      return given === true ? 'true' : ''
    case 'list':
      return Array.isArray(given) ? given.join('\n') : ''
    case 'secret':
      // The file flag wins over a variable the shell may carry from elsewhere.
      if (typeof given === 'string') return readPasswordFile(flagOf(input), given)
      return process.env[secretEnvOf(input)] ?? ''
    case 'string': {
      const value = typeof given === 'string' ? given : ''
      if (input === 'signing-key' && value.trimStart().startsWith('-----BEGIN')) {
        throw new InputError(flag, 'takes the path of the key file, never the key itself')
      }
      if (input === 'kubeconfig') {
        // A kubeconfig's content holds credentials: only a path on the command line.
        if (value.includes('\n')) {
          throw new InputError(flag, 'takes the path of a kubeconfig file, not its content')
        }
        return value || defaultKubeconfig() || ''
      }
      return value
    }
  }
}

/** kubectl's default when neither --kubeconfig nor $KUBECONFIG says otherwise. */
function defaultKubeconfig(): string | undefined {
  if (process.env.KUBECONFIG) return undefined
  const file = path.join(os.homedir(), '.kube', 'config')
  return existsSync(file) ? file : undefined
}
