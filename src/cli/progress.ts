/** Keeps `oml-chains run`'s stdout for its JSON result. */
/**
 * @actions/core (info, group, warning) and the command runner (the output of kind
 * and docker) write to process.stdout, and the flow and its phases log through
 * them. This command's stdout carries only the JSON result, so while the flow
 * runs every write to stdout goes to stderr instead; outside GitHub Actions,
 * workflow commands (`::group::`, `::warning::`) become plain text on the way.
 * Returns the function that puts stdout back.
 */
export function routeProgressToStderr(): () => void {
  const inActions = process.env.GITHUB_ACTIONS === 'true'
  const stdoutWrite = process.stdout.write
  const toStderr = (chunk: unknown, ...rest: unknown[]): boolean => {
    const text = typeof chunk === 'string' && !inActions ? plainText(chunk) : chunk
    return (process.stderr.write as (...args: unknown[]) => boolean)(text, ...rest)
  }
  process.stdout.write = toStderr as typeof process.stdout.write
  return () => {
    process.stdout.write = stdoutWrite
  }
}

/** One workflow command per line, as @actions/core writes it: `::name props::data`. */
const WORKFLOW_COMMAND = /^::([a-z-]+)(?: [^:\n]*)?::([^\n]*)(\n|$)/gm

/** Workflow commands as a terminal reader wants them; other text unchanged. */
function plainText(text: string): string {
  return text.replace(WORKFLOW_COMMAND, (_line, name: string, data: string, eol: string) => {
    const message = data.replace(/%0D/g, '\r').replace(/%0A/g, '\n').replace(/%25/g, '%')
    switch (name) {
      case 'group':
        return `-- ${message}${eol}`
      case 'warning':
      case 'error':
      case 'notice':
        return `${name}: ${message}${eol}`
      case 'debug':
        return process.env.OML_CHAINS_DEBUG ? `debug: ${message}${eol}` : ''
      default:
        // endgroup, and add-mask above all: a masked value is never shown.
        return ''
    }
  })
}
