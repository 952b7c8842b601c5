/**
 * The docker commands the embedded registry needs, over one injectable
 * command runner: the action runs them with `@actions/exec`, tests record the
 * argv without a Docker engine.
 */
import path from 'node:path/posix'
import { UserError } from '../errors.js'
import { isRecord, parseJson } from '../json.js'
import * as versions from '../versions.js'
import {
  CommandError,
  execRunner,
  runChecked,
  type Command,
  type CommandResult,
  type CommandRunner,
} from './exec.js'

/**
 * The registry the action starts, pinned by digest: distribution v3.1.1's
 * multi-platform index (`registry:3.1.1`, also tagged `registry:3`).
 */
export const REGISTRY_IMAGE = versions.registryImage

/** What the action needs to know about a container. */
export interface ContainerInfo {
  name: string
  running: boolean
  /** `running`, `exited`, `created`, ... */
  status: string
  /** The image as it was asked for (`Config.Image`). */
  image: string
  /** Networks it is attached to, with its aliases on each. */
  networks: Record<string, { aliases: string[] }>
  /**
   * Its published ports as created (`HostConfig.PortBindings`, kept while it
   * is stopped), by container port: `{ '5000/tcp': [{ hostIp: '127.0.0.1', hostPort: '5000' }] }`.
   */
  ports: Record<string, { hostIp: string; hostPort: string }[]>
}

export interface RegistryContainerSpec {
  name: string
  image: string
  /** Host address the port is published on; 127.0.0.1 keeps it off other interfaces and off IPv6. */
  hostAddress: string
  hostPort: number
}

const NO_SUCH = /no such (container|object|image)/i

/** Docker's words when a port to publish is held: by a container, or by another program. */
export const PORT_TAKEN = /port is already allocated|address already in use/i

/** How much of a failed build's output its error shows: enough for a pip or RUN error. */
const BUILD_TAIL_LINES = 25

export interface ImageBuildSpec {
  /** The build context folder. */
  context: string
  /** The Containerfile, absolute (docker resolves a relative one against its working directory). */
  file: string
  tag: string
  /** `--build-arg NAME=VALUE` pairs; never secrets (they stay in the image's history). */
  buildArgs?: Record<string, string>
  /** Epoch ms by which the build must be done; it is stopped then. */
  deadline?: number
}

/** What a command that must end by `deadline` is given: the time left. */
function timeLeft(deadline: number | undefined): number | undefined {
  return deadline === undefined ? undefined : Math.max(0, deadline - Date.now())
}

export class Docker {
  constructor(
    private readonly run: CommandRunner = execRunner,
    private readonly file = 'docker',
  ) {}

  private command(args: string[], extra: Partial<Command> = {}): Command {
    return { file: this.file, args, ...extra }
  }

  /** The container's state, or undefined when there is none of that name. */
  async inspectContainer(name: string): Promise<ContainerInfo | undefined> {
    const command = this.command(['container', 'inspect', name], { silent: true })
    const result = await this.run(command)
    if (result.exitCode !== 0) {
      if (NO_SUCH.test(result.stderr)) return undefined
      throw new CommandError(command, result)
    }
    return parseInspect(name, result.stdout)
  }

  /**
   * Starts the registry detached, restarted with the Docker daemon, its port
   * published on `hostAddress` only. Tracing is off: distribution v3 otherwise
   * logs a failed export to localhost:4318 every few seconds.
   */
  async runRegistry(spec: RegistryContainerSpec): Promise<void> {
    await runChecked(
      this.run,
      this.command([
        'run',
        '--detach',
        '--restart=always',
        '--publish',
        `${spec.hostAddress}:${spec.hostPort}:5000`,
        '--env',
        'OTEL_TRACES_EXPORTER=none',
        '--name',
        spec.name,
        spec.image,
      ]),
    )
  }

  async startContainer(name: string): Promise<void> {
    await runChecked(this.run, this.command(['container', 'start', name]))
  }

  /** Attaches a container to a network under an extra DNS name. */
  async connectNetwork(network: string, container: string, alias: string): Promise<void> {
    await runChecked(
      this.run,
      this.command(['network', 'connect', '--alias', alias, network, container]),
    )
  }

  async disconnectNetwork(network: string, container: string): Promise<void> {
    await runChecked(this.run, this.command(['network', 'disconnect', network, container]))
  }

  /** Runs a program in a container; the result is returned whatever the exit code. */
  async exec(container: string, args: string[], input?: string): Promise<CommandResult> {
    return this.run(
      this.command(
        ['exec', ...(input === undefined ? [] : ['--interactive']), container, ...args],
        {
          input,
          silent: true,
        },
      ),
    )
  }

