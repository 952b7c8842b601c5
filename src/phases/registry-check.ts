/**
 * The pod leg of the registry check (DESIGN 3: from the runner, from a node,
 * from a pod). Before the pipeline starts, a short-lived pod from the trainer
 * image asks each registry the training talks to for `/v2/`. Its node pulling
 * the image proves the node reaches the embedded registry; its answers prove
 * that pods resolve and reach the dataset's and the model's registries. A
 * fault is then reported as the network fault it is, not minutes later as a
 * trainer error.
 */
import { UserError } from '../errors.js'
import { apiMessage, type Kube } from '../kube/client.js'
import type { KubeObject } from '../kube/objects.js'
import { withRetry } from '../kube/retry.js'
import { waitFor, WaitTimeoutError } from '../kube/wait.js'
import { isRecord } from '../json.js'
import { formatReference, registryApiHost, type Reference } from '../oci/reference.js'
import { isPlainHttpRegistry } from '../registry-client.js'

/** How long the pod may take, pull included, before the check counts as failed. */
const CHECK_TIMEOUT_MS = 3 * 60_000

/**
 * What runs in the pod: for each URL, resolve its host, then GET it. Any HTTP
 * answer (401 too) means the registry is reachable. The answers go, as one
 * JSON array, to the termination message the kubelet keeps in the Pod's status.
 */
const CHECK_SCRIPT = `
import json, socket, sys, urllib.error, urllib.parse, urllib.request
found = []
for url in sys.argv[1:]:
    host = urllib.parse.urlsplit(url).hostname
    try:
        socket.getaddrinfo(host, None)
    except OSError as err:
        found.append({"url": url, "stage": "resolve", "error": str(err)})
        continue
    try:
        urllib.request.urlopen(url, timeout=10).close()
        found.append({"url": url, "status": 200})
    except urllib.error.HTTPError as err:
        found.append({"url": url, "status": err.code})
    except Exception as err:
        found.append({"url": url, "stage": "connect", "error": str(getattr(err, "reason", err))})
text = json.dumps(found)
print(text)
try:
    with open("/dev/termination-log", "w") as log:
        log.write(text)
except OSError:
    pass
sys.exit(0 if all("status" in f for f in found) else 1)
`.trim()

/** A registry that answered the pod, with the HTTP status (401 counts: it answered). */
export interface RegistryAnswer {
  url: string
  status: number
}

/** One registry as the pod saw it. */
export type RegistryReach =
  RegistryAnswer | { url: string; stage: 'resolve' | 'connect'; error: string }

export interface RegistryCheckInputs {
  /** The trainer image (by digest): what the pipeline's pod runs, so pulling it is checked too. */
  image: Reference
  /** Registries the training talks to (dataset and model). */
  registries: string[]
  namespace: string
  /** The pipeline's service account: its pull secrets apply. */
  serviceAccount: string
}

/** `/v2/` of a registry, over HTTP for the plain-HTTP ones (as the trainer speaks to them). */
export function registryUrl(registry: string): string {
  const scheme = isPlainHttpRegistry(registry) ? 'http' : 'https'
  return `${scheme}://${registryApiHost(registry)}/v2/`
}

/** The check Pod: the trainer image, the pipeline's service account, the pipeline step's restrictions. */
export function registryCheckPod(inputs: RegistryCheckInputs): KubeObject {
  const urls = [...new Set(inputs.registries)].map(registryUrl)
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      generateName: 'oml-chains-registry-check-',
      name: undefined as never,
      namespace: inputs.namespace,
      labels: {
        'app.kubernetes.io/managed-by': 'oml-chains',
        'app.kubernetes.io/component': 'registry-check',
      },
    },
    spec: {
      restartPolicy: 'Never',
      serviceAccountName: inputs.serviceAccount,
      automountServiceAccountToken: false,
      activeDeadlineSeconds: CHECK_TIMEOUT_MS / 1000,
      securityContext: { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532 },
      containers: [
        {
          name: 'check',
          image: formatReference(inputs.image),
          command: ['python', '-c', CHECK_SCRIPT, ...urls],
          securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
        },
      ],
    },
  }
}

interface PodObject extends KubeObject {
  status?: {
    phase?: string
    reason?: string
    message?: string
    containerStatuses?: {
      state?: {
        waiting?: { reason?: string; message?: string }
        terminated?: { exitCode?: number; reason?: string; message?: string }
      }
    }[]
  }
}

