/**
 * A TaskRun's steps run as local processes, one after the other, in place of
 * their containers: the step's image is not run, its output is the
 * container's log in the kubelet stand-in, and the Pod's container states
 * follow the processes.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { chmod, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { repoRoot, toolPath } from '../tools.js'
import type { KubeletStandIn } from './kubelet.js'
import { RESULTS_DIR, type TaskSpec } from './tekton-specs.js'
import { imageIdOf, now, setPodStatus, type Kube } from './tekton-status.js'

export interface StepsContext {
  kube: Kube
  kubelet: KubeletStandIn
  /** Maps a step's command (after substitution) to a local one. */
  resolveCommand?: (argv: string[]) => string[]
  children: Set<ChildProcess>
}

/** `python /app/train.py ...` (the trainer image's program) -> the test Python and the repo's trainer. */
export function defaultResolveCommand(argv: string[]): string[] {
  const [program, script, ...rest] = argv
  if (program === 'python' && script === '/app/train.py') {
    return [toolPath('python3'), path.join(repoRoot, 'trainer', 'train.py'), ...rest]
  }
  return argv
}

export interface TaskOutcome {
  /** The failure message, when a step failed. */
  failed?: string
  results: { name: string; type: string; value: unknown }[]
  /** `status.steps` of the TaskRun, as Tekton writes them. */
  steps: unknown[]
}

/** Runs the steps of a resolved Task (see `resolveTaskSpec`) in the Pod `podName`. */
export async function runTask(
  ctx: StepsContext,
  namespace: string,
  podName: string,
  task: TaskSpec,
): Promise<TaskOutcome> {
  const { kube, kubelet } = ctx
  const resultsDir = await mkdtemp(path.join(tmpdir(), 'tekton-results-'))
  // The results volume is a temp dir here.
  const local = (text: string) => text.replaceAll(RESULTS_DIR, resultsDir)
  const states: Record<string, object> = {}
  const steps: unknown[] = []
  try {
    for (const step of task.steps) {
      const container = `step-${step.name}`
      const startedAt = now()
      states[container] = { running: { startedAt } }
      await setPodStatus(kube, namespace, podName, 'Running', task.steps, states)
      let argv: string[]
      if (step.script) {
        const file = path.join(resultsDir, `.script-${step.name}`)
        const body = local(step.script)
        await writeFile(file, body.startsWith('#!') ? body : `#!/bin/sh\nset -e\n${body}`)
        await chmod(file, 0o700)
        argv = [file]
      } else {
        argv = (ctx.resolveCommand ?? defaultResolveCommand)(
          [...(step.command ?? []), ...(step.args ?? [])].map(local),
        )
      }
      const env: Record<string, string> = {}
      for (const e of step.env ?? []) env[e.name] = local(e.value ?? '')
      kubelet.start(namespace, podName, container)
      const exitCode = await runProcess(ctx, argv, env, (text) =>
        kubelet.write(namespace, podName, container, text),
      )
      kubelet.end(namespace, podName, container)
      const reason = exitCode === 0 ? 'Completed' : 'Error'
      const terminated = { exitCode, reason, startedAt, finishedAt: now() }
      states[container] = { terminated }
      steps.push({
        terminated,
        name: step.name,
        container,
        imageID: imageIdOf(step.image ?? ''),
        terminationReason: reason,
      })
      if (exitCode !== 0) {
        await setPodStatus(kube, namespace, podName, 'Failed', task.steps, states)
        return { failed: `"${container}" exited with code ${exitCode}`, results: [], steps }
      }
    }
    await setPodStatus(kube, namespace, podName, 'Succeeded', task.steps, states)
    const results: TaskOutcome['results'] = []
    const present = new Set(await readdir(resultsDir))
    for (const r of task.results ?? []) {
      if (!present.has(r.name)) continue
      const text = await readFile(path.join(resultsDir, r.name), 'utf8')
      const type = r.type ?? 'string'
      results.push({ name: r.name, type, value: type === 'string' ? text : JSON.parse(text) })
    }
    return { results, steps }
  } finally {
    await rm(resultsDir, { recursive: true, force: true })
  }
}

function runProcess(
  ctx: StepsContext,
  argv: string[],
  env: Record<string, string>,
  output: (text: string) => void,
): Promise<number> {
  return new Promise((resolve) => {
    const [file, ...args] = argv
    const child = spawn(file!, args, {
      env: { ...process.env, PYTHONUNBUFFERED: '1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    ctx.children.add(child)
    for (const stream of [child.stdout, child.stderr]) {
      stream.setEncoding('utf8')
      stream.on('data', output)
    }
    child.once('error', (err) => {
      output(`stand-in could not start ${file}: ${err.message}\n`)
      resolve(127)
    })
    child.once('close', (code) => {
      ctx.children.delete(child)
      resolve(code ?? 137)
    })
  })
}
