import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { readFile, readdir } from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { UserError } from '../../errors.js'
import * as versions from '../../versions.js'
import { pinnedSha256 } from '../download.js'
import { runnerPlatform } from '../platform.js'
import { toolPath } from '../../../test/harness/tools.js'
import { startReleaseHost, type ReleaseHost } from '../../../test/harness/release-host.js'
import { useRunnerDirs, type RunnerDirs } from '../../../test/harness/runner-dirs.js'
import { installKind } from './install.js'

const run = promisify(execFile)
const platform = runnerPlatform()
const releases = '/kubernetes-sigs/kind/releases/download'

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

describe('installKind', () => {
  it("fetches the default version from kind's release URL and checks it against the pin in versions.ts", async () => {
    // The kind served here is built from source, not the release asset: the
    // pin must reject it, which shows the pin is what the download is held to.
    const assetPath = `${releases}/${versions.kind.version}/kind-${platform.os}-${platform.arch}`
    host.asset(assetPath, kindBytes)
    const pin = pinnedSha256([versions.kind], versions.kind.version, platform)
    expect(pin).toMatch(/^[0-9a-f]{64}$/)

    const failure = installKind(undefined, { baseUrl: host.url })

    await expect(failure).rejects.toBeInstanceOf(UserError)
    await expect(failure).rejects.toThrow(
      `sha256 mismatch for ${host.url}${assetPath}: expected ${pin} (pinned in oml-chains-action), got ${kindSha}`,
    )
    expect(host.requests(assetPath)).toBe(1)
    expect(host.requests(`${assetPath}.sha256sum`)).toBe(0) // the pin wins over the network
    expect(await readdir(dirs.toolCache)).toEqual([])
    expect(await dirs.leftovers()).toEqual([])
  })

  it('installs a pinned kind that runs, and takes it from the tool cache the second time', async () => {
    const assetPath = `${releases}/v0.32.0/kind-${platform.name}`
    host.asset(assetPath, kindBytes)
    const pins = [{ version: 'v0.32.0', sha256: { [platform.name]: kindSha } }]

    const kind = await installKind('v0.32.0', { baseUrl: host.url, pins })

    expect(kind).toBe(path.join(dirs.toolCache, 'kind', '0.32.0', platform.arch, 'kind'))
    const { stdout } = await run(kind, ['version'])
    expect(stdout).toMatch(/^kind v0\.32\.0 go\S+ linux\/(amd64|arm64)$/m)

    expect(await installKind('v0.32.0', { baseUrl: host.url, pins })).toBe(kind)
    expect(host.requests(assetPath)).toBe(1)
    expect(host.requests(`${assetPath}.sha256sum`)).toBe(0)
  })

  it("checks a version not pinned in versions.ts against kind's published .sha256sum", async () => {
    // v0.30.0 is a real kind release without a pin here; the bytes are the v0.32.0 build.
    const assetPath = `${releases}/v0.30.0/kind-${platform.name}`
    host.asset(assetPath, kindBytes)
    host.asset(`${assetPath}.sha256sum`, `${kindSha}  kind-${platform.name}\n`)

    const kind = await installKind('v0.30.0', { baseUrl: host.url })

    expect(kind).toBe(path.join(dirs.toolCache, 'kind', '0.30.0', platform.arch, 'kind'))
    expect(
      createHash('sha256')
        .update(await readFile(kind))
        .digest('hex'),
    ).toBe(kindSha)
    expect(host.requests(`${assetPath}.sha256sum`)).toBe(1)
  })

  it('downloads the asset of the platform asked for', async () => {
    const darwin = runnerPlatform('darwin', 'arm64')
    const assetPath = `${releases}/v0.32.0/kind-darwin-arm64`
    host.asset(assetPath, kindBytes)
    host.asset(`${assetPath}.sha256sum`, `${kindSha}  kind-darwin-arm64\n`)

    const kind = await installKind('v0.32.0', { baseUrl: host.url, platform: darwin })

    expect(kind).toBe(path.join(dirs.toolCache, 'kind', '0.32.0', 'arm64', 'kind'))
    expect(host.requests(assetPath)).toBe(1)
  })

  it('refuses a version that is not a release tag, before any download', async () => {
    await expect(installKind('latest', { baseUrl: host.url })).rejects.toThrow(
      'kind version "latest" is not a release version; use the form v1.2.3',
    )
    expect(host.requests(`${releases}/latest/kind-${platform.name}`)).toBe(0)
  })
})
