import { readFileSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { parse, stringify } from 'yaml'
import { startKube, type TestKube } from '../../test/harness/kube.js'
import { startRegistry } from '../../test/harness/registry.js'
import { UserError } from '../errors.js'
import type { ClusterPlan } from '../plan.js'
import type { Command, CommandResult, CommandRunner } from '../tools/exec.js'
import { REGISTRY_IMAGE } from '../tools/docker.js'
import * as versions from '../versions.js'
import { cleanup } from './cleanup.js'
import {
  prepareCluster,
  probeRegistry,
  type ClusterDeps,
  type CreatedResources,
} from './cluster.js'

let kube: TestKube
let apiVersion: string

beforeAll(async () => {
  kube = await startKube()
  apiVersion = ((await kube.request('GET', '/version')).body as { gitVersion: string }).gitVersion
  // The API server creates kube-public shortly after it is ready; kind clusters always have it.
  for (let pause = 20; ; pause = Math.min(pause * 2, 500)) {
    if ((await kube.request('GET', '/api/v1/namespaces/kube-public')).status === 200) break
    await delay(pause)
  }
}, 120_000)

afterAll(async () => {
  await kube?.stop()
})

let dir: string
let hostsPath: string

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'oml-cluster-'))
  hostsPath = path.join(dir, 'hosts')
  await writeFile(hostsPath, '127.0.0.1 localhost\n')
})

afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

/** A runner that fails the test if anything runs: existing mode must not touch docker or kind. */
const nothingRuns: CommandRunner = async (command) => {
  throw new Error(`unexpected command ${command.file} ${command.args.join(' ')}`)
}

function deps(overrides: Partial<ClusterDeps> = {}): ClusterDeps & { masked: string[] } {
  const masked: string[] = []
  return {
    run: nothingRuns,
    installKind: async () => {
      throw new Error('installKind called')
    },
    hostsFile: { path: hostsPath, isRoot: true, run: nothingRuns },
    workDir: dir,
    deadline: Date.now() + 60_000,
    probeRegistry: async () => {
      throw new Error('probeRegistry called')
    },
    record: () => {},
    mask: (secret) => masked.push(secret),
    log: () => {},
    ...overrides,
    masked,
  }
}

function existing(kubeconfig: string, source = 'the kubeconfig input'): { cluster: ClusterPlan } {
  return { cluster: { mode: 'existing', kubeconfig, kubeconfigSource: source } }
}

/** The parts of the test kubeconfig the tests change. */
interface TestKubeconfig {
  clusters: [{ cluster: { server: string; 'certificate-authority-data'?: string } }]
  users: [{ user: { token?: string } }]
  'current-context': string
}

/** The test kubeconfig with some fields changed. */
function editKubeconfig(change: (config: TestKubeconfig) => void): string {
  const config = parse(kube.kubeconfig) as TestKubeconfig
  change(config)
  return stringify(config)
}

async function unusedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}

