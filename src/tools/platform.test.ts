import os from 'node:os'
import { describe, expect, it } from 'vitest'
import { UserError } from '../errors.js'
import { runnerPlatform } from './platform.js'

describe('runnerPlatform', () => {
  it('names the runners GitHub offers as release assets name them', () => {
    expect(runnerPlatform('linux', 'x64')).toEqual({
      os: 'linux',
      arch: 'amd64',
      name: 'linux-amd64',
    })
    expect(runnerPlatform('linux', 'arm64').name).toBe('linux-arm64')
  })

  it('names macOS machines too, for local use of the CLI', () => {
    expect(runnerPlatform('darwin', 'arm64').name).toBe('darwin-arm64')
    expect(runnerPlatform('darwin', 'x64').name).toBe('darwin-amd64')
  })

  it('refuses Windows and other architectures, saying what is supported', () => {
    expect(() => runnerPlatform('win32', 'x64')).toThrow(UserError)
    expect(() => runnerPlatform('win32', 'x64')).toThrow(
      'unsupported runner platform win32/x64: the tools are installed on linux (x64, arm64)',
    )
    expect(() => runnerPlatform('linux', 'ia32')).toThrow('unsupported runner platform linux/ia32')
  })

  it('detects this machine by default, as uname names it', () => {
    // os.machine() is uname -m, a source apart from the process.arch the code reads.
    const arch = { x86_64: 'amd64', aarch64: 'arm64', arm64: 'arm64' }[os.machine()]
    expect(runnerPlatform()).toEqual({ os: os.platform(), arch, name: `${os.platform()}-${arch}` })
  })
})
