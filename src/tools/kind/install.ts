import { UserError } from '../../errors.js'
import * as versions from '../../versions.js'
import type { PinnedBinary } from '../../versions.js'
import { installBinary, pinnedSha256 } from '../download.js'
import { runnerPlatform, type ToolPlatform } from '../platform.js'

export interface InstallKindOptions {
  /** Host of the release downloads. Default `https://github.com`. */
  baseUrl?: string
  /** Default this machine's platform. */
  platform?: ToolPlatform
  /** Releases with pinned checksums. Default the ones in versions.ts. */
  pins?: readonly PinnedBinary[]
}

/**
 * Path of the kind binary of `version`, from the tool cache or downloaded from
 * kind's GitHub release. Checked against the sha256 pinned in versions.ts when
 * the version is pinned there, else against the `.sha256sum` published next
 * to the binary.
 */
export async function installKind(
  version: string = versions.kind.version,
  options: InstallKindOptions = {},
): Promise<string> {
  if (!/^v\d+\.\d+\.\d+$/.test(version)) {
    throw new UserError(`kind version "${version}" is not a release version; use the form v1.2.3`)
  }
  const platform = options.platform ?? runnerPlatform()
  const pins = options.pins ?? [versions.kind, ...versions.otherKindReleases]
  const base = (options.baseUrl ?? 'https://github.com').replace(/\/+$/, '')
  const url = `${base}/kubernetes-sigs/kind/releases/download/${version}/kind-${platform.os}-${platform.arch}`
  const sha256 = pinnedSha256(pins, version, platform)
  return installBinary({
    tool: 'kind',
    version,
    platform,
    url,
    executable: 'kind',
    digest: sha256 ? { sha256 } : { checksumUrl: `${url}.sha256sum` },
  })
}
