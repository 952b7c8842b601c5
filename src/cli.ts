#!/usr/bin/env node
import { HelpRequested, UsageError, type Command } from './cli/args.js'
import { keyCheck } from './cli/key-check.js'
import { keygen } from './cli/keygen.js'
import { provenance } from './cli/provenance.js'
import { run } from './cli/run.js'
import { errorMessage, UserError } from './errors.js'

const commands: Command[] = [run, keygen, keyCheck, provenance]

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
  const command = commands.find((c) => c.name === name)
  if (!command) {
    process.stderr.write(`oml-chains: unknown command '${name}'\n\n${usage}\n`)
    return 2
  }
  try {
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
