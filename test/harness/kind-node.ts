/**
 * The real kind binary (built by test-tools) on the real Docker engine, with
 * a stand-in for its node image (standins/kind-node-docker.sh): kind creates
 * real, labelled node containers on its real network, sees them boot, and
 * then waits for the first command it runs in them, which never answers. For
 * the runs that are stopped while kind creates the cluster: the one moment of
 * the kind path that can be had here without kindest/node.
 */
import { execFileSync } from 'node:child_process'
import { copyFile, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { runnerPlatform } from '../../src/tools/platform.js'
import * as versions from '../../src/versions.js'
import { docker } from './docker.js'
import { repoRoot, toolPath } from './tools.js'

export interface KindWithStandInNode {
  /** Environment for a process that runs kind: PATH, the tool cache holding kind, the stand-in's settings. */
  env: Record<string, string>
  /** The names of the node containers of `cluster`, running or not. */
  nodes(cluster: string): Promise<string[]>
  /** Removes the tool cache and, with kind, any cluster a test left. */
  stop(clusters: string[]): Promise<void>
}

/** `image` is a local image with `sleep` (the trainer base image, say). */
export async function kindWithStandInNode(image: string): Promise<KindWithStandInNode> {
  const dir = await mkdtemp(path.join(tmpdir(), 'oml-kind-node-'))
  const bin = path.join(dir, 'bin')
  await mkdir(bin)
  await symlink(
    path.join(repoRoot, 'test/harness/standins/kind-node-docker.sh'),
    path.join(bin, 'docker'),
  )
  // Where installKind finds it, as @actions/tool-cache lays a cached tool out.
  const toolCache = path.join(dir, 'tool-cache')
  const version = versions.kind.version.replace(/^v/, '')
  const kindDir = path.join(toolCache, 'kind', version, runnerPlatform().arch)
  await mkdir(kindDir, { recursive: true })
  await copyFile(toolPath('kind'), path.join(kindDir, 'kind'))
  await writeFile(`${kindDir}.complete`, '')
  const realDocker = execFileSync('sh', ['-c', 'command -v docker'], { encoding: 'utf8' }).trim()

  const nodes = async (cluster: string): Promise<string[]> => {
    const listed = await docker([
      'ps',
      '--all',
      '--filter',
      `label=io.x-k8s.kind.cluster=${cluster}`,
      '--format',
      '{{.Names}}',
    ])
    return listed.stdout.split('\n').filter(Boolean)
  }
  return {
    env: {
      PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}`,
      RUNNER_TOOL_CACHE: toolCache,
      REAL_DOCKER: realDocker,
      KIND_NODE_STAND_IN: image,
    },
    nodes,
    async stop(clusters) {
      for (const cluster of clusters) {
        const left = await nodes(cluster)
        if (left.length) await docker(['rm', '--force', '--volumes', ...left])
      }
      await rm(dir, { recursive: true, force: true })
    },
  }
}
