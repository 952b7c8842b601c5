import * as core from '@actions/core'

/**
 * Registers a secret value so the Actions runner masks it in every log line.
 *
 * Called before the value can reach any log. Outside GitHub Actions (the CLI)
 * it does nothing: `core.setSecret` prints the value itself in an
 * `::add-mask::` command, which on a terminal would show the secret.
 */
export function maskSecret(value: string | undefined): void {
  if (!value || process.env.GITHUB_ACTIONS !== 'true') return
  core.setSecret(value)
  // Multi-line secrets (PEM keys, docker configs) are masked line by line by
  // the runner only when each line is registered too.
  for (const line of value.split(/\r?\n/)) {
    if (line.trim().length >= 4) core.setSecret(line)
  }
}
