import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { repoRoot, toolPath } from '../../../test/harness/tools.js'
import { parseEcReport, summarizeEcReport, type EcSummary } from './report.js'
import { transientError, transientViolation } from './transient.js'

const fixture = (name: string) => readFile(path.join(repoRoot, 'test/fixtures/ec', name), 'utf8')
const digest = `sha256:${createHash('sha256').update('model').digest('hex')}`

let server: Server | undefined
afterEach(async () => {
  server?.closeAllConnections()
  await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined))
  server = undefined
})

/** A registry that answers /v2/ and then every manifest request with `status` and `body`. */
async function failingRegistry(status: number, body = ''): Promise<string> {
  server = createServer((req, res) => {
    if (req.url === '/v2/') res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
    else res.writeHead(status, { 'content-type': 'application/json' }).end(body)
  })
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve))
  return `127.0.0.1:${(server.address() as AddressInfo).port}`
}

/**
 * What go-containerregistry (the registry client in ec, cosign and Chains)
 * really prints for a registry failure: the error of a real cosign verify.
 */
function registryError(host: string): Promise<string> {
  const pub = path.join(repoRoot, 'test/fixtures/chains-real/cosign.pub')
  const args = ['verify', '--key', pub, '--insecure-ignore-tlog', '--allow-insecure-registry']
  return new Promise((resolve) => {
    execFile(toolPath('cosign'), [...args, `${host}/oml/model@${digest}`], (_err, _out, stderr) =>
      resolve(stderr.split('\n').find((line) => line.startsWith('Error: ')) ?? stderr),
    )
  })
}

describe("transientError on go-containerregistry's real error texts", () => {
  it('a refused connection passes', async () => {
    const error = await registryError('127.0.0.1:1')
    expect(error).toContain('connect: connection refused')
    expect(transientError(`some log line\n${error}\n`)).toBe(error)
  })

  it('503 from the registry passes (after the client has retried it itself)', async () => {
    const error = await registryError(await failingRegistry(503))
    expect(error).toMatch(/unexpected status code 503 Service Unavailable$/)
    expect(transientError(error)).toBe(error)
  }, 30_000)

  it('TOOMANYREQUESTS passes', async () => {
    const body = '{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}'
    const error = await registryError(await failingRegistry(429, body))
    expect(error).toMatch(/: TOOMANYREQUESTS: slow down$/)
    expect(transientError(error)).toBe(error)
  })

  it('a denied pull stays denied', async () => {
    const body =
      '{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}'
    const error = await registryError(await failingRegistry(403, body))
    expect(error).toMatch(/: DENIED: requested access to the resource is denied$/)
    expect(transientError(error)).toBeUndefined()
  })

  it("ec's own errors are not network errors", async () => {
    expect(transientError(await fixture('invalid-extra-rule-data.stderr.txt'))).toBeUndefined()
    expect(transientError(await fixture('unsupported-policies.stderr.txt'))).toBeUndefined()
  })
})

describe('transientViolation', () => {
  const summaryOf = async (name: string) => summarizeEcReport(parseEcReport(await fixture(name)))

  it('a failed policy rule is an answer (real ec reports)', async () => {
    expect(transientViolation(await summaryOf('format-options-output-file.json'))).toBeUndefined()
    expect(transientViolation(await summaryOf('severity-adjusted.json'))).toBeUndefined()
  })

  it('a signature check failed for a wrong key is an answer (real ec report)', async () => {
    expect(transientViolation(await summaryOf('invalid-image-signature.json'))).toBeUndefined()
  })

  it('a pass is an answer (real ec report)', async () => {
    expect(transientViolation(await summaryOf('happy-day.json'))).toBeUndefined()
  })

  it('a built-in check that failed on a registry error is not', async () => {
    // No published ec output shows this case: the summary is built here. The
    // message has the form ec's output.go gives it ("Image URL is not
    // accessible: <error>") around a real go-containerregistry error.
    const error = await registryError('127.0.0.1:1')
    const summary: EcSummary = {
      success: false,
      violations: [
        {
          code: 'builtin.image.accessible',
          msg: `Image URL is not accessible: ${error.replace(/^Error: /, '')}`,
          component: 'Unnamed',
          image: `127.0.0.1:1/oml/model@${digest}`,
        },
      ],
      warnings: [],
      successes: 0,
    }
    expect(transientViolation(summary)).toMatch(/connection refused/)
    // ...unless a policy rule failed too: then the answer stands.
    summary.violations.push({ ...summary.violations[0]!, code: 'main.rejector', msg: 'Fails' })
    expect(transientViolation(summary)).toBeUndefined()
  })
})
