import { spawn, type ChildProcess } from 'node:child_process'
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { createWriteStream, mkdirSync } from 'node:fs'
import { mkdtemp, rm, writeFile, readFile } from 'node:fs/promises'
import { Agent, request as httpsRequest } from 'node:https'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { stringify } from 'yaml'
import { makeTestCA } from './certs.js'
import { pollUntil } from './poll-process.js'
import { toolPath } from './tools.js'

/**
 * A real control plane for tests: etcd and kube-apiserver (built by
 * scripts/test-tools.sh from scripts/kube/go.mod) on 127.0.0.1, set up the way
 * controller-runtime's envtest does it: a throwaway directory, a generated CA
 * and serving certificate, a service-account key pair, and a static token for
 * an admin in `system:masters`. Optionally kube-controller-manager too, so
 * Deployments get their ReplicaSets and Pods (no nodes: the Pods stay Pending;
 * test/harness/node/ adds a real node to it).
 */
export interface TestKube {
  /** `https://127.0.0.1:PORT` (or the `address` it was started with). */
  server: string
  /** The CA (PEM) that signed the serving certificate. */
  ca: string
  /** Bearer token of the admin user (group system:masters). */
  token: string
  /** A kubeconfig file for this cluster (context `oml-test`), inside the temp dir. */
  kubeconfigPath: string
  /** Its content (YAML). */
  kubeconfig: string
  /** The last lines each process logged (for failure messages). */
  log(): string
  /** Process ids of etcd, kube-apiserver (and kube-controller-manager), while they run. */
  pids(): number[]
  /** Sends one API request as the admin user. */
  request(
    method: string,
    apiPath: string,
    body?: unknown,
    contentType?: string,
  ): Promise<KubeResponse>
  /** Stops every process and removes the temp dir; safe to call twice. */
  stop(): Promise<void>
}

export interface KubeResponse {
  status: number
  /** Parsed JSON where the answer was JSON, else the text. */
  body: unknown
  text: string
}

export interface StartKubeOptions {
  /** Also run kube-controller-manager (Deployment → ReplicaSet → Pod, namespace cleanup, ...). */
  controllerManager?: boolean
  /** How long to wait for readiness; cold starts on 2 busy cores take a while. */
  timeoutMs?: number
  /** More kube-apiserver flags (feature gates, admission plugins, ...); later ones win. */
  apiserverArgs?: string[]
  /** More kube-controller-manager flags; later ones win. */
  controllerManagerArgs?: string[]
  /**
   * The address kube-apiserver listens on, advertises and is reached at
   * (default 127.0.0.1). Pods reach the API server through the `kubernetes`
   * Service, whose endpoint is this address, so a cluster with a node gives
   * one its pods can reach: the `kubernetes` Service then gets it as its
   * endpoint, and the serving certificate also names the Service's ClusterIP
   * and DNS names, which in-cluster clients check.
   */
  address?: string
  /**
   * Admit Pods with the ServiceAccount plugin (it mounts the service account
   * token), as a real cluster does. It rejects Pods whose ServiceAccount does
   * not exist yet, so it goes with `controllerManager`.
   */
  serviceAccounts?: boolean
  /** Also write each process's whole log to <logDir>/<name>.log (kept after stop()). */
  logDir?: string
}

/** The Services' ClusterIP range of the test API server. */
export const SERVICE_CIDR = '10.0.0.0/24'
/** ClusterIP of the `kubernetes` Service: the first address of SERVICE_CIDR. */
export const KUBERNETES_SERVICE_IP = '10.0.0.1'
/** The names in-cluster clients may use for the API server. */
const KUBERNETES_SERVICE_NAMES = [
  'kubernetes',
  'kubernetes.default',
  'kubernetes.default.svc',
  'kubernetes.default.svc.cluster.local',
]

const defaultTimeoutMs = 90_000
/** Each process keeps this many characters of its output for error messages. */
const logLimit = 64 * 1024
const tailLines = 40

/** Children still running; killed when the test process exits, whatever the tests did. */
const live = new Set<ChildProcess>()
let exitHookInstalled = false
function track(child: ChildProcess): void {
  live.add(child)
  child.once('exit', () => live.delete(child))
  if (!exitHookInstalled) {
    exitHookInstalled = true
    process.once('exit', () => {
      for (const c of live) c.kill('SIGKILL')
    })
  }
}

