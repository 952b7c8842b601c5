/**
 * The GitHub workflows in .github/workflows. Real actionlint, with shellcheck
 * on every `run:` script, finds nothing; and our own rules hold: third-party
 * actions pinned to a commit with its version in a comment, explicit
 * least-privilege permissions on every workflow and job, no `${{ }}` spliced
 * into a script, and the e2e job runs this repository's action (`uses: ./`).
 */
import { execFile } from 'node:child_process'
import { accessSync, constants, readdirSync, readFileSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { isScalar, parseDocument, visit } from 'yaml'
import { repoRoot, toolPath } from './harness/tools.js'

const workflowsDir = path.join(repoRoot, '.github', 'workflows')

/** The workflows the project ships; others may be added next to them. */
const EXPECTED = ['ci.yml', 'e2e.yml', 'release.yml']

/**
 * The only write scopes any job gets, by workflow file and job id, each with
 * why it needs it. Everything else reads at most.
 */
const ALLOWED_WRITES: Readonly<Record<string, Readonly<Record<string, readonly string[]>>>> = {
  // Pushes the trainer image to ghcr.io, the release branch and the major tag.
  'release.yml': { publish: ['contents', 'packages'] },
}

interface Step {
  name?: string
  uses?: string
  run?: string
  with?: Record<string, unknown>
}

interface Job {
  permissions?: unknown
  'timeout-minutes'?: unknown
  uses?: string
  steps?: Step[]
}

interface Workflow {
  permissions?: unknown
  jobs?: Record<string, Job>
}

/** One `uses:` as written: its value and the rest of its line (the comment). */
interface UsesLine {
  value: string
  rest: string
}

interface ParsedWorkflow {
  file: string
  workflow: Workflow
  uses: UsesLine[]
}

function load(file: string): ParsedWorkflow {
  const text = readFileSync(path.join(workflowsDir, file), 'utf8')
  const doc = parseDocument(text)
  if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors.map(String).join('; ')}`)
  const uses: UsesLine[] = []
  visit(doc, {
    Pair(_, pair) {
      if (!isScalar(pair.key) || pair.key.value !== 'uses' || !isScalar(pair.value)) return
      const end = pair.value.range?.[1] ?? text.length
      const eol = text.indexOf('\n', end)
      uses.push({
        value: String(pair.value.value),
        rest: text.slice(end, eol < 0 ? undefined : eol),
      })
    },
  })
  return { file, workflow: doc.toJS() as Workflow, uses }
}

const files = readdirSync(workflowsDir)
  .filter((name) => /\.ya?ml$/.test(name))
  .sort()
const workflows = files.map(load)

function jobsOf(parsed: ParsedWorkflow): [string, Job][] {
  return Object.entries(parsed.workflow.jobs ?? {})
}

interface Run {
  code: number
  stdout: string
  stderr: string
}

function run(file: string, args: string[], cwd: string): Promise<Run> {
  return new Promise((resolve) => {
    execFile(file, args, { cwd }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0
      resolve({ code, stdout, stderr })
    })
  })
}

/**
 * shellcheck from PATH: actionlint silently skips the script checks without
 * it, so a missing one fails here, with how to install it.
 */
function shellcheckPath(): string {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue
    const file = path.join(dir, 'shellcheck')
    try {
      accessSync(file, constants.X_OK)
      return file
    } catch {
      // not in this folder
    }
  }
  throw new Error(
    'shellcheck is not on PATH: run `npm run test-tools` (scripts/test-tools.sh installs it with apt-get as root) or install the shellcheck package',
  )
}

function actionlint(args: string[], cwd = repoRoot): Promise<Run> {
  return run(toolPath('actionlint'), ['-no-color', '-shellcheck', shellcheckPath(), ...args], cwd)
}

describe('GitHub workflows', () => {
  it('are the ones the project ships', () => {
    expect(files).toEqual(expect.arrayContaining(EXPECTED))
  })

  it('pass actionlint, shellcheck included', async () => {
    const result = await actionlint(files.map((file) => path.join('.github', 'workflows', file)))
    expect(result.stdout + result.stderr).toBe('')
    expect(result.code).toBe(0)
  })

  it('are checked by an actionlint that does run shellcheck and flags script injection', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'actionlint-'))
    try {
      const file = path.join(dir, 'bad.yml')
      await writeFile(
        file,
        [
          'on: pull_request',
          'permissions: {}',
          'jobs:',
          '  bad:',
          '    runs-on: ubuntu-latest',
          '    steps:',
          '      - run: echo ${{ github.event.pull_request.title }}',
          '      - run: echo $HOME/*',
          '',
        ].join('\n'),
      )
      const result = await actionlint([file], dir)
      expect(result.code).toBe(1)
      expect(result.stdout).toContain('[expression]')
      expect(result.stdout).toContain('SC2086')
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  describe.each(workflows.map((parsed) => [parsed.file, parsed] as const))('%s', (file, parsed) => {
    it('pins every third-party action to a commit, with its version in a comment', () => {
      expect(parsed.uses.length).toBeGreaterThan(0)
      for (const { value, rest } of parsed.uses) {
        if (value.startsWith('./')) continue
        if (value.startsWith('docker://')) {
          expect(value, `${file}: ${value}`).toMatch(/@sha256:[0-9a-f]{64}$/)
          continue
        }
        expect(value, `${file}: uses ${value}`).toMatch(
          /^[\w.-]+\/[\w.-]+(\/[^@\s]+)?@[0-9a-f]{40}$/,
        )
        expect(rest, `${file}: uses ${value} has no "# vX.Y.Z" comment`).toMatch(
          /^\s+# v\d+\.\d+\.\d+\s*$/,
        )
      }
    })

    it('sets least-privilege permissions on the workflow and on every job', () => {
      const level = (where: string, permissions: unknown): Record<string, string> => {
        // A string (read-all, write-all) grants every scope at once.
        expect(permissions, `${where}: permissions must list scopes`).toBeTypeOf('object')
        expect(permissions, `${where}: permissions must list scopes`).not.toBeNull()
        const scopes = permissions as Record<string, unknown>
        for (const [scope, access] of Object.entries(scopes)) {
          expect(['read', 'write', 'none'], `${where}: ${scope}: ${String(access)}`).toContain(
            access,
          )
        }
        return scopes as Record<string, string>
      }
      const top = level(`${file} (workflow)`, parsed.workflow.permissions)
      const topWrites = Object.keys(top).filter((scope) => top[scope] === 'write')
      expect(topWrites, `${file}: write scopes belong on the job that needs them`).toEqual([])

      const jobs = jobsOf(parsed)
      expect(jobs.length).toBeGreaterThan(0)
      for (const [id, job] of jobs) {
        const scopes = level(`${file} job ${id}`, job.permissions)
        const writes = Object.keys(scopes).filter((scope) => scopes[scope] === 'write')
        const allowed = ALLOWED_WRITES[file]?.[id] ?? []
        expect(
          writes.filter((scope) => !allowed.includes(scope)),
          `${file} job ${id}: write scopes not in ALLOWED_WRITES`,
        ).toEqual([])
      }
    })

    it('passes expressions to scripts through env, never into their text', () => {
      for (const [id, job] of jobsOf(parsed)) {
        for (const step of job.steps ?? []) {
          if (step.run === undefined) continue
          expect(step.run, `${file} job ${id} step ${step.name ?? '(unnamed)'}`).not.toContain(
            '${{',
          )
        }
      }
    })

    it('bounds every job in time and keeps the token out of checkouts that do not push', () => {
      for (const [id, job] of jobsOf(parsed)) {
        if (job.uses) continue // a reusable workflow sets its own
        expect(job['timeout-minutes'], `${file} job ${id}: timeout-minutes`).toBeTypeOf('number')
        const pushes = (job.permissions as Record<string, string>).contents === 'write'
        for (const step of job.steps ?? []) {
          if (!step.uses?.startsWith('actions/checkout@') || pushes) continue
          expect(step.with?.['persist-credentials'], `${file} job ${id}: checkout`).toBe(false)
        }
      }
    })
  })

  it('pins each action to one commit and one version across all workflows', () => {
    const pins = new Map<string, Set<string>>()
    for (const { uses } of workflows) {
      for (const { value, rest } of uses) {
        const match = /^([\w.-]+\/[\w.-]+)(?:\/[^@\s]+)?@([0-9a-f]{40})$/.exec(value)
        if (!match) continue
        const [, repo = '', commit = ''] = match
        const pin = `${commit}${rest.trim() ? ` ${rest.trim()}` : ''}`
        pins.set(repo, (pins.get(repo) ?? new Set()).add(pin))
      }
    }
    for (const [repo, seen] of pins) expect([...seen], repo).toHaveLength(1)
  })

  it('runs this repository action in every e2e job, as a new user would: no trainer-image', () => {
    const e2e = workflows.find((parsed) => parsed.file === 'e2e.yml')
    expect(e2e).toBeDefined()
    const jobs = e2e ? jobsOf(e2e) : []
    expect(jobs.length).toBeGreaterThan(0)
    for (const [id, job] of jobs) {
      const action = (job.steps ?? []).find((step) => step.uses === './')
      expect(action, `e2e.yml job ${id}: no step uses ./`).toBeDefined()
      expect(action?.with?.['dataset'], `e2e.yml job ${id}: dataset`).toBeTruthy()
      // The action builds the trainer from its own Containerfile: the first-run path.
      expect(action?.with?.['trainer-image'], `e2e.yml job ${id}: trainer-image`).toBeUndefined()
    }
  })
})
