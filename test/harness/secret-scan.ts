/**
 * The secret search: every artefact a run leaves (its output, the summary,
 * each output value, state and file it writes, the command lines of the
 * processes it starts, the Kubernetes objects it creates) is searched for
 * each secret the test gave it, in each encoding it could take on the way:
 * raw, base64 (and URL-safe base64, and inside a longer base64 text),
 * JSON-escaped, URL-encoded, each line of a multi-line secret (a PEM key)
 * alone; and every base64 run in an artefact is decoded, twice over, and
 * searched too. A hit fails the test and
 * names where, never showing the secret. Every search is counted in
 * $OML_SECRET_SCAN_DIR (set by scripts/test.sh), which prints the total.
 */
import { appendFileSync } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'
import path from 'node:path'

export interface Artefact {
  /** Where it came from, for the error message: `stdout`, `output digest`, `/proc/123/cmdline`. */
  name: string
  text: string
}

/** The forms a secret can take in an artefact. Lines shorter than 8 characters are too common to mean anything. */
export function encodingsOf(secret: string): { encoding: string; value: string }[] {
  const forms = [
    { encoding: 'raw', value: secret },
    { encoding: 'base64', value: Buffer.from(secret).toString('base64') },
    { encoding: 'base64url', value: Buffer.from(secret).toString('base64url') },
    { encoding: 'JSON-escaped', value: JSON.stringify(secret).slice(1, -1) },
    { encoding: 'URL-encoded', value: encodeURIComponent(secret) },
  ]
  const lines = secret.split('\n').map((line) => line.trim())
  if (lines.length > 1) {
    for (const line of lines.filter((l) => l.length >= 8 && !l.startsWith('-----'))) {
      forms.push({ encoding: 'a line of it', value: line })
    }
  }
  // Inside a longer base64 text (a docker config, a whole file) the secret
  // starts at any of three byte offsets: its middle, as each offset encodes it.
  for (const offset of [0, 1, 2]) {
    const shifted = Buffer.concat([Buffer.alloc(offset), Buffer.from(secret)]).toString('base64')
    forms.push({ encoding: `base64 inside base64 (offset ${offset})`, value: shifted.slice(4, -4) })
  }
  // One form per value, named by the first encoding that gives it (raw before URL-encoded).
  const unique = new Map<string, { encoding: string; value: string }>()
  for (const form of forms) {
    if (form.value.length >= 8 && !unique.has(form.value)) unique.set(form.value, form)
  }
  return [...unique.values()]
}

/** A run of base64 long enough to hide something, in either alphabet. */
const BASE64_RUN = /[A-Za-z0-9+/_-]{16,}={0,2}/g

/**
 * The artefact, and what each base64 run in it decodes to, twice over: a
 * secret base64-encoded inside something base64-encoded (a registry password
 * in a dockerconfigjson Secret) shows raw two decodings down.
 */
function decoded(artefact: Artefact, depth = 2): Artefact[] {
  const found = [artefact]
  if (depth === 0) return found
  for (const [run] of artefact.text.matchAll(BASE64_RUN)) {
    const text = Buffer.from(run, 'base64').toString('latin1')
    found.push(...decoded({ name: `${artefact.name} (base64-decoded)`, text }, depth - 1))
  }
  return found
}

/** Where each secret shows in the artefacts: `secret 2 (base64) in stdout`; empty when none. */
export function findSecrets(secrets: readonly string[], given: readonly Artefact[]): string[] {
  const artefacts = given.flatMap((artefact) => decoded(artefact))
  const hits: string[] = []
  secrets.forEach((secret, i) => {
    for (const { encoding, value } of encodingsOf(secret)) {
      for (const artefact of artefacts) {
        if (artefact.text.includes(value))
          hits.push(`secret ${i + 1} (${encoding}) in ${artefact.name}`)
      }
    }
  })
  return hits
}

/**
 * Searches the artefacts, counts the search for the closing line, and
 * throws naming every hit. With no secrets there is nothing to search.
 */
export function expectNoSecrets(
  what: string,
  secrets: readonly string[],
  artefacts: readonly Artefact[],
): void {
  const given = secrets.filter((s) => s.length > 0)
  if (given.length === 0) return
  const hits = findSecrets(given, artefacts)
  const dir = process.env.OML_SECRET_SCAN_DIR
  if (dir) {
    appendFileSync(
      path.join(dir, `${process.pid}.jsonl`),
      `${JSON.stringify({ what, artefacts: artefacts.length, secrets: given.length, hits: hits.length })}\n`,
    )
  }
  if (hits.length > 0) throw new Error(`${what}: a secret shows: ${hits.join('; ')}`)
}

/** Every file under `dir`, as artefacts named by their path (binary files too: a secret is bytes). */
export async function filesUnder(dir: string): Promise<Artefact[]> {
  const found: Artefact[] = []
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue
    const file = path.join(entry.parentPath, entry.name)
    found.push({ name: file, text: await readFile(file, 'latin1') })
  }
  return found
}

/**
 * Reads the command line of every process on the machine, again and again
 * until stopped: what a run starts (kind, docker, cosign, ec, git) shows
 * there while it runs. Returns the command lines seen, one artefact each.
 */
export function watchCommandLines(): { stop(): Promise<Artefact[]> } {
  const seen = new Map<string, Artefact>()
  let running = true
  const loop = (async () => {
    while (running) {
      for (const pid of await readdir('/proc')) {
        if (!/^\d+$/.test(pid)) continue
        const text = await readFile(`/proc/${pid}/cmdline`, 'latin1').catch(() => '')
        if (text && !seen.has(text)) seen.set(text, { name: `/proc/${pid}/cmdline`, text })
      }
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  })()
  return {
    async stop() {
      running = false
      await loop
      return [...seen.values()]
    },
  }
}

/** What the search needs of a cluster: one API request as its admin. */
interface ClusterApi {
  request(method: string, apiPath: string): Promise<{ status: number; body: unknown }>
}

interface ResourceList {
  resources?: { name: string; kind: string; verbs: string[] }[]
}

/**
 * Every object of every kind the API server serves, each an artefact named
 * `Kind namespace/name` (its JSON): the API's discovery, then a list of each
 * resource that can be listed (subresources such as pods/log have a `/`).
 */
export async function clusterObjects(api: ClusterApi): Promise<Artefact[]> {
  const groups = (await api.request('GET', '/apis')).body as {
    groups: { preferredVersion: { groupVersion: string } }[]
  }
  const versions = [
    '/api/v1',
    ...groups.groups.map((g) => `/apis/${g.preferredVersion.groupVersion}`),
  ]
  const objects: Artefact[] = []
  await Promise.all(
    versions.map(async (base) => {
      const list = (await api.request('GET', base)).body as ResourceList
      for (const resource of list.resources ?? []) {
        if (resource.name.includes('/') || !resource.verbs.includes('list')) continue
        const answer = await api.request('GET', `${base}/${resource.name}`)
        if (answer.status !== 200) continue
        const items = (answer.body as { items?: Record<string, unknown>[] }).items ?? []
        for (const item of items) {
          const meta = (item.metadata ?? {}) as { name?: string; namespace?: string }
          const name = meta.namespace ? `${meta.namespace}/${meta.name}` : meta.name
          objects.push({ name: `${resource.kind} ${name}`, text: JSON.stringify(item) })
        }
      }
    }),
  )
  return objects
}
