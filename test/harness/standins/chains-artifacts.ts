/**
 * Subjects and materials as Chains finds them in a run: images named by its
 * results, step images, `*ARTIFACT_INPUTS` and CHAINS-GIT_* values.
 */
import type { Param, RunResult } from './chains-run.js'

/** `{sha256: hex}` and the like. */
export type DigestSet = Record<string, string>
export interface Material {
  uri: string
  digest: DigestSet
}
export interface Subject {
  name: string
  digest: DigestSet
}

/** `host/repo` of `host/repo[:tag]`, as go-containerregistry names a repository. */
function repositoryName(url: string): string {
  let repo = url.trim().replace(/@.*$/, '')
  const colon = repo.lastIndexOf(':')
  if (colon > repo.lastIndexOf('/')) repo = repo.slice(0, colon)
  const [first, ...rest] = repo.split('/')
  const hasHost = rest.length > 0 && (/[.:]/.test(first!) || first === 'localhost')
  if (hasHost) return first === 'docker.io' ? `index.docker.io/${rest.join('/')}` : repo
  return `index.docker.io/${rest.length === 0 ? `library/${repo}` : repo}`
}

function stringValue(value: unknown): string | undefined {
  return typeof value === 'string' ? value.trim() || undefined : undefined
}

/** `alg:hex` with a known algorithm and a hex of its length, else undefined. */
function parseDigest(text: unknown): [string, string] | undefined {
  const match = /^\s*(sha256|sha512|sha1):([0-9a-f]+)\s*$/i.exec(
    typeof text === 'string' ? text : '',
  )
  if (!match) return undefined
  const alg = match[1]!.toLowerCase()
  const hex = match[2]!
  const length = { sha256: 64, sha512: 128, sha1: 40 }[alg]
  return hex.length === length ? [alg, hex] : undefined
}

/** Images named by `*IMAGE_URL` + `*IMAGE_DIGEST` pairs and `IMAGES`, as `repo@sha256:hex`, once each. */
export function imagesOf(results: RunResult[]): string[] {
  const pairs = new Map<string, { url?: string; digest?: string }>()
  for (const result of results) {
    const value = stringValue(result.value)
    if (!value) continue
    for (const [suffix, field] of [
      ['IMAGE_URL', 'url'],
      ['IMAGE_DIGEST', 'digest'],
    ] as const) {
      if (!result.name.endsWith(suffix)) continue
      const marker = result.name.slice(0, -suffix.length)
      pairs.set(marker, { ...pairs.get(marker), [field]: value })
    }
  }
  const images: string[] = []
  const add = (url: string, digest: string) => {
    const parsed = parseDigest(digest)
    if (!parsed || parsed[0] !== 'sha256') return
    const image = `${repositoryName(url)}@sha256:${parsed[1]}`
    if (!images.includes(image)) images.push(image)
  }
  for (const { url, digest } of pairs.values()) if (url && digest) add(url, digest)
  const list = results.find((r) => r.name === 'IMAGES')
  for (const entry of (stringValue(list?.value) ?? '').split(/[\n,]/)) {
    const [url, digest] = entry.trim().split('@')
    if (url && digest) add(url, digest)
  }
  return images
}

export function subjectsOf(results: RunResult[]): Subject[] {
  return imagesOf(results).map((image) => {
    const [name, digest] = image.split('@sha256:') as [string, string]
    return { name, digest: { sha256: digest } }
  })
}

/** Appends items not yet present (same name and a common digest), merging digests, as Chains does. */
function appendArtifacts<T extends Material | Subject>(
  list: T[],
  items: T[],
  nameOf: (item: T) => string,
): T[] {
  for (const item of items) {
    const same = list.find(
      (a) =>
        nameOf(a) === nameOf(item) &&
        Object.entries(a.digest).some(([alg, hex]) => item.digest[alg] === hex),
    )
    if (same) Object.assign(same.digest, item.digest)
    else list.push({ ...item, digest: { ...item.digest } })
  }
  return list
}
export const appendMaterials = (list: Material[], items: Material[]) =>
  appendArtifacts(list, items, (m) => m.uri)
export const appendSubjects = (list: Subject[], items: Subject[]) =>
  appendArtifacts(list, items, (s) => s.name)

/** Materials from `*ARTIFACT_INPUTS` object results (`{uri, digest: "alg:hex"}`). */
export function inputMaterials(results: RunResult[]): Material[] {
  const materials: Material[] = []
  for (const result of results) {
    if (!result.name.endsWith('ARTIFACT_INPUTS')) continue
    const value = result.value as { uri?: unknown; digest?: unknown } | null
    const uri = typeof value === 'object' && value ? stringValue(value.uri) : undefined
    const digest = typeof value === 'object' && value ? parseDigest(value.digest) : undefined
    if (uri && digest) materials.push({ uri, digest: { [digest[0]]: digest[1] } })
  }
  return materials
}

/** Git materials from CHAINS-GIT_URL / CHAINS-GIT_COMMIT params and results. */
export function gitMaterials(sources: (Param | RunResult)[][]): Material[] {
  let url: string | undefined
  let commit: string | undefined
  for (const list of sources) {
    for (const p of list) {
      const value = stringValue('value' in p ? p.value : p.default)
      if (p.name === 'CHAINS-GIT_URL') url = value ?? url
      if (p.name === 'CHAINS-GIT_COMMIT') commit = value ?? commit
    }
  }
  if (!url || !commit) return []
  const uri = `${url.startsWith('git+') ? '' : 'git+'}${url}${url.endsWith('.git') ? '' : '.git'}`
  return [{ uri, digest: { sha1: commit } }]
}

/** A step's imageID (`repo@alg:hex`) as a material; anything else fails the payload, as in Chains. */
export function imageMaterial(imageId: string): Material {
  const [uri, digest, extra] = imageId.split('@')
  const parsed = parseDigest(digest)
  if (!uri || !parsed || extra !== undefined) {
    throw new Error(`expected imageID ${imageId} to be separable by @ and :`)
  }
  return { uri: `oci://${uri}`, digest: { [parsed[0]]: parsed[1] } }
}
