/**
 * The kind commands a run uses, over the same injectable command runner as
 * the docker wrapper.
 */
import { UserError } from '../../errors.js'
import { CommandError, execRunner, runChecked, type CommandRunner } from '../exec.js'

export class Kind {
  constructor(
    /** Path of the kind binary (from installKind). */
    private readonly binary: string,
    private readonly run: CommandRunner = execRunner,
  ) {}

  private call(args: string[], silent: boolean): Promise<string> {
    return runChecked(this.run, { file: this.binary, args, silent })
  }

  /** Names of the kind clusters on this Docker engine. */
  async clusters(): Promise<string[]> {
    // With none, kind prints "No kind clusters found." on stderr and nothing on stdout.
    return lines(await this.call(['get', 'clusters'], true))
  }

  /**
   * Creates a cluster from a config file. `--wait 0s`: the action waits on the
   * API itself, for the things it needs, with its own deadline and messages.
   * `--retain`: a failed creation leaves its node containers for the job's
   * diagnostics; the post step deletes them (the cluster is recorded first).
   * Its progress stays in the log. Stopped at `deadline` (epoch ms) if it is
   * still running then: a node that never boots would keep it waiting.
   */
  async createCluster(name: string, configPath: string, deadline?: number): Promise<void> {
    const command = {
      file: this.binary,
      args: [
        'create',
        'cluster',
        '--name',
        name,
        '--config',
        configPath,
        '--wait',
        '0s',
        '--retain',
      ],
      silent: false,
      timeoutMs: deadline === undefined ? undefined : Math.max(0, deadline - Date.now()),
    }
    const result = await this.run(command)
    if (result.timedOut) {
      const last = result.stderr.trim().split('\n').pop()?.trim()
      throw new UserError(
        `\`kind create cluster --name ${name}\` did not finish by the run's deadline (the timeout input) and was stopped${last ? `; kind's last words: ${last}` : ''}`,
      )
    }
    if (result.exitCode !== 0) throw new CommandError(command, result)
  }

  /** The cluster's kubeconfig (its API on 127.0.0.1). Holds a client key: never logged. */
  async kubeconfig(name: string): Promise<string> {
    return this.call(['get', 'kubeconfig', '--name', name], true)
  }

  /** Names of the cluster's node containers. */
  async nodes(name: string): Promise<string[]> {
    return lines(await this.call(['get', 'nodes', '--name', name], true))
  }

  /** Deletes the cluster (its node containers and its kubeconfig entry). */
  async deleteCluster(name: string): Promise<void> {
    await this.call(['delete', 'cluster', '--name', name], false)
  }
}

function lines(text: string): string[] {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '')
}