interface Proc {
  name: string
  child: ChildProcess
  output(): string
  /** Resolves with the exit code/signal; never rejects. */
  exited: Promise<string>
}

function run(name: string, file: string, args: string[], logDir?: string): Proc {
  const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  track(child)
  // The whole log into a file too, when asked: kept after the run.
  const logFile = logDir ? createWriteStream(path.join(logDir, `${name}.log`)) : undefined
  if (logFile) child.once('close', () => logFile.end())
  let output = ''
  const add = (chunk: string): void => {
    logFile?.write(chunk)
    output += chunk
    // Keep the tail only: kube-apiserver logs steadily for as long as it runs.
    if (output.length > 2 * logLimit) output = output.slice(-logLimit)
  }
  for (const stream of [child.stdout!, child.stderr!]) {
    // Decoded by the stream, so a character split across chunks stays whole.
    stream.setEncoding('utf8')
    stream.on('data', add)
  }
  const exited = new Promise<string>((resolve) => {
    child.once('error', (err) => resolve(`failed to start: ${err.message}`))
    child.once('exit', (code, signal) => resolve(`exited (${signal ?? code})`))
  })
  return { name, child, output: () => output, exited }
}

function tail(proc: Proc): string {
  const lines = proc.output().trimEnd().split('\n')
  return `--- last ${Math.min(lines.length, tailLines)} lines of ${proc.name} ---\n${lines.slice(-tailLines).join('\n')}`
}

async function stopProc(proc: Proc): Promise<void> {
  const { child } = proc
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return
  child.kill('SIGTERM')
  // A graceful shutdown is quick here; a hung one must not hang the suite.
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000)
  await proc.exited
  clearTimeout(timer)
}

/**
 * Free ports from the OS: bind port 0, read the port, close. All are held open
 * together so they differ; another process may still grab one before our
 * server binds it, which `startKube` retries.
 */
async function freePorts(count: number, host = '127.0.0.1'): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, async () => {
      const server = createServer()
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(0, host, resolve)
      })
      return server
    }),
  )
  const ports = servers.map((s) => (s.address() as AddressInfo).port)
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))))
  return ports
}

class PortTaken extends Error {}

/**
 * Polls `probe` until it says ready (see pollUntil); a process that ended
 * because its port was taken fails with PortTaken, so the caller picks another.
 */
function waitUntil(
  proc: Proc,
  what: string,
  deadline: number,
  probe: () => Promise<string | true>,
): Promise<void> {
  return pollUntil({ ...proc, tail: () => tail(proc) }, what, deadline, probe, (message) =>
    /address already in use/.test(proc.output()) ? new PortTaken(message) : new Error(message),
  )
}

/** The CA, the API server's serving certificate, and the service-account key pair. */
async function makeCerts(dir: string, names: string[]): Promise<void> {
  const ca = await makeTestCA()
  try {
    const serving = await ca.issue(names)
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
    const file = (name: string): string => path.join(dir, name)
    await Promise.all([
      writeFile(file('ca.crt'), ca.caPem),
      writeFile(file('serving.crt'), serving.cert),
      writeFile(file('serving.key'), serving.key, { mode: 0o600 }),
      writeFile(file('sa.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }), {
        mode: 0o600,
      }),
      writeFile(file('sa.pub'), publicKey.export({ type: 'spki', format: 'pem' })),
    ])
  } finally {
    await ca.dispose()
  }
}

function kubeconfigFor(server: string, ca: string, token: string): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: 'oml-test',
        cluster: { server, 'certificate-authority-data': Buffer.from(ca).toString('base64') },
      },
    ],
    users: [{ name: 'oml-test-admin', user: { token } }],
    contexts: [{ name: 'oml-test', context: { cluster: 'oml-test', user: 'oml-test-admin' } }],
    'current-context': 'oml-test',
  })
}

