import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { commandRunner } from '../../../src/tools/exec.js'
import { validateImage } from '../../../src/tools/ec/validate.js'
import { repoRoot } from '../tools.js'

// The ec stand-in itself: it must take the command line the action builds,
// as ec reads it, refuse what ec would refuse, and replay only ec's own
// reports with ec's exit code.

const standIn = path.join(repoRoot, 'test/harness/standins/ec.mjs')
const fixtures = path.join(repoRoot, 'test/fixtures/ec')
const image = `127.0.0.1:5000/models/iris@sha256:${'ab'.repeat(32)}`

let dir: string
let publicKey: string
let policy: string

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'ec-stand-in-'))
  publicKey = path.join(dir, 'cosign.pub')
  policy = path.join(dir, 'config.yaml')
  await writeFile(publicKey, '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n')
  await writeFile(policy, 'sources:\n  - policy: [./policy/rules]\n')
})

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true })
})

/** Runs the stand-in as the action runs ec: the file itself, through its `#!`. */
function ec(
  args: string[],
  report?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const env: Record<string, string> = { PATH: process.env.PATH ?? '' }
  if (report) env.EC_STAND_IN_REPORT = report
  return new Promise((resolve) => {
    execFile(standIn, args, { env }, (err, stdout, stderr) => {
      resolve({ code: err ? Number(err.code) : 0, stdout, stderr })
    })
  })
}

const validate = (more: string[] = []) => [
  'validate',
  'image',
  '--image',
  image,
  '--public-key',
  publicKey,
  '--policy',
  policy,
  ...more,
]

describe('the ec stand-in', () => {
  it.each([
    ['happy-day.json', 'pass'],
    ['future-failure-is-a-warning.json', 'pass'],
    ['detailed-failures.json', 'fail'],
  ])(
    "takes the action's own command line and replays %s byte for byte: verdict %s",
    async (fixture, verdict) => {
      const reportPath = path.join(dir, `${fixture}.report.json`)
      const result = await validateImage({
        ec: standIn,
        image,
        publicKey,
        policy,
        reportPath,
        timeoutMs: 300_000,
        retryDelayMs: 0,
        run: commandRunner({
          env: { PATH: process.env.PATH ?? '', EC_STAND_IN_REPORT: path.join(fixtures, fixture) },
        }),
      })
      expect(result.verdict).toBe(verdict)
      // --strict=false, as the action passes it: 0 whenever a report was written.
      expect(result.exitCode).toBe(0)
      expect(result.attempts).toBe(1)
      expect(await readFile(reportPath, 'utf8')).toBe(
        await readFile(path.join(fixtures, fixture), 'utf8'),
      )
    },
  )

  it('exits 1 on a failed report unless --strict=false, as ec does', async () => {
    const report = path.join(fixtures, 'detailed-failures.json')
    const out = path.join(dir, 'strict.json')
    const strict = await ec(validate(['--output', `json=${out}`]), report)
    expect(strict.code).toBe(1)
    expect(strict.stderr.trimEnd().split('\n').pop()).toMatch(/^Error: /)
    const lenient = await ec(validate(['--output', `json=${out}`, '-s=false']), report)
    expect(lenient.code).toBe(0)
    const passed = await ec(
      validate(['--output', `json=${out}`]),
      path.join(fixtures, 'happy-day.json'),
    )
    expect(passed.code).toBe(0)
  })

  it.each([
    [['--imag', image], 'Error: unknown flag: --imag'],
    [['-x'], "Error: unknown shorthand flag: 'x' in -x"],
    [['--image'], 'Error: flag needs an argument: --image'],
    [
      ['--strict=maybe'],
      'Error: invalid argument "maybe" for "--strict" flag: strconv.ParseBool: parsing "maybe": invalid syntax',
    ],
    [
      ['--timeout', '300'],
      'Error: invalid argument "300" for "--timeout" flag: time: invalid duration "300"',
    ],
  ])('refuses %j as ec parses it: one Error line, exit 1', async (args, message) => {
    const run = await ec(['validate', 'image', ...args], path.join(fixtures, 'happy-day.json'))
    expect(run).toEqual({ code: 1, stdout: '', stderr: `${message}\n` })
  })

  it('checks what ec needs before validating: an image, a readable key and policy', async () => {
    const report = path.join(fixtures, 'happy-day.json')
    const output = ['--output', `json=${path.join(dir, 'x.json')}`]
    const noImage = await ec(['validate', 'image', ...output], report)
    expect(noImage).toMatchObject({
      code: 1,
      stderr: 'Error: no image to validate: --image is missing\n',
    })
    const missing = path.join(dir, 'missing.pub')
    const noKey = await ec(validate([...output, '--public-key', missing]), report)
    expect(noKey.code).toBe(1)
    expect(noKey.stderr).toMatch(new RegExp(`^Error: public key ${missing} cannot be read: ENOENT`))
    const notAKey = await ec(validate([...output, '--public-key', policy]), report)
    expect(notAKey).toMatchObject({
      code: 1,
      stderr: `Error: public key ${policy} is not a PEM public key\n`,
    })
  })

  it("replays only ec's own reports, and plays no flag the action does not pass", async () => {
    const output = ['--output', `json=${path.join(dir, 'y.json')}`]
    const elsewhere = path.join(dir, 'made-up.json')
    await writeFile(elsewhere, '{"success": true, "components": []}\n')
    const madeUp = await ec(validate(output), elsewhere)
    expect(madeUp.code).toBe(2)
    expect(madeUp.stderr).toContain('only reports real ec printed are replayed')
    const unset = await ec(validate(output))
    expect(unset.code).toBe(2)
    expect(unset.stderr).toContain('EC_STAND_IN_REPORT is not set')
    const vsa = await ec(validate([...output, '--vsa']), path.join(fixtures, 'happy-day.json'))
    expect(vsa).toMatchObject({
      code: 2,
      stderr: 'ec stand-in: --vsa is a flag of ec the stand-in does not play\n',
    })
  })
})
