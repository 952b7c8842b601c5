import { spawn } from 'node:child_process'
import path from 'node:path'
import { repoRoot, toolPath } from './tools.js'

export interface PythonRun {
  code: number | null
  stdout: string
  stderr: string
}

/**
 * Runs one of the trainer's programs (`trainer/<script>`) with the test-tools
 * virtualenv's Python, in this process's environment with `env` over it (an
 * undefined value removes a variable).
 */
export function runTrainerProgram(
  script: string,
  args: string[],
  env: Record<string, string | undefined> = {},
): Promise<PythonRun> {
  const merged: NodeJS.ProcessEnv = { ...process.env, ...env }
  for (const [name, value] of Object.entries(env)) if (value === undefined) delete merged[name]
  return new Promise((resolve, reject) => {
    const child = spawn(toolPath('python3'), [path.join(repoRoot, 'trainer', script), ...args], {
      env: merged,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()))
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
    child.once('error', reject)
    child.once('close', (code) => resolve({ code, stdout, stderr }))
  })
}

/**
 * Publishes the iris dataset as the seed's was made (trainer/publish_dataset.py)
 * to `reference` in a plain-HTTP test registry; returns its digest.
 */
export async function publishDataset(reference: string): Promise<string> {
  const run = await runTrainerProgram('publish_dataset.py', [reference, '--plain-http'])
  if (run.code !== 0) throw new Error(`publish_dataset.py ${reference} failed: ${run.stderr}`)
  return run.stdout.trim()
}
