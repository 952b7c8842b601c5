import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { toolPath } from './tools.js'

const execFileAsync = promisify(execFile)

export interface CosignRun {
  /** Working directory: relative key and file names resolve here. */
  cwd: string
  /** HOME for cosign (it caches TUF data there): a temp dir the test removes. */
  home: string
  /** Sent only as COSIGN_PASSWORD, never on the command line. */
  password?: string
}

/**
 * Runs the real cosign with only the environment it needs. An unreachable
 * proxy keeps it off the internet (its TUF lookup fails at once and it goes on
 * with the key alone); loopback, where the test registry listens, is exempt.
 */
export async function runCosign(
  run: CosignRun,
  args: string[],
): Promise<{ stdout: string; stderr: string }> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: run.home,
    HTTPS_PROXY: 'http://127.0.0.1:9',
    HTTP_PROXY: 'http://127.0.0.1:9',
    NO_PROXY: '127.0.0.1,localhost',
  }
  if (run.password !== undefined) env.COSIGN_PASSWORD = run.password
  try {
    return await execFileAsync(toolPath('cosign'), args, { cwd: run.cwd, env, timeout: 60_000 })
  } catch (err) {
    const e = err as { stderr?: string; code?: unknown }
    throw new Error(`cosign ${args[0] ?? ''} failed (exit ${String(e.code)}): ${e.stderr ?? ''}`, {
      cause: err,
    })
  }
}