function makeRequest(server: string, agent: Agent, token: string) {
  return (
    method: string,
    apiPath: string,
    body?: unknown,
    contentType = 'application/json',
  ): Promise<KubeResponse> =>
    new Promise((resolve, reject) => {
      const payload =
        body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body)
      const req = httpsRequest(
        new URL(apiPath, server),
        {
          method,
          agent,
          timeout: 10_000,
          headers: {
            authorization: `Bearer ${token}`,
            accept: 'application/json',
            ...(payload === undefined
              ? {}
              : { 'content-type': contentType, 'content-length': Buffer.byteLength(payload) }),
          },
        },
        (res) => {
          let text = ''
          res.setEncoding('utf8')
          res.on('data', (chunk: string) => (text += chunk))
          res.on('end', () => {
            let parsed: unknown = text
            if (/json/.test(res.headers['content-type'] ?? '')) {
              try {
                parsed = JSON.parse(text)
              } catch {
                // Left as text: the caller sees what the server sent.
              }
            }
            resolve({ status: res.statusCode ?? 0, body: parsed, text })
          })
          res.on('error', reject)
        },
      )
      req.on('timeout', () => req.destroy(new Error(`${method} ${apiPath}: no answer in 10 s`)))
      req.on('error', reject)
      req.end(payload)
    })
}