  /**
   * Writes a file in a container, creating its directory. The content goes
   * through stdin and the path as a positional argument of the shell, so
   * neither is parsed by a shell on the way.
   */
  async writeFile(container: string, file: string, content: string): Promise<void> {
    if (!path.isAbsolute(file)) throw new Error(`writeFile needs an absolute path, got ${file}`)
    const command = this.command(
      [
        'exec',
        '--interactive',
        container,
        'sh',
        '-c',
        'mkdir -p "$(dirname "$1")" && cat > "$1"',
        'sh',
        file,
      ],
      { input: content, silent: true },
    )
    await runChecked(this.run, command)
  }

  /** Whether the Docker engine holds an image of that reference (built or pulled on the runner). */
  hasImage(reference: string): Promise<boolean> {
    return this.onNamed(['image', 'inspect', '--format', '{{.Id}}', reference])
  }

  /**
   * Builds an image from `spec.context`. The build's output stays out of the
   * log (it interleaves with phases running side by side); a failed build's
   * error carries its last lines.
   */
  async buildImage(spec: ImageBuildSpec): Promise<void> {
    const args = ['image', 'build', '--file', spec.file, '--tag', spec.tag]
    for (const [name, value] of Object.entries(spec.buildArgs ?? {})) {
      args.push('--build-arg', `${name}=${value}`)
    }
    const command = this.command([...args, spec.context], {
      silent: true,
      timeoutMs: timeLeft(spec.deadline),
    })
    const result = await this.run(command)
    if (result.timedOut) {
      throw new UserError(
        `building ${spec.tag} did not finish by the run's deadline (the timeout input) and was stopped`,
      )
    }
    if (result.exitCode !== 0) {
      // The legacy builder prints a failing RUN's output on stdout and only
      // "returned a non-zero code" on stderr; BuildKit prints both on stderr.
      const both = { ...result, stderr: `${result.stdout.trim()}\n${result.stderr.trim()}` }
      throw new CommandError(command, both, BUILD_TAIL_LINES)
    }
  }

  async tagImage(source: string, target: string): Promise<void> {
    await runChecked(this.run, this.command(['image', 'tag', source, target]))
  }

  async pushImage(reference: string, deadline?: number): Promise<void> {
    const command = this.command(['image', 'push', reference], { timeoutMs: timeLeft(deadline) })
    const result = await this.run(command)
    if (result.timedOut) {
      throw new UserError(
        `pushing ${reference} did not finish by the run's deadline (the timeout input) and was stopped`,
      )
    }
    if (result.exitCode !== 0) throw new CommandError(command, result)
  }

  /** Removes an image tag (the image goes with its last tag); false when there was none. */
  removeImage(reference: string): Promise<boolean> {
    return this.onNamed(['image', 'rm', reference])
  }

  /** Removes a container, running or not; false when there was none. */
  removeContainer(name: string): Promise<boolean> {
    return this.onNamed(['container', 'rm', '--force', name])
  }

  /** Runs a command on a named image or container: true when it succeeded, false when there is none. */
  private async onNamed(args: string[]): Promise<boolean> {
    const command = this.command(args, { silent: true })
    const result = await this.run(command)
    if (result.exitCode === 0) return true
    if (NO_SUCH.test(result.stderr)) return false
    throw new CommandError(command, result)
  }
}

/** Reads the fields we use from `docker container inspect` (a JSON array of one). */
export function parseInspect(name: string, stdout: string): ContainerInfo {
  const fail = (reason: string): Error =>
    new UserError(`docker container inspect ${name} gave an unexpected answer: ${reason}`)
  const parsed = parseJson(stdout, fail)
  const item: unknown = Array.isArray(parsed) ? parsed[0] : undefined
  if (!isRecord(item)) throw fail('not an array of one container')
  const state = isRecord(item.State) ? item.State : {}
  const config = isRecord(item.Config) ? item.Config : {}
  const settings = isRecord(item.NetworkSettings) ? item.NetworkSettings : {}
  const networks: ContainerInfo['networks'] = {}
  if (isRecord(settings.Networks)) {
    for (const [network, value] of Object.entries(settings.Networks)) {
      const aliases = isRecord(value) && Array.isArray(value.Aliases) ? value.Aliases : []
      networks[network] = { aliases: aliases.filter((a): a is string => typeof a === 'string') }
    }
  }
  const host = isRecord(item.HostConfig) ? item.HostConfig : {}
  const ports: ContainerInfo['ports'] = {}
  if (isRecord(host.PortBindings)) {
    for (const [port, bindings] of Object.entries(host.PortBindings)) {
      ports[port] = (Array.isArray(bindings) ? bindings : []).filter(isRecord).map((b) => ({
        hostIp: typeof b.HostIp === 'string' ? b.HostIp : '',
        hostPort: typeof b.HostPort === 'string' ? b.HostPort : '',
      }))
    }
  }
  return {
    name,
    running: state.Running === true,
    status: typeof state.Status === 'string' ? state.Status : 'unknown',
    image: typeof config.Image === 'string' ? config.Image : '',
    networks,
    ports,
  }
}
