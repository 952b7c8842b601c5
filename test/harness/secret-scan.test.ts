import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { findSecrets, watchCommandLines } from './secret-scan.js'
import { repoRoot } from './tools.js'

// The search the secret tests rely on finds a secret however it was written down.
const password = 'correct-horse-battery'
const key = readFileSync(
  path.join(repoRoot, 'test/fixtures/cosign-keys/chains-testdata-cosign.key'),
  'utf8',
)
const b64 = (text: string) => Buffer.from(text).toString('base64')

describe('findSecrets', () => {
  it.each([
    ['raw, in a log line', `logging in with ${password}`],
    ['base64', `data: ${b64(password)}`],
    ['URL-encoded', `https://x/?p=${encodeURIComponent('p@ss word/+1')}`],
    [
      'inside a dockerconfigjson, base64 twice over',
      JSON.stringify({
        '.dockerconfigjson': b64(
          JSON.stringify({ auths: { r: { auth: b64(`bot:${password}`) } } }),
        ),
      }),
    ],
  ])('finds it %s', (_how, text) => {
    const secret = text.includes('p%40ss') ? 'p@ss word/+1' : password
    expect(findSecrets([secret], [{ name: 'artefact', text }])).not.toEqual([])
  })

  it('finds a PEM key JSON-escaped, and one line of it alone', () => {
    expect(findSecrets([key], [{ name: 'json', text: JSON.stringify({ key }) }])).toContain(
      'secret 1 (JSON-escaped) in json',
    )
    const line = key.split('\n')[3]!
    expect(findSecrets([key], [{ name: 'log', text: `x ${line} y` }])).toContain(
      'secret 1 (a line of it) in log',
    )
  })

  it('finds nothing where the secret is not', () => {
    expect(
      findSecrets([password, key], [{ name: 'log', text: `no secrets ${b64('here')}` }]),
    ).toEqual([])
  })
})

describe('watchCommandLines', () => {
  it("sees a secret on a short-lived process's command line", async () => {
    const watch = watchCommandLines()
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 300)', password])
    await new Promise((resolve) => child.on('close', resolve))
    const seen = await watch.stop()
    expect(findSecrets([password], seen)).toEqual([`secret 1 (raw) in /proc/${child.pid}/cmdline`])
  })
})
