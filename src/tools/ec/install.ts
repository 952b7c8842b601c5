import { UserError } from '../../errors.js'
import * as versions from '../../versions.js'
import type { PinnedBinary } from '../../versions.js'
import { installBinary, pinnedSha256 } from '../download.js'
import { runnerPlatform, type ToolPlatform } from '../platform.js'

export interface InstallEcOptions {
  /** Host of the release downloads. Default `https://github.com`. */
  baseUrl?: string
  /** Default this machine's platform. */
  platform?: ToolPlatform
  /** Releases with pinned checksums. Default the ones in versions.ts. */
  pins?: readonly PinnedBinary[]
}

/**
 * Path of the ec (Conforma CLI) binary of `version`, from the tool cache or
 * downloaded from conforma/cli's GitHub release, where each binary is the
 * asset `ec_<os>_<arch>` next to `ec_<os>_<arch>.sha256` (`sha256sum -b`
 * output: `<hex> *dist/ec_<os>_<arch>`). Checked against the sha256 pinned in
 * versions.ts when the version is pinned there, else against that file.
 */
export async function installEc(
  version: string = versions.ecVersion,
  options: InstallEcOptions = {},
): Promise<string> {
  // Only versioned tags: the release named "snapshot" is rolling and its binary changes under it.
  if (!/^v\d+\.\d+\.\d+$/.test(version)) {
    throw new UserError(`ec version "${version}" is not a release version; use the form v0.9.115`)
  }
  const platform = options.platform ?? runnerPlatform()
  const pins = options.pins ?? versions.ecPins
  const base = (options.baseUrl ?? 'https://github.com').replace(/\/+$/, '')
  const url = `${base}/conforma/cli/releases/download/${version}/ec_${platform.os}_${platform.arch}`
  const sha256 = pinnedSha256(pins, version, platform)
  return installBinary({
    tool: 'ec',
    version,
    platform,
    url,
    executable: 'ec',
    digest: sha256 ? { sha256 } : { checksumUrl: `${url}.sha256` },
  })
}