describe('prepareCluster, cluster: existing (real kube-apiserver)', () => {
  it('connects with a good kubeconfig, reports the server version, creates nothing', async () => {
    const d = deps()
    const prepared = await prepareCluster(
      { ...existing(kube.kubeconfig), embeddedRegistry: false, runsEmbeddedRegistry: false },
      d,
    )
    expect(prepared.mode).toBe('existing')
    expect(prepared.serverVersion).toBe(apiVersion)
    expect(prepared.serverVersion).toMatch(/^v1\.\d+\.\d+/)
    expect(prepared.kube.server).toBe(kube.server)
    expect(prepared.created).toEqual({})
    expect(prepared.canInstallCrds).toBe(true) // the test user is in system:masters
    expect(prepared.embeddedRegistry).toBeUndefined()
    expect(d.masked).toContain(kube.token)
    // What it cleans up afterwards: nothing.
    const result = await cleanup(
      prepared.created,
      { keepCluster: false },
      {
        run: nothingRuns,
        hostsFile: d.hostsFile,
        log: () => {},
      },
    )
    expect(result).toEqual({ removed: [], kept: [], warnings: [] })
  })

  it('names the server, user and context when the token is wrong', async () => {
    const bad = editKubeconfig((c) => (c.users[0].user.token = 'not-the-token'))
    const failure = prepareCluster(
      { ...existing(bad), embeddedRegistry: false, runsEmbeddedRegistry: false },
      deps(),
    )
    await expect(failure).rejects.toBeInstanceOf(UserError)
    await expect(failure).rejects.toThrow(
      `the Kubernetes API server ${kube.server} rejected the credentials (user oml-test-admin, context oml-test in the kubeconfig input): HTTP 401`,
    )
  })

  it('rejects a kubeconfig without credentials: /version answers anyone, the access review does not', async () => {
    const anonymous = editKubeconfig((c) => (c.users[0].user = {}))
    await expect(
      prepareCluster(
        {
          ...existing(anonymous, '/home/u/kube.yaml'),
          embeddedRegistry: false,
          runsEmbeddedRegistry: false,
        },
        deps(),
      ),
    ).rejects.toThrow(
      `the Kubernetes API server ${kube.server} rejected the credentials (user oml-test-admin, context oml-test in /home/u/kube.yaml): HTTP 403: selfsubjectaccessreviews.authorization.k8s.io is forbidden: User "system:anonymous"`,
    )
  })

  it('names a server nobody listens on, and says so fast', async () => {
    const server = `https://127.0.0.1:${await unusedPort()}`
    const down = editKubeconfig((c) => (c.clusters[0].cluster.server = server))
    const started = Date.now()
    const failure = prepareCluster(
      { ...existing(down), embeddedRegistry: false, runsEmbeddedRegistry: false },
      deps(),
    )
    await expect(failure).rejects.toThrow(
      new RegExp(
        `^cannot reach the Kubernetes API server ${server} \\(user oml-test-admin, context oml-test in the kubeconfig input\\): .*ECONNREFUSED`,
      ),
    )
    expect(Date.now() - started).toBeLessThan(5_000)
  })

  it('names a server whose certificate is not signed by the kubeconfig CA', async () => {
    const otherCa = editKubeconfig((c) => {
      delete c.clusters[0].cluster['certificate-authority-data']
    })
    await expect(
      prepareCluster(
        { ...existing(otherCa), embeddedRegistry: false, runsEmbeddedRegistry: false },
        deps(),
      ),
    ).rejects.toThrow(
      new RegExp(`^cannot reach the Kubernetes API server ${kube.server} .*certificate`),
    )
  })

  it('says when the kubeconfig is not one', async () => {
    await expect(
      prepareCluster(
        {
          ...existing('clusters: [unclosed', '/tmp/kc'),
          embeddedRegistry: false,
          runsEmbeddedRegistry: false,
        },
        deps(),
      ),
    ).rejects.toThrow(/^\/tmp\/kc is not a valid kubeconfig/)
    const noContext = editKubeconfig((c) => (c['current-context'] = 'missing'))
    await expect(
      prepareCluster(
        { ...existing(noContext, '/tmp/kc'), embeddedRegistry: false, runsEmbeddedRegistry: false },
        deps(),
      ),
    ).rejects.toThrow('/tmp/kc has no current context with a cluster')
  })

  it('takes registry.local:5000 only when it answers already: nothing starts it', async () => {
    const plan = {
      ...existing(kube.kubeconfig),
      embeddedRegistry: true,
      runsEmbeddedRegistry: false,
    }
    // The real probe, sent to a closed port on loopback and to a real registry.
    const closedUrl = `http://127.0.0.1:${await unusedPort()}/v2/`
    const closed = deps({
      deadline: Date.now() + 1_000,
      probeRegistry: (_url, deadline) => probeRegistry(closedUrl, deadline),
    })
    await expect(prepareCluster(plan, closed)).rejects.toThrow(
      /^image: registry\.local:5000 does not answer \(the registry at http:\/\/127\.0\.0\.1:\d+\/v2\/ does not answer from the runner: .*ECONNREFUSED.*\); with cluster: existing the action starts no registry/,
    )
    const registry = await startRegistry()
    try {
      const answering = deps({
        probeRegistry: (_url, deadline) => probeRegistry(`http://${registry.host}/v2/`, deadline),
      })
      const prepared = await prepareCluster(plan, answering)
      expect(prepared.embeddedRegistry).toEqual({ host: 'registry.local:5000' })
      expect(prepared.created).toEqual({})
    } finally {
      await registry.stop()
    }
  })
})

/**
 * Plays kind and docker for the kind mode, recording every command: kind
 * cannot make a cluster here (its node image is out of reach). `kind get kubeconfig` hands out the real test API
 * server's kubeconfig, so the API calls (version, ConfigMap) are real.
 */
