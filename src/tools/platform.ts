import { UserError } from '../errors.js'

/** Operating systems release assets are installed for (darwin for local use of the CLI). */
export type ToolOs = 'linux' | 'darwin'
/** CPU architectures, named as Go and the release assets name them. */
export type ToolArch = 'amd64' | 'arm64'

/** Where a binary will run: the os/arch pair release asset names are made of. */
export interface ToolPlatform {
  os: ToolOs
  arch: ToolArch
  /** `<os>-<arch>`, e.g. `linux-amd64`: the key of pinned checksums in versions.ts. */
  name: `${ToolOs}-${ToolArch}`
}

const oses: Partial<Record<string, ToolOs>> = { linux: 'linux', darwin: 'darwin' }
const arches: Partial<Record<string, ToolArch>> = { x64: 'amd64', arm64: 'arm64' }

/**
 * The platform of this machine (Node's `process.platform`/`process.arch` by
 * default), or a UserError naming what is supported.
 */
export function runnerPlatform(
  platform: string = process.platform,
  arch: string = process.arch,
): ToolPlatform {
  const os = oses[platform]
  const goArch = arches[arch]
  if (!os || !goArch) {
    throw new UserError(
      `unsupported runner platform ${platform}/${arch}: the tools are installed on linux (x64, arm64) and, for local use, darwin (x64, arm64)`,
    )
  }
  return { os, arch: goArch, name: `${os}-${goArch}` }
}
