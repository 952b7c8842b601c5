/**
 * Installs a single-file release binary: download, check its SHA-256, then
 * put it in the runner's tool cache. Nothing is cached or made executable
 * before its digest matched, and a second install of the same version is
 * served from the cache without touching the network.
 */
import { createHash } from 'node:crypto'
import { constants, createReadStream } from 'node:fs'
import { access, chmod, readFile, rm, stat } from 'node:fs/promises'
import path from 'node:path'
import * as core from '@actions/core'
import * as tc from '@actions/tool-cache'
import { UserError, errorMessage } from '../errors.js'
import type { PinnedBinary } from '../versions.js'
import type { ToolPlatform } from './platform.js'

/** Where the expected digest comes from: a pin, or the publisher's checksum asset. */
export type ExpectedDigest = { sha256: string } | { checksumUrl: string }

export interface BinaryRelease {
  /** Name in the tool cache, e.g. `kind`. */
  tool: string
  /** Release version, e.g. `v0.32.0`. */
  version: string
  platform: ToolPlatform
  /** URL of the binary release asset. */
  url: string
  /** File name of the executable in the tool cache, e.g. `kind`. */
  executable: string
  digest: ExpectedDigest
}

/** Checksum files are a line or a few; anything bigger is not one (an HTML page, say). */
const MAX_CHECKSUM_FILE = 64 * 1024

/**
 * Path of the release's executable in the tool cache, downloading and
 * verifying it first unless this version is already there.
 *
 * Downloads go through tool-cache's `downloadTool`, which tries 3 times, 10 to
 * 20 seconds apart, on network errors, 5xx, 408 and 429; other HTTP statuses
 * fail at once. Every failure is a UserError naming the URL.
 */
export async function installBinary(release: BinaryRelease): Promise<string> {
  requireRunnerDirectories()
  const { tool, version, platform, url, executable } = release
  const cached = tc.find(tool, version, platform.arch)
  if (cached) {
    const file = path.join(cached, executable)
    if (await isExecutable(file)) {
      core.info(`${tool} ${version}: from the tool cache, ${file}`)
      return file
    }
  }

  const asset = assetName(url)
  // The checksum first: it is small, and without it the binary is of no use.
  const expected =
    'sha256' in release.digest
      ? { sha256: normalizeSha256(release.digest.sha256), from: 'pinned in oml-chains-action' }
      : {
          sha256: await fetchPublishedSha256(release.digest.checksumUrl, asset),
          from: `published in ${release.digest.checksumUrl}`,
        }

  core.info(`${tool} ${version}: downloading ${url}`)
  const downloaded = await download(url)
  try {
    const actual = await sha256File(downloaded)
    if (actual !== expected.sha256) {
      throw new UserError(
        `sha256 mismatch for ${url}: expected ${expected.sha256} (${expected.from}), got ${actual}; nothing was installed`,
      )
    }
    core.info(`${tool} ${version}: sha256 ${actual} verified (${expected.from})`)
    await chmod(downloaded, 0o755)
    const dir = await tc.cacheFile(downloaded, executable, tool, version, platform.arch)
    return path.join(dir, executable)
  } finally {
    // cacheFile copies; the download itself (verified or not) never stays behind.
    await rm(downloaded, { force: true })
  }
}

/**
 * The pinned sha256 of `version` for `platform` among `pins`, if there is one.
 */
export function pinnedSha256(
  pins: readonly PinnedBinary[],
  version: string,
  platform: ToolPlatform,
): string | undefined {
  const byPlatform: Partial<Record<string, string>> | undefined = pins.find(
    (pin) => pin.version === version,
  )?.sha256
  return byPlatform?.[platform.name]
}

/**
 * The sha256 a checksum file gives for `asset`. Reads the formats publishers
 * use: `<hex>  <asset>` (sha256sum's text mode: kind's `.sha256sum`) and
 * `<hex> *<dir>/<asset>` (binary mode, with a path: conforma/cli's `.sha256`).
 * The line must name `asset` (its path's last segment), so a checksum file of
 * another asset is never taken for this one.
 */
export function parseChecksumFile(text: string, asset: string, source = 'checksum file'): string {
  const named: string[] = []
  for (const [index, raw] of text.split('\n').entries()) {
    const line = raw.trim()
    if (!line) continue
    const match = /^([0-9a-fA-F]{64})\s+\*?(\S.*)$/.exec(line)
    if (!match) {
      const shown = line.length > 60 ? `${line.slice(0, 60)}...` : line
      throw new UserError(
        `${source} is not a sha256 checksum file: line ${index + 1} is "${shown}", expected "<sha256>  ${asset}"`,
      )
    }
    const [, hex = '', name = ''] = match
    const base = name.trim().split('/').pop()
    if (base === asset) return hex.toLowerCase()
    named.push(name.trim())
  }
  throw new UserError(
    named.length
      ? `${source} has no checksum for ${asset}: it names ${named.join(', ')}`
      : `${source} is empty: no checksum for ${asset}`,
  )
}

/** Hex SHA-256 of a file, streamed. */
export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

async function fetchPublishedSha256(checksumUrl: string, asset: string): Promise<string> {
  const file = await download(checksumUrl)
  try {
    if ((await stat(file)).size > MAX_CHECKSUM_FILE) {
      throw new UserError(`${checksumUrl} is not a checksum file: larger than 64 KiB`)
    }
    return parseChecksumFile(await readFile(file, 'utf8'), asset, checksumUrl)
  } finally {
    await rm(file, { force: true })
  }
}

/** tool-cache's download into RUNNER_TEMP, with its errors turned into a UserError naming the URL. */
export async function download(url: string): Promise<string> {
  try {
    return await tc.downloadTool(url)
  } catch (err) {
    if (err instanceof tc.HTTPError) {
      const hint = err.httpStatusCode === 404 ? ' (not found: is this version released?)' : ''
      throw new UserError(`download of ${url} failed: HTTP ${err.httpStatusCode}${hint}`, {
        cause: err,
      })
    }
    throw new UserError(`download of ${url} failed: ${errorMessage(err)}`, { cause: err })
  }
}

/** tool-cache reads both from the environment; the runner sets them, local use must too. */
export function requireRunnerDirectories(): void {
  const missing = ['RUNNER_TOOL_CACHE', 'RUNNER_TEMP'].filter((name) => !process.env[name])
  if (missing.length) {
    throw new UserError(
      `${missing.join(' and ')} must be set to a directory (the GitHub runner sets both) to install tools`,
    )
  }
}

function assetName(url: string): string {
  const name = new URL(url).pathname.split('/').pop()
  if (!name) throw new Error(`release asset URL without a file name: ${url}`)
  return decodeURIComponent(name)
}

function normalizeSha256(hex: string): string {
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) throw new Error(`not a sha256 digest: "${hex}"`)
  return hex.toLowerCase()
}

async function isExecutable(file: string): Promise<boolean> {
  try {
    await access(file, constants.X_OK)
    return true
  } catch {
    return false
  }
}