function fakeHost(initial: {
  clusters?: string[]
  registry?: {
    running: boolean
    networks: Record<string, string[]>
    /** Default the pinned registry image, published on 127.0.0.1:5000. */
    image?: string
    published?: string
  }
  failRun?: string
  /** docker start's error, for a stopped registry. */
  failStart?: string
  /** The Docker network kind put its nodes on (default `kind`). */
  nodeNetwork?: string
  curlFails?: string
}) {
  const clusters = new Set(initial.clusters ?? [])
  let registry = initial.registry
  const commands: Command[] = []
  const ok = (stdout = ''): CommandResult => ({ exitCode: 0, stdout, stderr: '' })
  const fail = (stderr: string): CommandResult => ({ exitCode: 1, stdout: '', stderr })

  const run: CommandRunner = async (command) => {
    commands.push(command)
    const a = command.args
    const line = a.join(' ')
    if (command.file === '/tools/kind') {
      if (line === 'get clusters') return ok([...clusters].map((c) => `${c}\n`).join(''))
      if (a[0] === 'create') return (clusters.add(a[3]!), ok())
      if (a[1] === 'kubeconfig') return ok(kube.kubeconfig)
      if (a[1] === 'nodes') return ok(`${a[3]}-control-plane\n`)
    }
    if (command.file === 'docker') {
      if (line === 'container inspect oml-chains-control-plane') {
        const network = {
          [initial.nodeNetwork ?? 'kind']: { Aliases: ['oml-chains-control-plane'] },
        }
        return ok(
          JSON.stringify([{ State: { Running: true }, NetworkSettings: { Networks: network } }]),
        )
      }
      if (line === 'container inspect oml-chains-registry') {
        if (!registry)
          return fail('Error response from daemon: No such container: oml-chains-registry')
        const networks = Object.fromEntries(
          Object.entries(registry.networks).map(([n, aliases]) => [n, { Aliases: aliases }]),
        )
        return ok(
          JSON.stringify([
            {
              State: { Running: registry.running, Status: registry.running ? 'running' : 'exited' },
              Config: { Image: registry.image ?? REGISTRY_IMAGE },
              HostConfig: {
                PortBindings: {
                  '5000/tcp': [
                    {
                      HostIp: (registry.published ?? '127.0.0.1:5000').split(':')[0],
                      HostPort: (registry.published ?? '127.0.0.1:5000').split(':')[1],
                    },
                  ],
                },
              },
              NetworkSettings: { Networks: networks },
            },
          ]),
        )
      }
      if (a[0] === 'run') {
        if (initial.failRun) return fail(initial.failRun)
        registry = { running: true, networks: { bridge: [] } }
        return ok('0123abcd\n')
      }
      if (line === 'container start oml-chains-registry') {
        if (initial.failStart) return fail(initial.failStart)
        return ((registry!.running = true), ok())
      }
      if (a[0] === 'network' && a[1] === 'connect')
        return ((registry!.networks[a[4]!] = [a[3]!]), ok())
      if (a[0] === 'network' && a[1] === 'disconnect')
        return (delete registry!.networks[a[2]!], ok())
      if (a[0] === 'exec' && a.includes('curl')) {
        return initial.curlFails ? { exitCode: 6, stdout: '', stderr: initial.curlFails } : ok()
      }
      if (a[0] === 'exec' && a[1] === '--interactive') return ok()
    }
    throw new Error(`the fake host does not know: ${command.file} ${line}`)
  }
  const argv = () =>
    commands.map((c) => [c.file === '/tools/kind' ? 'kind' : c.file, ...c.args].join(' '))
  return { run, commands, argv }
}

function kindPlan(embeddedRegistry = true): {
  cluster: ClusterPlan
  embeddedRegistry: boolean
  runsEmbeddedRegistry: boolean
} {
  return {
    cluster: {
      mode: 'kind',
      name: 'oml-chains',
      kindVersion: versions.kind.version,
      kubernetesVersion: versions.kubernetesVersion,
      nodeImage: versions.kindNodeImages[versions.kubernetesVersion]!,
    },
    embeddedRegistry,
    runsEmbeddedRegistry: embeddedRegistry,
  }
}

