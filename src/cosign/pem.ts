import { decodeBase64 } from '../base64.js'
import { UserError } from '../errors.js'

/** One PEM block: the label of its BEGIN/END lines and the decoded body. */
export interface PemBlock {
  label: string
  body: Buffer
}

/** Malformed PEM text. The message never quotes the body (it may be key material). */
export class PemError extends UserError {
  override name = 'PemError'
}

// RFC 7468 labels: printable ASCII without '-', single inner spaces or hyphens.
const LABEL = /^[\x21-\x2c\x2e-\x7e]+(?:[ -][\x21-\x2c\x2e-\x7e]+)*$/
const BEGIN = /^-----BEGIN (.*)-----$/
const END = /^-----END (.*)-----$/

/**
 * Encodes `der` as PEM the way Go's encoding/pem (and so cosign) writes it:
 * base64 lines of 64 characters and a newline after the END line.
 */
export function encodePem(label: string, der: Uint8Array): string {
  if (!LABEL.test(label)) throw new Error(`invalid PEM label ${JSON.stringify(label)}`)
  const b64 = Buffer.from(der).toString('base64')
  const lines: string[] = []
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64))
  return `-----BEGIN ${label}-----\n${lines.join('\n')}${lines.length ? '\n' : ''}-----END ${label}-----\n`
}

/**
 * Decodes every PEM block in `text`. Only whitespace may surround the blocks;
 * headers (RFC 1421 `Proc-Type:` lines) are rejected since cosign never writes
 * them. `what` names the input in error messages ("cosign private key").
 */
export function decodePemBlocks(text: string, what = 'PEM data'): PemBlock[] {
  const lines = text.split(/\r?\n/).map((l) => l.trim())
  const blocks: PemBlock[] = []
  let i = 0
  while (i < lines.length) {
    const line = lines[i] ?? ''
    i++
    if (line === '') continue
    const begin = BEGIN.exec(line)
    if (!begin) {
      throw new PemError(
        blocks.length === 0
          ? `${what}: not PEM (expected a '-----BEGIN ...-----' line first)`
          : `${what}: unexpected text after the PEM block`,
      )
    }
    const label = begin[1] ?? ''
    if (!LABEL.test(label)) throw new PemError(`${what}: malformed PEM BEGIN line`)
    const body: string[] = []
    let ended = false
    while (i < lines.length) {
      const l = lines[i] ?? ''
      i++
      const end = END.exec(l)
      if (end) {
        if (end[1] !== label) {
          throw new PemError(
            `${what}: PEM block '${label}' ends with a different label ('${clip(end[1] ?? '')}')`,
          )
        }
        ended = true
        break
      }
      if (l.includes(':')) throw new PemError(`${what}: PEM headers are not supported`)
      body.push(l)
    }
    if (!ended) throw new PemError(`${what}: PEM block '${label}' has no END line`)
    const joined = body.join('')
    if (joined === '') throw new PemError(`${what}: PEM block '${label}' is empty`)
    const der = decodeBase64(joined)
    if (!der) throw new PemError(`${what}: PEM block '${label}' has an invalid base64 body`)
    blocks.push({ label, body: der })
  }
  if (blocks.length === 0) throw new PemError(`${what}: empty, expected a PEM block`)
  return blocks
}

/** Decodes text that must hold exactly one PEM block. */
export function decodePem(text: string, what = 'PEM data'): PemBlock {
  const blocks = decodePemBlocks(text, what)
  if (blocks.length !== 1) {
    throw new PemError(`${what}: expected one PEM block, found ${blocks.length}`)
  }
  return blocks[0] as PemBlock
}

// Labels come from user input: keep messages one short line.
function clip(s: string): string {
  const printable = s.replace(/[^\x20-\x7e]/g, '?')
  return printable.length > 60 ? `${printable.slice(0, 57)}...` : printable
}