/** Starts etcd and kube-apiserver (and kube-controller-manager if asked) and waits until ready. */
export async function startKube(options: StartKubeOptions = {}): Promise<TestKube> {
  const etcdBin = toolPath('etcd')
  const apiserverBin = toolPath('kube-apiserver')
  const kcmBin = options.controllerManager ? toolPath('kube-controller-manager') : undefined
  const deadline = Date.now() + (options.timeoutMs ?? defaultTimeoutMs)

  const address = options.address ?? '127.0.0.1'
  const loopback = address === '127.0.0.1'
  const dir = await mkdtemp(path.join(tmpdir(), 'oml-kube-'))
  if (options.logDir) mkdirSync(options.logDir, { recursive: true })
  const start = (name: string, file: string, args: string[]): Proc =>
    run(name, file, args, options.logDir)
  const procs: Proc[] = []
  let stopped = false
  const stop = async (): Promise<void> => {
    if (stopped) return
    stopped = true
    // Reverse order: the API server goes before its etcd, so it does not log connection errors.
    for (const proc of [...procs].reverse()) await stopProc(proc)
    await rm(dir, { recursive: true, force: true })
  }

  try {
    await makeCerts(
      dir,
      loopback
        ? ['127.0.0.1', 'localhost']
        : [address, '127.0.0.1', 'localhost', KUBERNETES_SERVICE_IP, ...KUBERNETES_SERVICE_NAMES],
    )
    const ca = await readFile(path.join(dir, 'ca.crt'), 'utf8')
    const token = randomBytes(24).toString('hex')
    // token,user,uid,"groups": system:masters passes every RBAC check.
    await writeFile(
      path.join(dir, 'tokens.csv'),
      `${token},oml-test-admin,oml-test-admin,"system:masters"\n`,
      { mode: 0o600 },
    )

    // A port race (another process binding the port we probed) is retried with new ports.
    const startWithRetry = async <T>(start: () => Promise<T>): Promise<T> => {
      for (let attempt = 1; ; attempt++) {
        try {
          return await start()
        } catch (err) {
          if (!(err instanceof PortTaken) || attempt >= 3) throw err
        }
      }
    }

    const etcdUrl = await startWithRetry(async () => {
      const [client, peer] = await freePorts(2)
      const clientUrl = `http://127.0.0.1:${client}`
      const peerUrl = `http://127.0.0.1:${peer}`
      const proc = start('etcd', etcdBin, [
        '--name=test',
        `--data-dir=${path.join(dir, `etcd-${client}`)}`,
        `--listen-client-urls=${clientUrl}`,
        `--advertise-client-urls=${clientUrl}`,
        `--listen-peer-urls=${peerUrl}`,
        `--initial-advertise-peer-urls=${peerUrl}`,
        `--initial-cluster=test=${peerUrl}`,
        // Throwaway data: skipping fsync makes every write much faster.
        '--unsafe-no-fsync',
        '--log-level=warn',
      ])
      procs.push(proc)
      try {
        await waitUntil(proc, 'answering /health', deadline, async () => {
          const res = await fetch(`${clientUrl}/health`, { signal: AbortSignal.timeout(2_000) })
          const text = await res.text()
          return res.ok && /"health":\s*"true"/.test(text) ? true : `HTTP ${res.status} ${text}`
        })
      } catch (err) {
        await stopProc(proc)
        procs.splice(procs.indexOf(proc), 1)
        throw err
      }
      return clientUrl
    })

    const agent = new Agent({ ca, keepAlive: false })
    const { server, request } = await startWithRetry(async () => {
      const [port] = await freePorts(1, address)
      const server = `https://${address}:${port}`
      const request = makeRequest(server, agent, token)
      const proc = start('kube-apiserver', apiserverBin, [
        `--etcd-servers=${etcdUrl}`,
        `--bind-address=${address}`,
        `--advertise-address=${address}`,
        `--secure-port=${port}`,
        `--tls-cert-file=${path.join(dir, 'serving.crt')}`,
        `--tls-private-key-file=${path.join(dir, 'serving.key')}`,
        `--cert-dir=${path.join(dir, 'certs')}`,
        `--client-ca-file=${path.join(dir, 'ca.crt')}`,
        `--token-auth-file=${path.join(dir, 'tokens.csv')}`,
        '--authorization-mode=RBAC',
        '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
        `--service-account-key-file=${path.join(dir, 'sa.pub')}`,
        `--service-account-signing-key-file=${path.join(dir, 'sa.key')}`,
        `--service-cluster-ip-range=${SERVICE_CIDR}`,
        // The `kubernetes` Service cannot point at a loopback address; without this the
        // apiserver retries (and logs an error) every few seconds.
        ...(loopback ? ['--endpoint-reconciler-type=none'] : []),
        // Without kube-controller-manager nobody creates the `default` ServiceAccount
        // a Pod needs; tests that create Pods directly should not depend on it.
        ...(options.serviceAccounts ? [] : ['--disable-admission-plugins=ServiceAccount']),
        ...(options.apiserverArgs ?? []),
      ])
      procs.push(proc)
      try {
        await waitUntil(proc, 'ready (/readyz)', deadline, async () => {
          const res = await request('GET', '/readyz')
          return res.status === 200 ? true : `HTTP ${res.status} ${res.text.slice(0, 2000)}`
        })
      } catch (err) {
        await stopProc(proc)
        procs.splice(procs.indexOf(proc), 1)
        throw err
      }
      // /readyz does not cover the system namespaces; tests expect `default` to exist.
      await waitUntil(proc, 'namespace default exists', deadline, async () => {
        const res = await request('GET', '/api/v1/namespaces/default')
        return res.status === 200 ? true : `HTTP ${res.status}`
      })
      return { server, request }
    })

    const kubeconfig = kubeconfigFor(server, ca, token)
    const kubeconfigPath = path.join(dir, 'kubeconfig')
    await writeFile(kubeconfigPath, kubeconfig, { mode: 0o600 })

    if (kcmBin) {
      const proc = start('kube-controller-manager', kcmBin, [
        `--kubeconfig=${kubeconfigPath}`,
        // One instance, no lease to wait for.
        '--leader-elect=false',
        // Its own HTTPS endpoint is not needed; 0 turns it off.
        '--secure-port=0',
        `--service-account-private-key-file=${path.join(dir, 'sa.key')}`,
        `--root-ca-file=${path.join(dir, 'ca.crt')}`,
        // Every controller runs as the admin: no per-controller credentials to manage.
        '--use-service-account-credentials=false',
        '--controllers=*',
        ...(options.controllerManagerArgs ?? []),
      ])
      procs.push(proc)
      // Ready when it has done its first job: the `default` ServiceAccount in `default`.
      await waitUntil(proc, 'creating ServiceAccount default/default', deadline, async () => {
        const res = await request('GET', '/api/v1/namespaces/default/serviceaccounts/default')
        return res.status === 200 ? true : `HTTP ${res.status}`
      })
    }

    return {
      server,
      ca,
      token,
      kubeconfigPath,
      kubeconfig,
      log: () => procs.map(tail).join('\n'),
      pids: () =>
        procs.flatMap(({ child }) =>
          child.pid !== undefined && child.exitCode === null && child.signalCode === null
            ? [child.pid]
            : [],
        ),
      request,
      stop,
    }
  } catch (err) {
    await stop()
    throw err
  }
}
