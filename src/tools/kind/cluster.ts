/**
 * The kind commands a run uses, over the same injectable command runner as
 * the docker wrapper.
 */
import { execRunner, runChecked, type CommandRunner } from '../exec.js'

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
   * Its progress stays in the log.
   */
  async createCluster(name: string, configPath: string): Promise<void> {
    await this.call(
      ['create', 'cluster', '--name', name, '--config', configPath, '--wait', '0s', '--retain'],
      false,
    )
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
