import type { Command, CommandResult } from '../../src/tools/exec.js'

/**
 * A command runner that records every command instead of running it (there is
 * no Docker engine here), answering from `reply` (default: success, no output).
 */
export function recorder(reply: (c: Command) => Partial<CommandResult> = () => ({})) {
  const commands: Command[] = []
  const run = async (command: Command): Promise<CommandResult> => {
    commands.push(command)
    return { exitCode: 0, stdout: '', stderr: '', ...reply(command) }
  }
  return { commands, run, argv: () => commands.map((c) => [c.file, ...c.args]) }
}
