/**
 * The real Tekton Chains release, made here from its Go module
 * (test/harness/releases/tekton-chains.sh; how it is made, cached, pushed and
 * served: built-release.ts). Its version is not the one the action pins but
 * the newest the Go module proxy serves (scripts/test-tools.sh's
 * TEKTON_CHAINS_VERSION); a run installs it with `tekton-chains-version` set
 * to `release.version`.
 */
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { builtRelease } from './built-release.js'

/** Read, push and publish it (built-release.ts); linked as `tektonChains.dir`. */
export const tektonChains = builtRelease({
  name: 'tekton-chains',
  component: 'chains',
  info: { namespace: 'tekton-chains', name: 'chains-info' },
})

/**
 * The versions of the modules the Chains controller was built with, as
 * build.txt records them (`dependency <path> <version>`): go-containerregistry
 * decides which registries it reaches over plain HTTP.
 */
export async function tektonChainsDependencies(): Promise<Record<string, string>> {
  const text = await readFile(path.join(tektonChains.dir, 'build.txt'), 'utf8')
  return Object.fromEntries(
    [...text.matchAll(/^dependency (\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!]),
  )
}
