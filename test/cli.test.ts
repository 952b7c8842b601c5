/**
 * The built `oml-chains` bundle (dist/cli/index.js), run as a user runs it: a
 * separate Node 24 process, judged by its exit code, stdout, stderr and files.
 */
import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { RegistryClient } from '../src/oci/client.js'
import {
  pushTestImage,
  signAndAttest,
  testPredicateFile,
  type PushedImage,
} from './harness/images.js'
import { startRegistry, type TestRegistry } from './harness/registry.js'
import { repoRoot } from './harness/tools.js'

const cliBundle = path.join(repoRoot, 'dist', 'cli', 'index.js')
const chainsReal = path.join(repoRoot, 'test', 'fixtures', 'chains-real')
const cosignKeys = path.join(repoRoot, 'test', 'fixtures', 'cosign-keys')
const realEnvelope = path.join(chainsReal, 'taskrun-attestation.dsse.json')
const realPub = path.join(chainsReal, 'cosign.pub')

interface CliRun {
  code: number | null
  stdout: string
  stderr: string
}

let work: string
let home: string

/**
 * Runs the bundle with a bare environment: HOME is an empty temp dir (no
 * docker config, nothing of the developer's), and no GITHUB_ACTIONS, as on a
 * terminal. Never throws; the exit code is part of the result.
 */
function cli(args: string[]): Promise<CliRun> {
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home }
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [cliBundle, ...args],
      { cwd: work, env, timeout: 60_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : null) : 0
        resolve({ code, stdout, stderr })
      },
    )
  })
}

/** A new empty directory under the temp dir. */
let dirs = 0
async function newDir(name: string): Promise<string> {
  const dir = path.join(work, `${name}-${dirs++}`)
  await mkdir(dir)
  return dir
}

/** The three files keygen writes, as bytes. */
async function readPair(dir: string): Promise<Record<string, Buffer>> {
  const names = ['cosign.key', 'cosign.pub', 'cosign.password']
  const contents = await Promise.all(names.map((name) => readFile(path.join(dir, name))))
  return Object.fromEntries(names.map((name, i) => [name, contents[i]!]))
}

/** An error a user reads: one line, prefixed, no stack trace. */
function expectOneLineError(run: CliRun, command: string): void {
  expect(run.code).toBe(1)
  expect(run.stderr).toMatch(new RegExp(`^oml-chains ${command}: error: [^\\n]+\\n$`))
  expect(run.stderr).not.toMatch(/\n\s+at /)
}

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'oml-cli-'))
  home = path.join(work, 'home')
  await mkdir(home)
})

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true })
})

describe('oml-chains keygen', () => {
  it('writes cosign.key (owner-only), cosign.pub and cosign.password', async () => {
    const out = path.join(await newDir('keygen'), 'keys') // created by keygen
    const run = await cli(['keygen', '--out', out])
    expect(run.code).toBe(0)

    const pair = await readPair(out)
    expect(pair['cosign.key']!.toString()).toMatch(
      /^-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n/,
    )
    expect(pair['cosign.pub']!.toString()).toMatch(/^-----BEGIN PUBLIC KEY-----\n/)
    // Chains' secret holds the password as raw bytes: no newline.
    expect(pair['cosign.password']!.toString()).toMatch(/^\S+$/)
    expect(run.stdout).toBe(pair['cosign.pub']!.toString())
    expect((await stat(path.join(out, 'cosign.key'))).mode & 0o777).toBe(0o600)
    expect((await stat(path.join(out, 'cosign.password'))).mode & 0o777).toBe(0o600)

    // The password it wrote opens the key it wrote.
    const check = await cli([
      'key-check',
      '--key',
      path.join(out, 'cosign.key'),
      '--password-file',
      path.join(out, 'cosign.password'),
    ])
    expect(check.code).toBe(0)
    expect(check.stdout).toBe(pair['cosign.pub']!.toString())
  })

  it('refuses to overwrite an existing key pair and leaves it as it was', async () => {
    const out = await newDir('keygen-again')
    expect((await cli(['keygen', '--out', out])).code).toBe(0)
    const before = await readPair(out)

    const again = await cli(['keygen', '--out', out])
    expectOneLineError(again, 'keygen')
    expect(again.stderr).toContain(`${path.join(out, 'cosign.key')} already exists`)
    expect(again.stdout).toBe('')
    const after = await readPair(out)
    for (const name of Object.keys(before)) expect(after[name]).toEqual(before[name])
  })

  it('leaves no half pair behind when only a later file exists', async () => {
    const out = await newDir('keygen-half')
    await writeFile(path.join(out, 'cosign.pub'), 'someone else’s public key\n')
    const run = await cli(['keygen', '--out', out])
    expectOneLineError(run, 'keygen')
    expect(run.stderr).toContain('cosign.pub already exists')
    // The key and password it had written before meeting cosign.pub are gone again.
    await expect(stat(path.join(out, 'cosign.key'))).rejects.toMatchObject({ code: 'ENOENT' })
    await expect(stat(path.join(out, 'cosign.password'))).rejects.toMatchObject({ code: 'ENOENT' })
    expect(await readFile(path.join(out, 'cosign.pub'), 'utf8')).toBe('someone else’s public key\n')
  })

  it('uses the password of --password-file', async () => {
    const dir = await newDir('keygen-password')
    const passwordFile = path.join(dir, 'my-password')
    await writeFile(passwordFile, 'my chosen password\n') // as `echo` writes it
    const out = path.join(dir, 'keys')
    expect((await cli(['keygen', '--out', out, '--password-file', passwordFile])).code).toBe(0)
    expect(await readFile(path.join(out, 'cosign.password'), 'utf8')).toBe('my chosen password')

    const check = await cli([
      'key-check',
      '--key',
      path.join(out, 'cosign.key'),
      '--password-file',
      passwordFile,
    ])
    expect(check.code).toBe(0)
    expect(check.stdout).toBe(await readFile(path.join(out, 'cosign.pub'), 'utf8'))
  })
})

