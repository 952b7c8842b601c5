/**
 * Test support: a fresh RUNNER_TOOL_CACHE and RUNNER_TEMP per test, as the
 * runner provides them, and tool-cache's retry waits set to zero.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

export interface RunnerDirs {
  toolCache: string
  temp: string
  /** Files left in RUNNER_TEMP (a download that should have been deleted). */
  leftovers(): Promise<string[]>
  restore(): Promise<void>
}

export async function useRunnerDirs(): Promise<RunnerDirs> {
  const saved = {
    RUNNER_TOOL_CACHE: process.env['RUNNER_TOOL_CACHE'],
    RUNNER_TEMP: process.env['RUNNER_TEMP'],
  }
  const root = await mkdtemp(path.join(os.tmpdir(), 'oml-tools-'))
  const toolCache = await mkdtemp(path.join(root, 'tool-cache-'))
  const temp = await mkdtemp(path.join(root, 'temp-'))
  // tool-cache reads both at call time (checked in v4), so setting them here is enough.
  process.env['RUNNER_TOOL_CACHE'] = toolCache
  process.env['RUNNER_TEMP'] = temp
  // tool-cache's own hooks for the wait between its 3 attempts (10-20 s by
  // default): retries still happen against the server, only without the wait.
  const hooks = globalThis as Record<string, unknown>
  hooks['TEST_DOWNLOAD_TOOL_RETRY_MIN_SECONDS'] = 0
  hooks['TEST_DOWNLOAD_TOOL_RETRY_MAX_SECONDS'] = 0
  return {
    toolCache,
    temp,
    leftovers: () => readdir(temp),
    async restore() {
      for (const [name, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[name]
        else process.env[name] = value
      }
      delete hooks['TEST_DOWNLOAD_TOOL_RETRY_MIN_SECONDS']
      delete hooks['TEST_DOWNLOAD_TOOL_RETRY_MAX_SECONDS']
      await rm(root, { recursive: true, force: true })
    },
  }
}
