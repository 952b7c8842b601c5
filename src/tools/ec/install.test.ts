import { createHash } from 'node:crypto'
import { readFile, readdir, stat } from 'node:fs/promises'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { UserError } from '../../errors.js'
import * as versions from '../../versions.js'
import { runnerPlatform } from '../platform.js'
import { startReleaseHost, status, type ReleaseHost } from '../../../test/harness/release-host.js'
import { useRunnerDirs, type RunnerDirs } from '../../../test/harness/runner-dirs.js'
import { installEc } from './install.js'

const platform = runnerPlatform()
const releases = '/conforma/cli/releases/download'
const asset = `ec_${platform.os}_${platform.arch}`

// No ec release binary is at hand here (nor can ec be built): the bytes served
// stand for one. What is under test is the download, the check and the cache.
const bytes = Buffer.from('#!/bin/sh\necho "stand-in for the ec release binary"\n')
const sha = createHash('sha256').update(bytes).digest('hex')

let host: ReleaseHost
let dirs: RunnerDirs

beforeEach(async () => {
  dirs = await useRunnerDirs()
  host = await startReleaseHost()
})

afterEach(async () => {
  await host.close()
  await dirs.restore()
})

describe('installEc', () => {
  it('installs the default version, checked against the .sha256 conforma/cli publishes, then serves it from the tool cache', async () => {
    const assetPath = `${releases}/${versions.ecVersion}/${asset}`
    host.asset(assetPath, bytes)
    // The line `sha256sum -b dist/<asset>` writes in conforma/cli's `make dist`.
    host.asset(`${assetPath}.sha256`, `${sha} *dist/${asset}\n`)

    const ec = await installEc(undefined, { baseUrl: host.url })

    const version = versions.ecVersion.replace(/^v/, '')
    expect(ec).toBe(path.join(dirs.toolCache, 'ec', version, platform.arch, 'ec'))
    expect(
      createHash('sha256')
        .update(await readFile(ec))
        .digest('hex'),
    ).toBe(sha)
    expect((await stat(ec)).mode & 0o111).toBe(0o111)

    expect(await installEc(undefined, { baseUrl: host.url })).toBe(ec)
    expect(host.requests(assetPath)).toBe(1)
    expect(host.requests(`${assetPath}.sha256`)).toBe(1)
    expect(await dirs.leftovers()).toEqual([])
  })

  it('refuses a binary whose sha256 is not the published one, and caches nothing', async () => {
    const assetPath = `${releases}/v0.9.115/${asset}`
    host.asset(assetPath, bytes)
    const published = 'f'.repeat(64)
    host.asset(`${assetPath}.sha256`, `${published} *dist/${asset}\n`)

    const failure = installEc('v0.9.115', { baseUrl: host.url })

    await expect(failure).rejects.toBeInstanceOf(UserError)
    await expect(failure).rejects.toThrow(
      `sha256 mismatch for ${host.url}${assetPath}: expected ${published} (published in ${host.url}${assetPath}.sha256), got ${sha}; nothing was installed`,
    )
    expect(await readdir(dirs.toolCache)).toEqual([])
    expect(await dirs.leftovers()).toEqual([])
  })

  it('holds a pinned version to its pin, without asking for the .sha256', async () => {
    const assetPath = `${releases}/v0.9.115/${asset}`
    host.asset(assetPath, bytes)
    const pins = [{ version: 'v0.9.115', sha256: { [platform.name]: sha } }]

    const ec = await installEc('v0.9.115', { baseUrl: host.url, pins })

    expect(ec).toBe(path.join(dirs.toolCache, 'ec', '0.9.115', platform.arch, 'ec'))
    expect(host.requests(`${assetPath}.sha256`)).toBe(0)
  })

  it('fails clearly when the release has no such binary or checksum', async () => {
    const assetPath = `${releases}/v0.9.115/${asset}`
    host.route(`${assetPath}.sha256`, status(404))

    await expect(installEc('v0.9.115', { baseUrl: host.url })).rejects.toThrow(
      `download of ${host.url}${assetPath}.sha256 failed: HTTP 404 (not found: is this version released?)`,
    )
    expect(host.requests(assetPath)).toBe(0)
    expect(await readdir(dirs.toolCache)).toEqual([])
  })

  it('downloads the asset of the platform asked for', async () => {
    const assetPath = `${releases}/v0.9.115/ec_darwin_arm64`
    host.asset(assetPath, bytes)
    host.asset(`${assetPath}.sha256`, `${sha} *dist/ec_darwin_arm64\n`)

    const ec = await installEc('v0.9.115', {
      baseUrl: host.url,
      platform: runnerPlatform('darwin', 'arm64'),
    })

    expect(ec).toBe(path.join(dirs.toolCache, 'ec', '0.9.115', 'arm64', 'ec'))
    expect(host.requests(assetPath)).toBe(1)
  })

  it('refuses the rolling "snapshot" release and other non-versions, before any download', async () => {
    for (const version of ['snapshot', 'latest', '0.9.115']) {
      await expect(installEc(version, { baseUrl: host.url })).rejects.toThrow(
        `ec version "${version}" is not a release version; use the form v0.9.115`,
      )
    }
    expect(host.requests(`${releases}/snapshot/${asset}`)).toBe(0)
  })
})
