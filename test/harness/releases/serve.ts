/**
 * Serves a Tekton release manifest the way the action fetches one
 * (src/tools/tekton/release.ts): the file at
 * `<manifests>/tekton-releases/<component>/previous/<version>/release.yaml`,
 * as infra.tekton.dev serves it, and GitHub's release JSON at
 * `<api>/repos/tektoncd/<component>/releases/tags/<version>` reporting the
 * asset's `sha256:` digest, the second origin the action checks it against.
 * Both hosts are release-host stand-ins: the internet stand-in's
 * `tektonReleases` and `githubApi` (https://infra.tekton.dev,
 * https://api.github.com through its proxy), or one plain loopback host.
 */
import { createHash } from 'node:crypto'
import type { TektonComponent } from '../../../src/tools/tekton/release.js'
import type { ReleaseHost } from '../release-host.js'

/** The path under which infra.tekton.dev keeps releases (release.ts's manifestBase). */
export const RELEASES_PATH = '/tekton-releases'

export interface ServedRelease {
  /** The manifest's URL, as the action builds it. */
  url: string
  /** Hex SHA-256 that GitHub's API reports for it. */
  sha256: string
}

export function serveTektonRelease(
  hosts: { manifests: ReleaseHost; api: ReleaseHost },
  release: { component: TektonComponent; version: string; manifest: string },
): ServedRelease {
  const { component, version, manifest } = release
  const sha256 = createHash('sha256').update(manifest).digest('hex')
  const file = `${RELEASES_PATH}/${component}/previous/${version}/release.yaml`
  hosts.manifests.route(file, (_req, res) => {
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-length': Buffer.byteLength(manifest),
    })
    res.end(manifest)
  })
  hosts.api.route(`/repos/tektoncd/${component}/releases/tags/${version}`, (_req, res) => {
    // The fields release.ts reads, shaped as GitHub's "get a release by tag name".
    const body = JSON.stringify({
      tag_name: version,
      assets: [{ name: 'release.yaml', digest: `sha256:${sha256}` }],
    })
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' })
    res.end(body)
  })
  return { url: hosts.manifests.url + file, sha256 }
}
