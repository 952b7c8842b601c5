import { existsSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

/**
 * A file the action ships next to its code (`tekton/pipeline.yaml`,
 * `policy/config.yaml`): found by walking up from this module, so it works
 * both from `src/` in the repository and from `dist/` in the action as GitHub
 * checks it out (the whole repository).
 */
export function bundledFile(
  relative: string,
  from = path.dirname(fileURLToPath(import.meta.url)),
): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const file = path.join(dir, relative)
    if (existsSync(file)) return file
    if (path.dirname(dir) === dir) {
      throw new Error(`the bundled ${relative} was not found above ${from}`)
    }
  }
}
