import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { readFile, readdir, stat } from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'
import * as tc from '@actions/tool-cache'
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { UserError } from '../errors.js'
import * as versions from '../versions.js'
import { installBinary, parseChecksumFile, pinnedSha256, type BinaryRelease } from './download.js'
import { runnerPlatform } from './platform.js'
import { toolPath } from '../../test/harness/tools.js'
import {
  reset,
  startReleaseHost,
  status,
  type ReleaseHost,
} from '../../test/harness/release-host.js'
import { useRunnerDirs, type RunnerDirs } from '../../test/harness/runner-dirs.js'

const run = promisify(execFile)
const platform = runnerPlatform()
const kindPath = `/kubernetes-sigs/kind/releases/download/v0.32.0/kind-${platform.name}`
const kindAsset = `kind-${platform.name}`

let kindBytes: Buffer
let kindSha: string
let host: ReleaseHost
let dirs: RunnerDirs

beforeAll(async () => {
  kindBytes = await readFile(toolPath('kind'))
  kindSha = createHash('sha256').update(kindBytes).digest('hex')
}, 300_000)

beforeEach(async () => {
  dirs = await useRunnerDirs()
  host = await startReleaseHost()
})

afterEach(async () => {
  await host.close()
  await dirs.restore()
})

function kindRelease(digest: BinaryRelease['digest']): BinaryRelease {
  return {
    tool: 'kind',
    version: 'v0.32.0',
    platform,
    url: host.url + kindPath,
    executable: 'kind',
    digest,
  }
}

/** What a user would look at after a failure: no tool in the cache, no download left in temp. */
async function expectNothingInstalled(): Promise<void> {
  expect(tc.find('kind', 'v0.32.0', platform.arch)).toBe('')
  expect(await readdir(dirs.toolCache)).toEqual([])
  expect(await dirs.leftovers()).toEqual([])
}

describe('installBinary', () => {
  it('installs a binary matching its pin, runnable, and serves the next call from the tool cache', async () => {
    host.asset(kindPath, kindBytes)

    const installed = await installBinary(kindRelease({ sha256: kindSha }))

    expect(installed).toBe(path.join(dirs.toolCache, 'kind', '0.32.0', platform.arch, 'kind'))
    expect((await stat(installed)).mode & 0o111).toBe(0o111)
    const { stdout } = await run(installed, ['version'])
    expect(stdout).toMatch(/^kind v0\.32\.0 /)
    expect(await dirs.leftovers()).toEqual([]) // the download was moved into the cache, not kept

    const again = await installBinary(kindRelease({ sha256: kindSha }))
    expect(again).toBe(installed)
    expect(host.requests(kindPath)).toBe(1)
  })

  it('refuses a binary whose sha256 is not the pin, naming the URL and both digests, and caches nothing', async () => {
    host.asset(kindPath, kindBytes)
    const pin = createHash('sha256').update('the release asset').digest('hex')

    const failure = installBinary(kindRelease({ sha256: pin }))

    await expect(failure).rejects.toBeInstanceOf(UserError)
    await expect(failure).rejects.toThrow(
      `sha256 mismatch for ${host.url}${kindPath}: expected ${pin} (pinned in oml-chains-action), got ${kindSha}`,
    )
    await expectNothingInstalled()
  })

  it('checks against the publisher\'s checksum asset in sha256sum\'s "<hex>  <asset>" form (kind)', async () => {
    host.asset(kindPath, kindBytes)
    host.asset(`${kindPath}.sha256sum`, `${kindSha}  ${kindAsset}\n`)

    const installed = await installBinary(
      kindRelease({ checksumUrl: `${host.url}${kindPath}.sha256sum` }),
    )

    const { stdout } = await run(installed, ['version'])
    expect(stdout).toMatch(/^kind v0\.32\.0 /)
    expect(host.requests(`${kindPath}.sha256sum`)).toBe(1)
  })

  it('checks against the publisher\'s checksum asset in the "<hex> *dist/<asset>" form (conforma/cli)', async () => {
    // conforma/cli's layout and checksum line, carrying the kind binary as content.
    const ecPath = `/conforma/cli/releases/download/v0.9.115/ec_${platform.os}_${platform.arch}`
    host.asset(ecPath, kindBytes)
    host.asset(`${ecPath}.sha256`, `${kindSha} *dist/ec_${platform.os}_${platform.arch}\n`)

    const installed = await installBinary({
      tool: 'ec',
      version: 'v0.9.115',
      platform,
      url: host.url + ecPath,
      executable: 'ec',
      digest: { checksumUrl: `${host.url}${ecPath}.sha256` },
    })

    expect(installed).toBe(path.join(dirs.toolCache, 'ec', '0.9.115', platform.arch, 'ec'))
    expect(
      createHash('sha256')
        .update(await readFile(installed))
        .digest('hex'),
    ).toBe(kindSha)
  })

  it('refuses a checksum asset that names another asset, before downloading the binary', async () => {
    host.asset(kindPath, kindBytes)
    host.asset(`${kindPath}.sha256sum`, `${kindSha}  kind-windows-amd64\n`)

    const failure = installBinary(kindRelease({ checksumUrl: `${host.url}${kindPath}.sha256sum` }))

    await expect(failure).rejects.toThrow(
      `${host.url}${kindPath}.sha256sum has no checksum for ${kindAsset}: it names kind-windows-amd64`,
    )
    expect(host.requests(kindPath)).toBe(0)
    await expectNothingInstalled()
  })

  it('fails at once on HTTP 404, naming the URL and the status, and caches no error page', async () => {
    host.route(kindPath, status(404))

    const failure = installBinary(kindRelease({ sha256: kindSha }))

    await expect(failure).rejects.toBeInstanceOf(UserError)
    await expect(failure).rejects.toThrow(`download of ${host.url}${kindPath} failed: HTTP 404`)
    expect(host.requests(kindPath)).toBe(1) // a 4xx is not retried
    await expectNothingInstalled()
  })

  it('retries HTTP 500, then fails naming the URL and the status, and caches no error page', async () => {
    host.route(kindPath, status(500))

    const failure = installBinary(kindRelease({ sha256: kindSha }))

    await expect(failure).rejects.toThrow(`download of ${host.url}${kindPath} failed: HTTP 500`)
    expect(host.requests(kindPath)).toBe(3) // tool-cache's 3 attempts
    await expectNothingInstalled()
  })

  it('names the checksum URL when the checksum asset is missing', async () => {
    host.asset(kindPath, kindBytes)

    const failure = installBinary(kindRelease({ checksumUrl: `${host.url}${kindPath}.sha256sum` }))

    await expect(failure).rejects.toThrow(
      `download of ${host.url}${kindPath}.sha256sum failed: HTTP 404`,
    )
    await expectNothingInstalled()
  })

  it('retries after a connection reset and installs', async () => {
    host.asset(kindPath, kindBytes)
    host.failFirst(kindPath, 1, reset)

    const installed = await installBinary(kindRelease({ sha256: kindSha }))

    const { stdout } = await run(installed, ['version'])
    expect(stdout).toMatch(/^kind v0\.32\.0 /)
    expect(host.requests(kindPath)).toBe(2)
  })

  it('retries after a body cut short by a reset, and installs the whole binary', async () => {
    host.asset(kindPath, kindBytes)
    host.failFirst(kindPath, 1, (req, res) => {
      res.writeHead(200, { 'content-length': kindBytes.length })
      res.write(kindBytes.subarray(0, kindBytes.length / 2), () => req.socket.resetAndDestroy())
    })

    const installed = await installBinary(kindRelease({ sha256: kindSha }))

    expect(
      createHash('sha256')
        .update(await readFile(installed))
        .digest('hex'),
    ).toBe(kindSha)
    expect(host.requests(kindPath)).toBe(2)
    expect(await dirs.leftovers()).toEqual([])
  })

  it('says which variable to set when RUNNER_TOOL_CACHE is missing', async () => {
    delete process.env['RUNNER_TOOL_CACHE']

    await expect(installBinary(kindRelease({ sha256: kindSha }))).rejects.toThrow(
      'RUNNER_TOOL_CACHE must be set to a directory',
    )
    expect(host.requests(kindPath)).toBe(0)
  })
})

