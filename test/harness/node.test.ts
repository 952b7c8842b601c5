/**
 * The node cluster (test/harness/node/): real pods on a real node, pulling
 * from registry.local:5000 as pods on a runner's kind cluster do, and the
 * network paths the action and Tekton need, each one checked from a pod.
 */
import { randomBytes } from 'node:crypto'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { setTimeout as delay } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { HOSTS_LINE } from '../../src/phases/hosts.js'
import { makeTestCA } from './certs.js'
import { trainerBaseImage } from './docker.js'
import {
  KUBERNETES_SERVICE_IP,
  NODE_IP,
  NODE_NAME,
  startNodeCluster,
  whileNoNodeCluster,
  type NodeCluster,
} from './node/cluster.js'
import { snapshotChains, type ChainSnapshot } from './node/iptables.js'
import { cgroupControllers, mountsUnder } from './node/leftovers.js'
import { readSysctls } from './node/network.js'
import { apiCall, createNamespace, runPod, waitForPod, type Pod } from './node/pods.js'

const NS = 'node-test'
const minutes = (n: number): number => Date.now() + n * 60_000

/** Lines of /etc/hosts that are exactly our line. */
const hostsLines = (): number =>
  readFileSync('/etc/hosts', 'utf8')
    .split('\n')
    .filter((l) => l.trim().split(/\s+/).join(' ') === HOSTS_LINE).length

/** A pod running `python3 -c SCRIPT ARGS...` in the test image. */
function pythonPod(name: string, image: string, script: string, args: string[] = []) {
  return {
    metadata: { name, namespace: NS },
    spec: {
      containers: [{ name: 'main', image, command: ['python3', '-c', script, ...args] }],
    },
  }
}

