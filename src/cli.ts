#!/usr/bin/env node
import { HelpRequested, UsageError, type Command } from './cli/args.js'
import { errorMessage, UserError } from './errors.js'

/**
 * Each command is loaded only when it is the one asked for: the helpers start
 * without `run`'s Kubernetes client and the rest of the flow (loading them all
 * took 0.4 s; docs/performance.md).
 */
const commands: { name: string; summary: string; load: () => Promise<Command> }[] = [
  {
    name: 'run',
    summary: "the action's main job: train, sign, attest and check a model (JSON on stdout)",
    load: async () => (await import('./cli/run.js')).run,
  },
  {
    name: 'keygen',
    summary: 'generate an encrypted cosign key pair (cosign.key, cosign.pub, cosign.password)',
    load: async () => (await import('./cli/keygen.js')).keygen,
  },
  {
    name: 'key-check',
    summary: 'open an encrypted cosign key with its password and print its public key',
    load: async () => (await import('./cli/key-check.js')).keyCheck,
  },
  {
    name: 'provenance',
    summary: 'verify a Chains attestation (file or image) and print its provenance',
    load: async () => (await import('./cli/provenance.js')).provenance,
  },
]

const usage = `Usage: oml-chains <command> [options]

The action's main job and its helpers, from a terminal.

Commands:
${commands.map((c) => `  ${c.name.padEnd(12)} ${c.summary}`).join('\n')}

Run 'oml-chains <command> --help' for a command's options.`

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${usage}\n`)
    return name ? 0 : 2
  }
  const entry = commands.find((c) => c.name === name)
  if (!entry) {
    process.stderr.write(`oml-chains: unknown command '${name}'\n\n${usage}\n`)
    return 2
  }
  try {
    const command = await entry.load()
    return (await command.run(rest)) ?? 0
  } catch (err) {
    if (err instanceof HelpRequested) {
      process.stdout.write(`${err.text}\n`)
      return 0
    }
    process.stderr.write(`oml-chains ${name}: error: ${errorMessage(err)}\n`)
    // A stack helps only for our own bugs, not for a wrong flag or a bad key.
    if (!(err instanceof UserError) && err instanceof Error && process.env.OML_CHAINS_DEBUG) {
      process.stderr.write(`${err.stack ?? ''}\n`)
    }
    return err instanceof UsageError ? 2 : 1
  }
}

/** Resolves once everything written to `stream` so far is handed to the OS. */
const drained = (stream: NodeJS.WriteStream) =>
  new Promise<void>((resolve) => stream.write('', () => resolve()))

const code = await main(process.argv.slice(2))
await Promise.all([drained(process.stdout), drained(process.stderr)])
// The command is over: a download `run` no longer needs (ec, after an earlier
// phase failed) must not hold the process until it gives up.
process.exit(code)