describe('parseChecksumFile', () => {
  const hex = 'ab'.repeat(32)

  it('reads sha256sum\'s "<hex>  <asset>" line (kind)', () => {
    expect(parseChecksumFile(`${hex}  kind-linux-amd64\n`, 'kind-linux-amd64')).toBe(hex)
  })

  it('reads a binary-mode line with a path, "<hex> *dist/<asset>" (conforma/cli)', () => {
    expect(parseChecksumFile(`${hex} *dist/ec_linux_amd64\n`, 'ec_linux_amd64')).toBe(hex)
  })

  it("picks the asset's line in a file listing several, and lower-cases the digest", () => {
    const other = 'cd'.repeat(32)
    const text = `${other}  kind-linux-arm64\n${hex.toUpperCase()}  kind-linux-amd64\n`
    expect(parseChecksumFile(text, 'kind-linux-amd64')).toBe(hex)
  })

  it('refuses a line for another asset, naming it', () => {
    expect(() => parseChecksumFile(`${hex} *dist/ec_linux_arm64`, 'ec_linux_amd64')).toThrow(
      'checksum file has no checksum for ec_linux_amd64: it names dist/ec_linux_arm64',
    )
  })

  it('refuses an asset whose name only starts like the one asked for', () => {
    expect(() => parseChecksumFile(`${hex}  kind-linux-amd64.exe`, 'kind-linux-amd64')).toThrow(
      'has no checksum for kind-linux-amd64',
    )
  })

  it('refuses an HTML page served in place of the checksum file', () => {
    expect(() =>
      parseChecksumFile('<!DOCTYPE html>\n<html>rate limited</html>', 'kind-linux-amd64'),
    ).toThrow('checksum file is not a sha256 checksum file: line 1 is "<!DOCTYPE html>"')
  })

  it('refuses a digest that is not 64 hex digits, and an empty file', () => {
    expect(() =>
      parseChecksumFile(`${hex.slice(2)}  kind-linux-amd64`, 'kind-linux-amd64'),
    ).toThrow('is not a sha256 checksum file')
    expect(() => parseChecksumFile('\n', 'kind-linux-amd64')).toThrow(
      'checksum file is empty: no checksum for kind-linux-amd64',
    )
  })
})

describe('pinnedSha256', () => {
  const linux = runnerPlatform('linux', 'arm64')

  it('finds the pin of a version and platform in versions.ts', () => {
    const pins = [versions.kind, ...versions.otherKindReleases]
    expect(pinnedSha256(pins, 'v0.31.0', linux)).toBe(
      '8e1014e87c34901cc422a1445866835d1e666f2a61301c27e722bdeab5a1f7e4',
    )
  })

  it('has none for an unpinned version or platform', () => {
    const pins = [versions.kind]
    expect(pinnedSha256(pins, 'v0.30.0', linux)).toBeUndefined()
    expect(pinnedSha256(pins, 'v0.32.0', runnerPlatform('darwin', 'arm64'))).toBeUndefined()
  })
})