describe('oml-chains key-check', () => {
  let keys: string

  beforeAll(async () => {
    keys = await newDir('key-check')
    const run = await cli(['keygen', '--out', keys])
    expect(run.code).toBe(0)
  })

  it('with the wrong password exits 1 with one line that does not show any password', async () => {
    const wrongFile = path.join(keys, 'wrong-password')
    const wrong = 'not-the-password-4711'
    await writeFile(wrongFile, wrong)
    const run = await cli([
      'key-check',
      '--key',
      path.join(keys, 'cosign.key'),
      '--password-file',
      wrongFile,
    ])
    expectOneLineError(run, 'key-check')
    expect(run.stderr).toMatch(/wrong password/)
    expect(run.stdout).toBe('')
    const right = await readFile(path.join(keys, 'cosign.password'), 'utf8')
    for (const password of [wrong, right]) expect(run.stderr).not.toContain(password)
  })

  it('opens the key real cosign made, with its raw password file', async () => {
    const run = await cli([
      'key-check',
      '--key',
      path.join(cosignKeys, 'chains-testdata-cosign.key'),
      '--password-file',
      path.join(cosignKeys, 'chains-testdata-cosign.password'),
    ])
    expect(run.stderr).toBe('')
    expect(run.code).toBe(0)
    expect(run.stdout).toBe(
      await readFile(path.join(cosignKeys, 'chains-testdata-cosign.pub'), 'utf8'),
    )
  })
})

interface Report {
  verified: boolean
  keyid?: string
  subject?: { name: string; digest?: string }
  buildType?: string
  dataset?: { url?: string; digest?: string }
  accuracy?: number
  image?: string
  signatures?: number
  error?: string
}

/** Parses `--json` output, failing with the process's output when it is not JSON. */
function report(run: CliRun): Report {
  try {
    return JSON.parse(run.stdout) as Report
  } catch {
    throw new Error(`not JSON (exit ${run.code}):\n${run.stdout}\nstderr:\n${run.stderr}`)
  }
}

/** The label's value in the human-readable form (`label:  value`). */
function field(stdout: string, label: string): string | undefined {
  const line = stdout.split('\n').find((l) => l.startsWith(`${label}:`))
  return line?.slice(label.length + 1).trim()
}

describe('oml-chains provenance --envelope', () => {
  const subject = {
    name: 'quay.io/mmortari/ml-iris',
    digest: 'sha256:bf64e877c24670cf517f52df470beafc611840707cf8ee45535cd1d8313784de',
  }
  let chainsKeyId: string

  beforeAll(async () => {
    // Chains wrote its keyid (the key's SSH fingerprint) into the envelope: an
    // independent record of what the CLI should report for this key.
    const envelope = JSON.parse(await readFile(realEnvelope, 'utf8')) as {
      signatures: { keyid: string }[]
    }
    chainsKeyId = envelope.signatures[0]!.keyid
    expect(chainsKeyId).toMatch(/^SHA256:/)
  })

  it('verifies the real Chains TaskRun attestation and reports what it records', async () => {
    const run = await cli(['provenance', '--envelope', realEnvelope, '--key', realPub, '--json'])
    expect(run.stderr).toBe('')
    expect(run.code).toBe(0)
    const r = report(run)
    expect(r.verified).toBe(true)
    expect(r.keyid).toBe(chainsKeyId)
    expect(r.subject).toEqual(subject)
    expect(r.buildType).toBe('tekton.dev/v1beta1/TaskRun')
    // A TaskRun attestation has no task results: the dataset digest is not
    // recorded, and must not be made up (e.g. from the trainer image's digest).
    expect(r.dataset).toStrictEqual({ url: 'quay.io/mmortari/ml-iris:data' })
    expect(r).not.toHaveProperty('accuracy')
  })

  it('shows the same in its human-readable form', async () => {
    const run = await cli(['provenance', '--envelope', realEnvelope, '--key', realPub])
    expect(run.code).toBe(0)
    expect(field(run.stdout, 'verified')).toBe(`yes, with key ${chainsKeyId}`)
    expect(field(run.stdout, 'subject')).toBe(`${subject.name}@${subject.digest}`)
    expect(field(run.stdout, 'build type')).toBe('tekton.dev/v1beta1/TaskRun')
    expect(field(run.stdout, 'dataset')).toBe('quay.io/mmortari/ml-iris:data')
    expect(field(run.stdout, 'dataset digest')).toBe('not recorded in this attestation')
  })

  describe('with one byte of the signed payload changed', () => {
    let tampered: string

    beforeAll(async () => {
      const envelope = JSON.parse(await readFile(realEnvelope, 'utf8')) as { payload: string }
      const payload = Buffer.from(envelope.payload, 'base64')
      // 'm' -> 'l' inside the subject name: still valid JSON, so only the
      // signature can tell.
      const at = payload.indexOf('quay.io/mmortari') + 'quay.io/'.length
      payload[at] = payload[at]! ^ 0x01
      envelope.payload = payload.toString('base64')
      tampered = path.join(await newDir('tampered'), 'envelope.json')
      await writeFile(tampered, JSON.stringify(envelope))
    })

    it('exits 1 saying it does not verify', async () => {
      const run = await cli(['provenance', '--envelope', tampered, '--key', realPub])
      expectOneLineError(run, 'provenance')
      expect(run.stderr).toMatch(/no signature verifies with public key/)
      expect(run.stdout).toBe('')
    })

    it('with --json, prints verified: false', async () => {
      const run = await cli(['provenance', '--envelope', tampered, '--key', realPub, '--json'])
      expect(run.code).toBe(1)
      const r = report(run)
      expect(r.verified).toBe(false)
      expect(r.error).toMatch(/no signature verifies with public key/)
      expect(r).not.toHaveProperty('subject')
    })
  })
})