describe('node cluster', () => {
  let cluster: NodeCluster
  /** The trainer base image (Debian with Python), pushed to registry.local:5000 by digest. */
  let image: string
  let digest: string
  let chainsBefore: ChainSnapshot
  let hostsBefore: number
  let sysctlsBefore: Record<string, string>

  beforeAll(async () => {
    // The machine as it is without a node cluster, to compare with after stop().
    await whileNoNodeCluster(async () => {
      chainsBefore = await snapshotChains()
      hostsBefore = hostsLines()
      sysctlsBefore = readSysctls()
    })
    const started = Date.now()
    cluster = await startNodeCluster()
    console.log(`node cluster started in ${Date.now() - started} ms`)
    await createNamespace(cluster, NS, minutes(1))
    const base = trainerBaseImage()
    image = await cluster.registry.pushFromDocker(base, 'oml-test/base', base.split(':')[1])
    digest = image.split('@')[1]!
  }, 420_000)

  afterAll(async () => {
    await cluster?.stop()
  }, 120_000)

  it('registers its node Ready at its address, with the pinned kubelet and containerd', async () => {
    const node = await apiCall<{
      status: {
        conditions: { type: string; status: string }[]
        addresses: { type: string; address: string }[]
        nodeInfo: { kubeletVersion: string; containerRuntimeVersion: string }
      }
    }>(cluster, 'GET', `/api/v1/nodes/${NODE_NAME}`)
    expect(node.status.conditions.find((c) => c.type === 'Ready')?.status).toBe('True')
    expect(node.status.addresses).toContainEqual({ type: 'InternalIP', address: NODE_IP })
    expect(node.status.nodeInfo.kubeletVersion).toBe('v1.36.3')
    expect(node.status.nodeInfo.containerRuntimeVersion).toMatch(/^containerd:\/\/1\.6\./)
    // The registry's name resolves on this machine as on a runner.
    expect(hostsLines()).toBe(1)
    // Pods' cgroups go under the kubelet's own root (so stop() finds them all).
    expect(cgroupControllers().some((c) => existsSync(`${c}/oml-chains-node/kubepods`))).toBe(true)
  })

  it('runs a pod from registry.local:5000 to completion; its log comes through the API server', async () => {
    const token = randomBytes(8).toString('hex')
    const { pod, log } = await runPod(
      cluster,
      {
        metadata: { name: 'from-registry', namespace: NS },
        spec: {
          containers: [
            {
              name: 'main',
              image,
              // Pulled by the node's containerd through the hosts.toml, not found locally.
              imagePullPolicy: 'Always',
              command: ['python3', '-c', 'import sys; print("hello", sys.argv[1])', token],
            },
          ],
        },
      },
      minutes(4),
    )
    expect(log).toBe(`hello ${token}\n`)
    expect(pod.status?.hostIP).toBe(NODE_IP)
    expect(pod.status?.containerStatuses?.[0]?.imageID).toBe(
      `registry.local:5000/oml-test/base@${digest}`,
    )
  }, 300_000)

  it('resolves registry.local in pods and reaches the registry over plain HTTP, and nothing beyond', async () => {
    const script = `
import json, socket, urllib.request
out = {"registry": socket.gethostbyname("registry.local")}
with urllib.request.urlopen("http://registry.local:5000/v2/", timeout=10) as r:
    out["v2"] = r.status
try:
    socket.gethostbyname("example.com")
    out["other"] = "resolved"
except socket.gaierror as e:
    out["other"] = e.errno == socket.EAI_NONAME and "NXDOMAIN" or str(e)
with open("/proc/net/route") as f:
    out["routes"] = [line.split()[1] + "/" + line.split()[7] for line in f.readlines()[1:]]
print(json.dumps(out))
`
    const { log } = await runPod(cluster, pythonPod('dns', image, script), minutes(2))
    const seen = JSON.parse(log) as {
      registry: string
      v2: number
      other: string
      routes: string[]
    }
    expect(seen.registry).toBe(NODE_IP)
    expect(seen.v2).toBe(200)
    // Answered by our DNS itself: it forwards nothing.
    expect(seen.other).toBe('NXDOMAIN')
    // /proc/net/route: destination/mask in little-endian hex; no default route (00000000/00000000).
    expect(seen.routes).not.toContain('00000000/00000000')
    expect(seen.routes).toEqual(expect.arrayContaining(['0000F40A/00FFFFFF', '0000000A/00FFFFFF']))
  }, 180_000)

  it('reaches another pod through a ClusterIP Service, from a pod and from this machine', async () => {
    const token = randomBytes(8).toString('hex')
    await apiCall(cluster, 'POST', `/api/v1/namespaces/${NS}/pods`, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'echo', namespace: NS, labels: { app: 'echo' } },
      spec: {
        containers: [
          {
            name: 'main',
            image,
            command: [
              'sh',
              '-c',
              'mkdir -p /srv && printf %s "$TOKEN" > /srv/token && exec python3 -m http.server 8080 --directory /srv',
            ],
            env: [{ name: 'TOKEN', value: token }],
            ports: [{ containerPort: 8080 }],
            // The kubelet probes it from this machine: ready once it serves.
            readinessProbe: { httpGet: { path: '/token', port: 8080 }, periodSeconds: 1 },
          },
        ],
      },
    })
    const service = await apiCall<{ spec: { clusterIP: string } }>(
      cluster,
      'POST',
      `/api/v1/namespaces/${NS}/services`,
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'echo', namespace: NS },
        spec: { selector: { app: 'echo' }, ports: [{ port: 80, targetPort: 8080 }] },
      },
    )
    const clusterIP = service.spec.clusterIP
    await waitForPod(
      cluster,
      NS,
      'echo',
      (p: Pod) =>
        Boolean(p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')),
      'to be Ready',
      minutes(2),
    )
    // Ready and in the Service's endpoints; kube-proxy writes its rules a moment
    // later: the client tries again, with growing pauses, for up to a minute.
    const script = `
import sys, time, urllib.request
pause, deadline = 0.05, time.time() + 60
while True:
    try:
        with urllib.request.urlopen("http://" + sys.argv[1] + "/token", timeout=5) as r:
            print(r.read().decode())
            break
    except OSError as e:
        if time.time() > deadline:
            raise
        print("not yet:", e, file=sys.stderr)
        time.sleep(pause)
        pause = min(pause * 2, 1)
`
    const { log } = await runPod(
      cluster,
      pythonPod('client', image, script, [clusterIP]),
      minutes(2),
    )
    expect(log.trim().split('\n').at(-1)).toBe(token)

    // This machine's own processes (the API server among them) go through kube-proxy too.
    const res = await fetch(`http://${clusterIP}/token`, { signal: AbortSignal.timeout(10_000) })
    expect(await res.text()).toBe(token)
  }, 240_000)

  it('reaches the API server through the kubernetes Service with its service account token', async () => {
    await apiCall(
      cluster,
      'POST',
      `/apis/rbac.authorization.k8s.io/v1/namespaces/${NS}/rolebindings`,
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'RoleBinding',
        metadata: { name: 'default-view', namespace: NS },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'view' },
        subjects: [{ kind: 'ServiceAccount', name: 'default', namespace: NS }],
      },
    )
    // What an in-cluster client does: the Service's address from the environment,
    // the mounted token and CA, and the certificate checked against that address.
    const script = `
import json, os, ssl, urllib.request
sa = "/var/run/secrets/kubernetes.io/serviceaccount"
host, port = os.environ["KUBERNETES_SERVICE_HOST"], os.environ["KUBERNETES_SERVICE_PORT"]
ctx = ssl.create_default_context(cafile=sa + "/ca.crt")
token = open(sa + "/token").read()
def call(method, path, body=None):
    req = urllib.request.Request("https://%s:%s%s" % (host, port, path), method=method,
        data=body and json.dumps(body).encode(),
        headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
        return json.load(r)
review = call("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
    {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
me = call("GET", "/api/v1/namespaces/${NS}/pods/" + os.environ["HOSTNAME"])
print(json.dumps({"host": host, "user": review["status"]["userInfo"]["username"], "pod": me["metadata"]["name"]}))
`
    const { log } = await runPod(cluster, pythonPod('in-cluster', image, script), minutes(2))
    expect(JSON.parse(log)).toEqual({
      host: KUBERNETES_SERVICE_IP,
      user: `system:serviceaccount:${NS}:default`,
      pod: 'in-cluster',
    })
  }, 180_000)

  it('lets the API server call an admission webhook served by a pod behind a Service', async () => {
    const token = randomBytes(8).toString('hex')
    const ca = await makeTestCA()
    const serving = await ca.issue([`webhook.${NS}.svc`])
    await ca.dispose()
    await apiCall(cluster, 'POST', `/api/v1/namespaces/${NS}/secrets`, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'webhook-tls', namespace: NS },
      type: 'kubernetes.io/tls',
      stringData: { 'tls.crt': serving.cert, 'tls.key': serving.key },
    })
    // Denies every request it is asked about, saying the token: only a call that
    // reached it can carry that message back.
    const server = `
import http.server, json, ssl, sys
token = sys.argv[1]
class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        body = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "response": {"uid": review["request"]["uid"], "allowed": False,
                         "status": {"code": 403, "message": "denied by the test webhook " + token}}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
httpd = http.server.HTTPServer(("", 8443), Handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain("/tls/tls.crt", "/tls/tls.key")
httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
httpd.serve_forever()
`
    await apiCall(cluster, 'POST', `/api/v1/namespaces/${NS}/pods`, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'webhook', namespace: NS, labels: { app: 'webhook' } },
      spec: {
        containers: [
          {
            name: 'main',
            image,
            command: ['python3', '-c', server, token],
            volumeMounts: [{ name: 'tls', mountPath: '/tls', readOnly: true }],
            readinessProbe: {
              httpGet: { path: '/healthz', port: 8443, scheme: 'HTTPS' },
              periodSeconds: 1,
            },
          },
        ],
        volumes: [{ name: 'tls', secret: { secretName: 'webhook-tls' } }],
      },
    })
    await apiCall(cluster, 'POST', `/api/v1/namespaces/${NS}/services`, {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'webhook', namespace: NS },
      spec: { selector: { app: 'webhook' }, ports: [{ port: 443, targetPort: 8443 }] },
    })
    await apiCall(
      cluster,
      'POST',
      '/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations',
      {
        apiVersion: 'admissionregistration.k8s.io/v1',
        kind: 'ValidatingWebhookConfiguration',
        metadata: { name: 'node-test' },
        webhooks: [
          {
            name: 'deny.node-test.example',
            clientConfig: {
              service: { namespace: NS, name: 'webhook', path: '/validate', port: 443 },
              caBundle: Buffer.from(ca.caPem).toString('base64'),
            },
            rules: [
              {
                operations: ['CREATE'],
                apiGroups: [''],
                apiVersions: ['v1'],
                resources: ['configmaps'],
              },
            ],
            namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': NS } },
            failurePolicy: 'Fail',
            sideEffects: 'None',
            admissionReviewVersions: ['v1'],
            timeoutSeconds: 5,
          },
        ],
      },
    )
    await waitForPod(
      cluster,
      NS,
      'webhook',
      (p: Pod) =>
        Boolean(p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')),
      'to be Ready',
      minutes(2),
    )
    // The API server learns of the configuration, and kube-proxy of the endpoint,
    // a moment after they exist: dry-run creates until the webhook answers (as
    // the action waits for Tekton's webhook), each one a real admission call.
    const deadline = minutes(1)
    let last = ''
    for (
      let pause = 50;
      !last.includes(token) && Date.now() < deadline;
      pause = Math.min(pause * 2, 1_000)
    ) {
      const res = await cluster.kube.request(
        'POST',
        `/api/v1/namespaces/${NS}/configmaps?dryRun=All`,
        {
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: { name: 'probe', namespace: NS },
        },
      )
      last = `HTTP ${res.status} ${res.text}`
      if (!last.includes(token)) await delay(pause)
    }
    expect(last).toContain(`denied by the test webhook ${token}`)
    await apiCall(
      cluster,
      'DELETE',
      '/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/node-test',
    )
  }, 240_000)

  it('stops completely: processes, mounts, interfaces, iptables chains, the hosts line, its folder', async () => {
    const { dir } = cluster
    await cluster.stop()
    // Checked while no other test file's cluster runs (they wait for each other).
    await whileNoNodeCluster(async () => {
      expect(existsSync(dir)).toBe(false)
      expect(mountsUnder(dir)).toEqual([])
      expect(existsSync('/sys/class/net/oml-node0')).toBe(false)
      expect(cgroupControllers().filter((c) => existsSync(`${c}/oml-chains-node`))).toEqual([])
      // Docker's chains and everything else as before; no KUBE-* or CNI-* added.
      expect(await snapshotChains()).toEqual(chainsBefore)
      // The kernel settings the kubelet and the network changed are back.
      expect(readSysctls()).toEqual(sysctlsBefore)
      // Removed if it was added here, kept if it was there already.
      expect(hostsLines()).toBe(hostsBefore)
      const processes = readdirSync('/proc')
        .filter((p) => /^\d+$/.test(p))
        .filter((p) => {
          try {
            return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(dir)
          } catch {
            return false
          }
        })
      expect(processes).toEqual([])
      await expect(fetch('http://127.0.0.1:5000/v2/')).rejects.toThrow()
    })
  }, 120_000)
})