function kindDeps(host: ReturnType<typeof fakeHost>, overrides: Partial<ClusterDeps> = {}) {
  const records: { created: CreatedResources; afterCommands: number }[] = []
  /** The hosts file as it was at each record. */
  const hostsAtRecord: string[] = []
  const probed: string[] = []
  const installed: string[] = []
  const d = deps({
    run: host.run,
    installKind: async (version) => (installed.push(version), '/tools/kind'),
    probeRegistry: async (url) => void probed.push(url),
    record: (created) => {
      records.push({ created, afterCommands: host.commands.length })
      hostsAtRecord.push(readFileSync(hostsPath, 'utf8'))
    },
    ...overrides,
  })
  return { d, records, hostsAtRecord, probed, installed }
}

const writeHostsToml =
  'docker exec --interactive oml-chains-control-plane sh -c mkdir -p "$(dirname "$1")" && cat > "$1" sh /etc/containerd/certs.d/registry.local:5000/hosts.toml'
const curlFromNode =
  'docker exec oml-chains-control-plane curl --fail --silent --show-error --max-time 5 --output /dev/null http://registry.local:5000/v2/'

describe('prepareCluster, cluster: kind (recorded kind and docker, real API server)', () => {
  it('creates the cluster and the registry, wires registry.local everywhere, and checks it', async () => {
    const host = fakeHost({})
    const { d, records, hostsAtRecord, probed, installed } = kindDeps(host)

    const prepared = await prepareCluster(kindPlan(), d)

    const configPath = path.join(dir, 'kind-oml-chains.yaml')
    expect(host.argv()).toEqual([
      'kind get clusters',
      `kind create cluster --name oml-chains --config ${configPath} --wait 0s --retain`,
      'kind get kubeconfig --name oml-chains',
      'kind get nodes --name oml-chains',
      'docker container inspect oml-chains-control-plane',
      'docker container inspect oml-chains-registry',
      `docker run --detach --restart=always --publish 127.0.0.1:5000:5000 --env OTEL_TRACES_EXPORTER=none --name oml-chains-registry ${REGISTRY_IMAGE}`,
      'docker container inspect oml-chains-registry',
      'docker network connect --alias registry.local kind oml-chains-registry',
      writeHostsToml,
      curlFromNode,
    ])
    expect(installed).toEqual([versions.kind.version])
    expect(parse(await readFile(configPath, 'utf8'))).toMatchObject({
      name: 'oml-chains',
      nodes: [
        { role: 'control-plane', image: versions.kindNodeImages[versions.kubernetesVersion] },
      ],
    })
    expect(host.commands[9]?.input).toBe(
      'server = "http://registry.local:5000"\n\n[host."http://registry.local:5000"]\n',
    )

    expect(prepared).toMatchObject({
      mode: 'kind',
      serverVersion: apiVersion,
      reused: [],
      embeddedRegistry: { host: 'registry.local:5000' },
      canInstallCrds: true,
    })
    expect(prepared.kubeconfig).toBe(kube.kubeconfig)
    expect(prepared.created).toEqual({
      cluster: 'oml-chains',
      kindBinary: '/tools/kind',
      registryContainer: 'oml-chains-registry',
      hostsEntry: true,
    })
    // Each thing is recorded before the command that creates it runs.
    expect(records).toEqual([
      { created: { cluster: 'oml-chains', kindBinary: '/tools/kind' }, afterCommands: 1 },
      {
        created: {
          cluster: 'oml-chains',
          kindBinary: '/tools/kind',
          registryContainer: 'oml-chains-registry',
        },
        afterCommands: 6,
      },
      { created: prepared.created, afterCommands: 10 },
    ])
    // The hosts line too: recorded while the file does not have it yet.
    expect(hostsAtRecord.at(-1)).toBe('127.0.0.1 localhost\n')

    expect(await readFile(hostsPath, 'utf8')).toBe(
      '127.0.0.1 localhost\n127.0.0.1 registry.local\n',
    )
    expect(probed).toEqual(['http://registry.local:5000/v2/'])
    const cm = await kube.request(
      'GET',
      '/api/v1/namespaces/kube-public/configmaps/local-registry-hosting',
    )
    expect(cm.status).toBe(200)
    expect(
      parse((cm.body as { data: Record<string, string> }).data['localRegistryHosting.v1']!),
    ).toMatchObject({
      host: 'registry.local:5000',
      hostFromContainerRuntime: 'registry.local:5000',
      hostFromClusterNetwork: 'registry.local:5000',
    })

    // The kubeconfig's token is masked and never on a command line or stdin.
    expect(d.masked).toContain(kube.token)
    for (const c of host.commands) {
      expect([...c.args, c.input ?? ''].join(' ')).not.toContain(kube.token)
    }
    expect(host.commands.find((c) => c.args[1] === 'kubeconfig')?.silent).toBe(true)
  })

  it('reuses a healthy cluster and a running registry, and creates nothing', async () => {
    const host = fakeHost({
      clusters: ['oml-chains'],
      registry: { running: true, networks: { bridge: [], kind: ['registry.local', 'abc'] } },
    })
    await writeFile(hostsPath, '127.0.0.1 localhost registry.local\n')
    const { d, records } = kindDeps(host)

    const prepared = await prepareCluster(kindPlan(), d)

    expect(host.argv()).toEqual([
      'kind get clusters',
      'kind get kubeconfig --name oml-chains',
      'kind get nodes --name oml-chains',
      'docker container inspect oml-chains-control-plane',
      'docker container inspect oml-chains-registry',
      'docker container inspect oml-chains-registry',
      writeHostsToml,
      curlFromNode,
    ])
    expect(prepared.created).toEqual({})
    expect(records).toEqual([])
    expect(prepared.reused).toEqual([
      'kind cluster oml-chains',
      'registry container oml-chains-registry',
    ])
    expect(await readFile(hostsPath, 'utf8')).toBe('127.0.0.1 localhost registry.local\n')
    expect(prepared.embeddedRegistry).toEqual({ host: 'registry.local:5000' })
  })

  it('starts a stopped registry and re-attaches it to kind with the alias', async () => {
    const host = fakeHost({
      clusters: ['oml-chains'],
      registry: { running: false, networks: { kind: ['abc'] } },
    })
    const { d } = kindDeps(host)

    const prepared = await prepareCluster(kindPlan(), d)

    expect(host.argv().slice(4, 9)).toEqual([
      'docker container inspect oml-chains-registry',
      'docker container start oml-chains-registry',
      'docker container inspect oml-chains-registry',
      'docker network disconnect kind oml-chains-registry',
      'docker network connect --alias registry.local kind oml-chains-registry',
    ])
    expect(prepared.created).toEqual({ hostsEntry: true })
  })

  it('puts the registry on the network kind put the nodes on (KIND_EXPERIMENTAL_DOCKER_NETWORK)', async () => {
    const host = fakeHost({ nodeNetwork: 'ci-net' })
    const { d } = kindDeps(host)

    await prepareCluster(kindPlan(), d)

    expect(host.argv()).toContain(
      'docker network connect --alias registry.local ci-net oml-chains-registry',
    )
    expect(host.argv().some((c) => / kind oml-chains-registry$/.test(c))).toBe(false)
  })

  it('reuses another version of the registry image, and says so', async () => {
    const image = 'registry:2.8.3'
    const host = fakeHost({
      clusters: ['oml-chains'],
      registry: { running: true, image, networks: { kind: ['registry.local'] } },
    })
    const logged: string[] = []
    const { d } = kindDeps(host, { log: (line) => logged.push(line) })

    const prepared = await prepareCluster(kindPlan(), d)

    expect(prepared.reused).toContain('registry container oml-chains-registry')
    expect(logged).toContain(
      `note: registry container oml-chains-registry runs ${image}, not ${REGISTRY_IMAGE}`,
    )
  })

  it.each([
    {
      found: 'a container that is not a registry',
      registry: { image: 'nginx:1.27' },
      error:
        'container oml-chains-registry runs nginx:1.27, not a registry (the action starts registry:',
    },
    {
      found: 'a registry published on another port',
      registry: { published: '127.0.0.1:5001' },
      error:
        'registry container oml-chains-registry publishes port 5000 on 127.0.0.1:5001, and the action reaches it at 127.0.0.1:5000: remove it (docker rm -f oml-chains-registry) and the action starts its own',
    },
  ])('names $found, and starts or changes nothing', async ({ registry, error }) => {
    const host = fakeHost({
      clusters: ['oml-chains'],
      registry: { running: false, networks: {}, ...registry },
    })
    const { d, records } = kindDeps(host)

    await expect(prepareCluster(kindPlan(), d)).rejects.toThrow(error)
    expect(host.argv().filter((c) => /^docker (container start|run|network)/.test(c))).toEqual([])
    expect(records).toEqual([])
  })

  it('says port 5000 is taken when a stopped registry cannot start, as for a new one', async () => {
    const host = fakeHost({
      clusters: ['oml-chains'],
      registry: { running: false, networks: { kind: ['registry.local'] } },
      failStart:
        'Error response from daemon: driver failed programming external connectivity on endpoint oml-chains-registry: Bind for 127.0.0.1:5000 failed: port is already allocated',
    })
    const { d } = kindDeps(host)

    await expect(prepareCluster(kindPlan(), d)).rejects.toThrow(
      /^127\.0\.0\.1:5000 is taken by another program or container, and the embedded registry needs it: .*port is already allocated/,
    )
  })

  it('refuses to reuse a cluster whose API does not answer, naming it and the way out', async () => {
    const port = await unusedPort()
    const host = fakeHost({ clusters: ['oml-chains'] })
    const deadKubeconfig = editKubeconfig(
      (c) => (c.clusters[0].cluster.server = `https://127.0.0.1:${port}`),
    )
    const run: CommandRunner = async (c) =>
      c.args[1] === 'kubeconfig' ? { exitCode: 0, stdout: deadKubeconfig, stderr: '' } : host.run(c)
    const { d } = kindDeps(host, { run, deadline: Date.now() + 1_000 })

    await expect(prepareCluster(kindPlan(), d)).rejects.toThrow(
      new RegExp(
        `^kind cluster oml-chains exists but cannot reach the Kubernetes API server https://127.0.0.1:${port} \\(kind cluster oml-chains\\): .*ECONNREFUSED.*; delete it \\(kind delete cluster --name oml-chains\\) or set cluster-name to another name$`,
      ),
    )
    expect(host.argv()).not.toContain('kind create')
  })

  it('without the embedded registry: only the cluster, no docker, no hosts entry', async () => {
    const host = fakeHost({})
    const { d } = kindDeps(host)

    const prepared = await prepareCluster(kindPlan(false), d)

    expect(host.argv().map((a) => a.split(' --')[0])).toEqual([
      'kind get clusters',
      'kind create cluster',
      'kind get kubeconfig',
    ])
    expect(prepared.created).toEqual({ cluster: 'oml-chains', kindBinary: '/tools/kind' })
    expect(prepared.embeddedRegistry).toBeUndefined()
    expect(await readFile(hostsPath, 'utf8')).toBe('127.0.0.1 localhost\n')
  })

  it('says port 5000 is taken, and has recorded the container for cleanup', async () => {
    const host = fakeHost({
      failRun:
        'docker: Error response from daemon: driver failed programming external connectivity on endpoint oml-chains-registry: Bind for 127.0.0.1:5000 failed: port is already allocated.',
    })
    const { d, records } = kindDeps(host)

    await expect(prepareCluster(kindPlan(), d)).rejects.toThrow(
      /^127\.0\.0\.1:5000 is taken by another program or container, and the embedded registry needs it: .*port is already allocated/,
    )
    expect(records.at(-1)?.created).toEqual({
      cluster: 'oml-chains',
      kindBinary: '/tools/kind',
      registryContainer: 'oml-chains-registry',
    })
  })

  it("names the node that cannot reach the registry, with curl's reason", async () => {
    const host = fakeHost({ curlFails: 'curl: (6) Could not resolve host: registry.local' })
    const { d } = kindDeps(host, { deadline: Date.now() + 1_000 })

    await expect(prepareCluster(kindPlan(), d)).rejects.toThrow(
      'node oml-chains-control-plane cannot reach the registry at http://registry.local:5000/v2/: curl: (6) Could not resolve host: registry.local',
    )
  })
})

describe('probeRegistry (real HTTP on 127.0.0.1)', () => {
  it('returns once /v2/ answers 200', async () => {
    const { createServer: createHttp } = await import('node:http')
    let hits = 0
    const server = createHttp((req, res) => {
      hits++
      // Not ready on the first request, as a registry that is still starting.
      res.writeHead(hits === 1 ? 503 : req.url === '/v2/' ? 200 : 404).end('{}')
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as AddressInfo
    try {
      await probeRegistry(`http://127.0.0.1:${port}/v2/`, Date.now() + 10_000)
      expect(hits).toBe(2)
    } finally {
      server.close()
    }
  })

  it('gives up at the deadline, naming the URL and the last reason', async () => {
    const url = `http://127.0.0.1:${await unusedPort()}/v2/`
    await expect(probeRegistry(url, Date.now() + 500)).rejects.toThrow(
      new RegExp(
        `^the registry at ${url.replace(/[/.]/g, '\\$&')} does not answer from the runner: .*ECONNREFUSED`,
      ),
    )
  })
})
