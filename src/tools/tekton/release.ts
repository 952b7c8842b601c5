import { readFile, rm } from 'node:fs/promises'
import path from 'node:path'
import * as core from '@actions/core'
import * as tc from '@actions/tool-cache'
import { UserError, errorMessage } from '../../errors.js'
import { isRecord } from '../../json.js'
import { parseManifests, type KubeObject } from '../../kube/objects.js'
import { tektonReleaseSha256 } from '../../versions.js'
import { download, requireRunnerDirectories, sha256File } from '../download.js'

/** The two Tekton projects the action installs. */
export type TektonComponent = 'pipeline' | 'chains'

/** A release manifest, fetched and checked. */
export interface TektonRelease {
  component: TektonComponent
  version: string
  url: string
  /** Hex SHA-256 of the release.yaml applied. */
  sha256: string
  /** Where the expected digest came from, or why there was none. */
  verifiedBy: string
  objects: KubeObject[]
}

export interface ReleaseSources {
  /** Where release manifests are published (DESIGN 3); `previous/vX.Y.Z/`, never `latest/`. */
  manifestBase: string
  /** GitHub's REST API, for the release asset's own digest (a second origin). */
  githubApi: string
}

export const defaultReleaseSources: ReleaseSources = {
  manifestBase: 'https://infra.tekton.dev/tekton-releases',
  githubApi: 'https://api.github.com',
}

const FILE = 'release.yaml'

/**
 * Fetches a Tekton release manifest (kept in the tool cache once verified)
 * and checks its SHA-256: against the pin in versions.ts when there is
 * one, else against the digest GitHub reports for the release asset. A
 * mismatch is an error; when GitHub cannot be asked (rate limit, network) the
 * run goes on with a warning and the digest is still reported.
 */
export async function fetchTektonRelease(
  component: TektonComponent,
  version: string,
  sources: ReleaseSources = defaultReleaseSources,
): Promise<TektonRelease> {
  requireRunnerDirectories()
  const url = `${sources.manifestBase}/${component}/previous/${version}/${FILE}`
  const tool = `tekton-${component}-release`
  const cached = tc.find(tool, version)
  let file: string
  let downloaded: string | undefined
  if (cached) {
    file = path.join(cached, FILE)
  } else {
    core.info(`Tekton ${component} ${version}: downloading ${url}`)
    downloaded = await download(url)
    file = downloaded
  }
  try {
    const sha256 = await sha256File(file)
    // Only a verified download is cached, so a cached one was checked when it came.
    const verifiedBy = downloaded
      ? await checkDigest(component, version, url, sha256, sources)
      : (checkPin(component, version, url, sha256) ?? 'checked when it was cached')
    const objects = parseManifests(await readFile(file, 'utf8'), url)
    if (downloaded && !verifiedBy.startsWith('unverified')) {
      await tc.cacheFile(downloaded, FILE, tool, version)
    }
    return { component, version, url, sha256, verifiedBy, objects }
  } finally {
    if (downloaded) await rm(downloaded, { force: true })
  }
}

/** Checks against the pin in versions.ts; undefined when there is none. */
function checkPin(
  component: TektonComponent,
  version: string,
  url: string,
  sha256: string,
): string | undefined {
  const pinned = tektonReleaseSha256[`${component}@${version}`]
  if (!pinned) return undefined
  if (pinned !== sha256) {
    throw new UserError(
      `sha256 mismatch for ${url}: expected ${pinned} (pinned in oml-chains-action), got ${sha256}`,
    )
  }
  return 'pinned in oml-chains-action'
}

async function checkDigest(
  component: TektonComponent,
  version: string,
  url: string,
  sha256: string,
  sources: ReleaseSources,
): Promise<string> {
  const pinned = checkPin(component, version, url, sha256)
  if (pinned) return pinned
  const api = `${sources.githubApi}/repos/tektoncd/${component}/releases/tags/${version}`
  let published: string | undefined
  try {
    published = await githubAssetDigest(api, FILE)
  } catch (err) {
    core.warning(
      `Tekton ${component} ${version}: could not ask GitHub for the digest of ${FILE} (${errorMessage(err)}); applying it with sha256 ${sha256}, unverified`,
    )
    return 'unverified: GitHub could not be asked'
  }
  if (published === undefined) {
    core.warning(
      `Tekton ${component} ${version}: GitHub reports no digest for ${FILE}; sha256 ${sha256}, unverified`,
    )
    return 'unverified: GitHub reports no digest'
  }
  if (published !== sha256) {
    throw new UserError(
      `sha256 mismatch for ${url}: GitHub's release asset has ${published}, the download has ${sha256}`,
    )
  }
  return `the digest of GitHub's release asset`
}

/** The `sha256:` digest GitHub's API reports for one asset of a release. */
async function githubAssetDigest(api: string, asset: string): Promise<string | undefined> {
  const response = await fetch(api, {
    headers: { Accept: 'application/vnd.github+json', 'User-Agent': 'oml-chains-action' },
    signal: AbortSignal.timeout(15_000),
  })
  if (!response.ok) throw new Error(`${api}: HTTP ${response.status}`)
  const body: unknown = await response.json()
  const assets = isRecord(body) && Array.isArray(body.assets) ? body.assets : []
  const entry = assets.find((a) => isRecord(a) && a.name === asset)
  if (!isRecord(entry)) throw new Error(`${api}: the release has no asset ${asset}`)
  const digest = entry.digest
  if (typeof digest !== 'string') return undefined
  const match = /^sha256:([0-9a-f]{64})$/.exec(digest)
  if (!match) throw new Error(`${api}: asset ${asset} has digest "${digest}", not sha256`)
  return match[1]
}