/** Why the kubelet cannot start the container: it cannot get the image. */
const PULL_FAILURES = new Set(['ErrImagePull', 'ImagePullBackOff', 'InvalidImageName'])

/**
 * Runs the check pod to its end and returns what each registry answered;
 * throws a UserError naming the registry (or the image pull) that failed.
 * The pod is deleted afterwards, whatever happened.
 */
export async function checkRegistriesFromPod(
  inputs: RegistryCheckInputs,
  deps: { kube: Kube; deadline: number },
): Promise<RegistryAnswer[]> {
  const { kube } = deps
  const deadline = Math.min(deps.deadline, Date.now() + CHECK_TIMEOUT_MS)
  let created: PodObject
  try {
    created = await withRetry(
      () => kube.objects.create(registryCheckPod(inputs)),
      deadline,
      'creating the registry check pod',
    )
  } catch (err) {
    throw new UserError(`creating the registry check pod failed: ${apiMessage(err)}`)
  }
  const name = created.metadata.name
  const where = `pod ${inputs.namespace}/${name} (image ${formatReference(inputs.image)})`
  try {
    const [pod] = await waitFor<PodObject>(
      kube,
      { apiVersion: 'v1', kind: 'Pod', namespace: inputs.namespace, name },
      ([p]) => p !== undefined && (isFinished(p) || pullFailure(p) !== undefined),
      {
        deadline,
        what: `the registry check ${where} to finish`,
        diagnose: async ([p]) => describePod(p),
      },
    ).catch((err: unknown) => {
      if (err instanceof WaitTimeoutError) {
        throw new UserError(`${err.message}; check that the nodes can pull the trainer image`)
      }
      throw err
    })
    const pull = pullFailure(pod!)
    if (pull) {
      throw new UserError(
        `the node cannot pull the trainer image ${formatReference(inputs.image)} for the registry check: ${pull}`,
      )
    }
    return readAnswers(pod!, where)
  } finally {
    await kube.objects
      .delete({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: inputs.namespace } })
      .catch(() => undefined)
  }
}

function isFinished(pod: PodObject): boolean {
  return pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed'
}

/** `ErrImagePull: <kubelet's message>` while the image cannot be pulled. */
function pullFailure(pod: PodObject): string | undefined {
  const waiting = pod.status?.containerStatuses?.[0]?.state?.waiting
  if (!waiting?.reason || !PULL_FAILURES.has(waiting.reason)) return undefined
  return `${waiting.reason}${waiting.message ? `: ${waiting.message}` : ''}`
}

function describePod(pod: PodObject | undefined): string {
  if (!pod) return 'no pod'
  const state = pod.status?.containerStatuses?.[0]?.state
  const waiting = state?.waiting?.reason
  return `phase ${pod.status?.phase ?? 'unknown'}${waiting ? `, container waiting: ${waiting}` : ''}`
}

/** The answers from the termination message; a registry that was not reached fails the check. */
function readAnswers(pod: PodObject, where: string): RegistryAnswer[] {
  const terminated = pod.status?.containerStatuses?.[0]?.state?.terminated
  const message = terminated?.message?.trim() ?? ''
  let answers: unknown
  try {
    answers = JSON.parse(message)
  } catch {
    answers = undefined
  }
  if (!Array.isArray(answers) || !answers.every(isReach)) {
    const why = pod.status?.reason ?? terminated?.reason ?? 'no answers'
    throw new UserError(
      `the registry check ${where} ended ${pod.status?.phase ?? 'without a phase'} (${why}) without its answers${
        message ? `: ${message.slice(0, 500)}` : ''
      }`,
    )
  }
  const failed = answers.filter((a): a is Extract<RegistryReach, { stage: string }> => 'stage' in a)
  if (failed.length > 0) {
    throw new UserError(
      `pods in the cluster cannot reach ${failed
        .map(
          (f) =>
            `${f.url} (${f.stage === 'resolve' ? 'the name does not resolve' : 'no connection'}: ${f.error})`,
        )
        .join(
          '; ',
        )}; the training would fail to pull the dataset or push the model (checked from ${where})`,
    )
  }
  return answers.filter((a): a is RegistryAnswer => 'status' in a)
}

function isReach(value: unknown): value is RegistryReach {
  if (!isRecord(value) || typeof value.url !== 'string') return false
  if (typeof value.status === 'number') return true
  return (value.stage === 'resolve' || value.stage === 'connect') && typeof value.error === 'string'
}
