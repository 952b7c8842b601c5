import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { toolPath } from '../../../test/harness/tools.js'
import * as versions from '../../versions.js'
import { recorder } from '../../../test/harness/commands.js'
import { CommandError, commandRunner } from '../exec.js'
import { Kind } from './cluster.js'
import { kindClusterConfig } from './config.js'

describe('Kind (argv)', () => {
  it('creates a cluster from a config file without waiting, keeping the nodes of a failed one, its progress in the log', async () => {
    const r = recorder()
    await new Kind('/tools/kind', r.run).createCluster('oml-chains', '/tmp/kind-oml-chains.yaml')
    expect(r.argv()).toEqual([
      [
        '/tools/kind',
        'create',
        'cluster',
        '--name',
        'oml-chains',
        '--config',
        '/tmp/kind-oml-chains.yaml',
        '--wait',
        '0s',
        '--retain',
      ],
    ])
    expect(r.commands[0]?.silent).toBe(false)
  })

  it('gets the kubeconfig silently: it holds a client key', async () => {
    const r = recorder(() => ({ stdout: 'apiVersion: v1\n' }))
    expect(await new Kind('kind', r.run).kubeconfig('oml-chains')).toBe('apiVersion: v1\n')
    expect(r.argv()).toEqual([['kind', 'get', 'kubeconfig', '--name', 'oml-chains']])
    expect(r.commands[0]?.silent).toBe(true)
  })

  it('lists clusters and nodes, one per line', async () => {
    const r = recorder((c) => ({
      stdout: c.args[1] === 'clusters' ? 'a\noml-chains\n' : 'oml-chains-control-plane\n',
    }))
    const kind = new Kind('kind', r.run)
    expect(await kind.clusters()).toEqual(['a', 'oml-chains'])
    expect(await kind.nodes('oml-chains')).toEqual(['oml-chains-control-plane'])
    expect(r.argv()).toEqual([
      ['kind', 'get', 'clusters'],
      ['kind', 'get', 'nodes', '--name', 'oml-chains'],
    ])
  })

  it('deletes a cluster by name', async () => {
    const r = recorder()
    await new Kind('kind', r.run).deleteCluster('oml-chains')
    expect(r.argv()).toEqual([['kind', 'delete', 'cluster', '--name', 'oml-chains']])
  })

  it("fails with the command and kind's last words", async () => {
    const r = recorder(() => ({
      exitCode: 1,
      stderr:
        'ERROR: failed to create cluster: node(s) already exist for a cluster with the name "x"',
    }))
    const failure = new Kind('kind', r.run).createCluster('x', '/tmp/c.yaml')
    await expect(failure).rejects.toBeInstanceOf(CommandError)
    await expect(failure).rejects.toThrow(
      '`kind create cluster --name x --config /tmp/c.yaml --wait 0s --retain` failed (exit 1): ERROR: failed to create cluster: node(s) already exist',
    )
  })
})

/**
 * The real kind v0.32.0 binary (built by test-tools) against a stand-in
 * `docker` on PATH: there is no Docker engine here. The stand-in answers what
 * kind asks before it would start containers (`-v`, `info`, `ps`), says an
 * image is present, and fails everything else; it logs every call. So these
 * tests show that kind accepts our argv and (strictly) decodes and validates
 * our config, and that we read its real output.
 */
describe('Kind (real kind, stand-in docker)', () => {
  let dir: string
  let log: string
  let run: ReturnType<typeof commandRunner>

  const fakeDocker = `#!/bin/sh
printf '%s\\n' "$*" >> "$FAKE_DOCKER_LOG"
case "$1" in
  -v) echo "Docker version 99.0.0, build stand-in"; exit 0 ;;
  info) echo '{"CgroupDriver":"systemd","CgroupVersion":"2","MemoryLimit":true,"PidsLimit":true,"CPUShares":true}'; exit 0 ;;
  ps)
    for arg in "$@"; do
      case "$arg" in
        label=io.x-k8s.kind.cluster=*)
          name="\${arg#label=io.x-k8s.kind.cluster=}"
          for c in $FAKE_KIND_CLUSTERS; do [ "$c" = "$name" ] && echo "$c-control-plane"; done
          exit 0 ;;
        label=io.x-k8s.kind.cluster)
          for c in $FAKE_KIND_CLUSTERS; do echo "$c"; done
          exit 0 ;;
      esac
    done
    exit 0 ;;
  inspect) [ "$2" = "--type=image" ] && exit 0 ;;
esac
echo "stand-in docker: no engine here" >&2
exit 1
`

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'oml-kind-'))
    log = path.join(dir, 'docker.log')
    await writeFile(path.join(dir, 'docker'), fakeDocker)
    await chmod(path.join(dir, 'docker'), 0o755)
    await writeFile(log, '')
    run = commandRunner({
      env: {
        PATH: `${dir}:${process.env.PATH ?? ''}`,
        HOME: dir,
        FAKE_DOCKER_LOG: log,
        FAKE_KIND_CLUSTERS: 'other oml-chains',
      },
    })
  })

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  const dockerCalls = async (): Promise<string[]> =>
    (await readFile(log, 'utf8')).split('\n').filter(Boolean)

  it('reads the cluster list and the node list kind prints', async () => {
    const kind = new Kind(toolPath('kind'), run)
    expect(await kind.clusters()).toEqual(['oml-chains', 'other'])
    expect(await kind.nodes('oml-chains')).toEqual(['oml-chains-control-plane'])
    expect(await kind.nodes('absent')).toEqual([])
  })

  it('accepts our create argv and config, and goes on to the pinned node image', async () => {
    const nodeImage = versions.kindNodeImages[versions.kubernetesVersion]!
    const config = path.join(dir, 'kind.yaml')
    await writeFile(config, kindClusterConfig({ name: 'fresh', nodeImage }))

    const failure = new Kind(toolPath('kind'), run).createCluster('fresh', config)

    // It gets past decoding and validation to the first thing that needs an engine.
    await expect(failure).rejects.toThrow(/network/)
    const calls = await dockerCalls()
    expect(calls).toContain('ps -a --filter label=io.x-k8s.kind.cluster=fresh --format {{.Names}}')
    expect(calls).toContain(`inspect --type=image ${nodeImage}`)
  })

  it('stops before any image for a config it cannot decode (the check above means something)', async () => {
    const config = path.join(dir, 'kind.yaml')
    const good = kindClusterConfig({
      name: 'fresh',
      nodeImage: 'kindest/node:v1@sha256:' + 'a'.repeat(64),
    })
    await writeFile(config, good.replace('containerdConfigPatches', 'containerdConfigPatch'))

    const failure = new Kind(toolPath('kind'), run).createCluster('fresh', config)

    await expect(failure).rejects.toThrow(/unable to decode config/)
    expect((await dockerCalls()).some((c) => c.startsWith('inspect'))).toBe(false)
  })
})