describe('oml-chains provenance --image', () => {
  let registry: TestRegistry
  let keys: string
  let signed: PushedImage
  let unsigned: PushedImage

  beforeAll(async () => {
    registry = await startRegistry()
    // The key pair comes from our keygen; real cosign signs with it, as Chains would.
    keys = await newDir('image-keys')
    expect((await cli(['keygen', '--out', keys])).code).toBe(0)
    const password = await readFile(path.join(keys, 'cosign.password'), 'utf8')
    const client = new RegistryClient({ insecure: () => true })
    ;[signed, unsigned] = await Promise.all([
      pushTestImage(client, registry.host, 'models/iris', 'v1'),
      pushTestImage(client, registry.host, 'models/unsigned', 'v1'),
    ])
    const cosignHome = await newDir('cosign-home')
    await signAndAttest({
      image: signed,
      keyDir: keys,
      password,
      home: cosignHome,
      predicateFile: testPredicateFile,
    })
  })

  afterAll(async () => {
    await registry?.stop()
  })

  it('verifies an image cosign signed and attested, by tag, and reports its provenance', async () => {
    const pub = path.join(keys, 'cosign.pub')
    const run = await cli(['provenance', '--image', signed.tagged, '--key', pub, '--json'])
    expect(run.stderr).toBe('')
    expect(run.code).toBe(0)
    const r = report(run)
    expect(r.verified).toBe(true)
    expect(r.image).toBe(signed.pinned)
    expect(r.subject).toEqual({ name: `${registry.host}/models/iris`, digest: signed.digest })
    // signAndAttest signed the image once.
    expect(r.signatures).toBe(1)
    expect(r.buildType).toBe('tekton.dev/v1/PipelineRun')
    expect(r.dataset).toEqual({
      url: 'registry.local:5000/ml-iris:data',
      digest: 'sha256:5c6a2d4e8f0b1c3d5e7f9a0b2c4d6e8f0a1b3c5d7e9f1a2b4c6d8e0f2a3b5c7d',
    })
    expect(r.accuracy).toBe(0.9666666666666667)
  })

  it('fails for an image without .sig and .att, naming both', async () => {
    const pub = path.join(keys, 'cosign.pub')
    const run = await cli(['provenance', '--image', unsigned.tagged, '--key', pub])
    expectOneLineError(run, 'provenance')
    expect(run.stderr).toContain(
      `${unsigned.pinned} has no .sig (signature) and no .att (attestations)`,
    )
    expect(run.stdout).toBe('')
  })
})

describe('oml-chains usage', () => {
  it('provenance without flags asks for --envelope or --image', async () => {
    const run = await cli(['provenance'])
    expectOneLineError(run, 'provenance')
    expect(run.stderr).toContain('--envelope')
  })

  it('names an unknown flag', async () => {
    const run = await cli(['provenance', '--envelop', realEnvelope, '--key', realPub])
    expect(run.code).toBe(1)
    expect(run.stderr).toMatch(/^oml-chains provenance: error: .*'--envelop'/)
  })

  it('exits 2 for an unknown command', async () => {
    const run = await cli(['nope'])
    expect(run.code).toBe(2)
    expect(run.stderr).toMatch(/unknown command 'nope'/)
  })

  it.each(['keygen', 'key-check', 'provenance'])('%s --help prints its usage', async (command) => {
    const run = await cli([command, '--help'])
    expect(run.code).toBe(0)
    expect(run.stdout).toMatch(new RegExp(`^Usage: oml-chains ${command} `))
    expect(run.stderr).toBe('')
  })
})
