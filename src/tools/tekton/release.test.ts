import { createHash } from 'node:crypto'
import * as tc from '@actions/tool-cache'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { startReleaseHost, type ReleaseHost } from '../../../test/harness/release-host.js'
import { useRunnerDirs, type RunnerDirs } from '../../../test/harness/runner-dirs.js'
import { fetchTektonRelease, type ReleaseSources } from './release.js'

// The release host and GitHub's API are played by a stand-in HTTP server on
// 127.0.0.1 (the network, not a tool).

const manifest = `apiVersion: v1
kind: Namespace
metadata:
  name: tekton-pipelines
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: pipelines-info
  namespace: tekton-pipelines
data:
  version: v1.15.0
`
const sha256 = createHash('sha256').update(manifest).digest('hex')
const assetPath = '/pipeline/previous/v1.15.0/release.yaml'
const apiPath = '/repos/tektoncd/pipeline/releases/tags/v1.15.0'

let host: ReleaseHost
let dirs: RunnerDirs
let sources: ReleaseSources

function githubSays(digest: string | undefined, status = 200) {
  host.route(apiPath, (_req, res) => {
    res.writeHead(status, { 'content-type': 'application/json' })
    res.end(
      status === 200
        ? JSON.stringify({
            assets: [{ name: 'release.yaml', ...(digest && { digest: `sha256:${digest}` }) }],
          })
        : JSON.stringify({ message: 'API rate limit exceeded' }),
    )
  })
}

beforeAll(async () => {
  host = await startReleaseHost()
  sources = { manifestBase: host.url, githubApi: host.url }
})
afterAll(() => host.close())
beforeEach(async () => {
  dirs = await useRunnerDirs()
  host.asset(assetPath, manifest)
})
afterEach(() => dirs.restore())

describe('fetchTektonRelease', () => {
  it("checks the download against GitHub's asset digest, then serves it from the tool cache", async () => {
    githubSays(sha256)
    const first = await fetchTektonRelease('pipeline', 'v1.15.0', sources)
    expect(first).toMatchObject({ sha256, verifiedBy: "the digest of GitHub's release asset" })
    expect(first.url).toBe(`${host.url}${assetPath}`)
    expect(first.objects.map((o) => o.kind)).toEqual(['Namespace', 'ConfigMap'])

    const second = await fetchTektonRelease('pipeline', 'v1.15.0', sources)
    expect(second).toMatchObject({ sha256, verifiedBy: 'checked when it was cached' })
    expect(host.requests(assetPath)).toBe(1)
    expect(await dirs.leftovers()).toEqual([])
  })

  it('refuses a download whose digest differs from GitHub’s, and caches nothing', async () => {
    githubSays('0'.repeat(64))
    await expect(fetchTektonRelease('pipeline', 'v1.15.0', sources)).rejects.toThrow(
      `sha256 mismatch for ${host.url}${assetPath}: GitHub's release asset has ${'0'.repeat(64)}, the download has ${sha256}`,
    )
    expect(tc.find('tekton-pipeline-release', 'v1.15.0')).toBe('')
    expect(await dirs.leftovers()).toEqual([])
  })

  it('goes on unverified when GitHub cannot be asked, and does not cache that', async () => {
    githubSays(undefined, 403)
    const release = await fetchTektonRelease('pipeline', 'v1.15.0', sources)
    expect(release).toMatchObject({ sha256, verifiedBy: 'unverified: GitHub could not be asked' })
    expect(tc.find('tekton-pipeline-release', 'v1.15.0')).toBe('')
  })

  it('names the URL when the release does not exist', async () => {
    githubSays(sha256)
    await expect(fetchTektonRelease('pipeline', 'v9.9.9', sources)).rejects.toThrow(
      `download of ${host.url}/pipeline/previous/v9.9.9/release.yaml failed: HTTP 404`,
    )
  })
})
