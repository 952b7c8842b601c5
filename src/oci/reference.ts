import { InputError } from '../errors.js'
import { isDigest } from './digest.js'
import type { Digest } from './types.js'

/**
 * An image or artifact reference, normalised the way docker does:
 * `alpine` is `docker.io/library/alpine`, `index.docker.io/x/y` is `docker.io/x/y`.
 */
export interface Reference {
  /** Registry as written, with port: `docker.io`, `registry.local:5000`, `127.0.0.1:5000`. */
  readonly registry: string
  /** Repository path inside the registry, lowercase: `library/alpine`, `iris/model`. */
  readonly repository: string
  readonly tag?: string
  readonly digest?: Digest
}

/** What repository-level operations (blobs, tags) need. */
export type Repository = Pick<Reference, 'registry' | 'repository'>

export const dockerHub = 'docker.io'
const dockerHubAliases = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io'])

const expected = 'expected [registry/]repository[:tag][@sha256:<64 hex>]'

// Grammar of distribution/reference, restricted to sha256 digests.
const pathComponent = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/
const tagPattern = /^\w[\w.-]{0,127}$/
const hostComponent = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/
const ipv6Host = /^\[[0-9a-fA-F:.]+\]$/
const maxNameLength = 255

function invalid(inputName: string, text: string, reason: string): InputError {
  return new InputError(
    inputName,
    `'${text}' is not a valid OCI reference (${expected}): ${reason}`,
  )
}

/** `host[:port]` with a DNS name, an IPv4 address or a bracketed IPv6 address. */
function checkRegistry(registry: string): string | undefined {
  let host = registry
  const portMatch = /^(.*):([^:\]]*)$/.exec(registry)
  if (portMatch) {
    host = portMatch[1] ?? ''
    const port = portMatch[2] ?? ''
    if (!/^\d{1,5}$/.test(port) || Number(port) > 65535 || Number(port) === 0) {
      return `invalid port '${port}' in registry '${registry}'`
    }
  }
  if (ipv6Host.test(host)) return undefined
  if (host === '' || !host.split('.').every((part) => hostComponent.test(part))) {
    return `invalid registry host '${host}'`
  }
  return undefined
}

/**
 * Parses an image reference. Throws an InputError naming `inputName` and saying
 * precisely what is wrong, so an action input or CLI flag can be fixed at once.
 */
export function parseReference(text: string, inputName = 'image'): Reference {
  if (text === '') throw new InputError(inputName, `an OCI reference is required (${expected})`)
  if (/\s/.test(text)) throw invalid(inputName, text, 'it contains whitespace')
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(text)
  if (scheme) throw invalid(inputName, text, `remove the '${scheme[0]}' prefix`)

  let rest = text
  let digest: Digest | undefined
  const at = rest.indexOf('@')
  if (at !== -1) {
    const digestText = rest.slice(at + 1)
    rest = rest.slice(0, at)
    if (!isDigest(digestText)) {
      throw invalid(
        inputName,
        text,
        `digest '${digestText}' must be sha256: followed by 64 lowercase hex characters`,
      )
    }
    digest = digestText
  }

  let tag: string | undefined
  const lastColon = rest.lastIndexOf(':')
  if (lastColon > rest.lastIndexOf('/')) {
    tag = rest.slice(lastColon + 1)
    rest = rest.slice(0, lastColon)
    if (!tagPattern.test(tag)) {
      throw invalid(
        inputName,
        text,
        `tag '${tag}' must be 1-128 letters, digits, '_', '.' or '-', not starting with '.' or '-'`,
      )
    }
  }
  if (rest === '') throw invalid(inputName, text, 'the repository name is missing')

  // As docker does: the first component names a registry only if it looks like a
  // host (has '.' or ':', is 'localhost', or has capitals, which repositories cannot).
  let registry = dockerHub
  let repository = rest
  const slash = rest.indexOf('/')
  if (slash !== -1) {
    const first = rest.slice(0, slash)
    if (
      first.includes('.') ||
      first.includes(':') ||
      first === 'localhost' ||
      first !== first.toLowerCase()
    ) {
      registry = first
      repository = rest.slice(slash + 1)
      const problem = checkRegistry(registry)
      if (problem) throw invalid(inputName, text, problem)
    }
  }
  if (dockerHubAliases.has(registry.toLowerCase())) registry = dockerHub

  for (const component of repository.split('/')) {
    if (pathComponent.test(component)) continue
    if (component === '')
      throw invalid(inputName, text, `repository '${repository}' has an empty path component`)
    if (pathComponent.test(component.toLowerCase())) {
      throw invalid(inputName, text, `repository '${repository}' must be lowercase`)
    }
    throw invalid(
      inputName,
      text,
      `repository component '${component}' may contain only lowercase letters, digits and single separators ('.', '_', '__', '-')`,
    )
  }
  if (registry === dockerHub && !repository.includes('/')) repository = `library/${repository}`
  if (`${registry}/${repository}`.length > maxNameLength) {
    throw invalid(inputName, text, `the name is longer than ${maxNameLength} characters`)
  }

  return { registry, repository, ...(tag !== undefined && { tag }), ...(digest && { digest }) }
}

/** `registry/repository[:tag][@digest]`, fully qualified (`docker.io/library/alpine:3`). */
export function formatReference(ref: Reference): string {
  return `${repositoryOf(ref)}${ref.tag !== undefined ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`
}

/** `registry/repository`, e.g. for `IMAGE_URL` or a cosign attachment's repository. */
export function repositoryOf(ref: Repository): string {
  return `${ref.registry}/${ref.repository}`
}

/**
 * The same repository pinned to one digest. The tag is dropped: a pinned
 * reference names content, and `repo:tag@digest` reads as if the tag mattered.
 */
export function withDigest(ref: Repository, digest: string): Reference & { digest: Digest } {
  if (!isDigest(digest)) throw new TypeError(`not a sha256 digest: ${digest}`)
  return { registry: ref.registry, repository: ref.repository, digest }
}

/** The same repository with a tag (and no digest). */
export function withTag(ref: Repository, tag: string): Reference & { tag: string } {
  if (!tagPattern.test(tag)) throw new TypeError(`not a valid tag: ${tag}`)
  return { registry: ref.registry, repository: ref.repository, tag }
}

/** What goes after `/manifests/`: the digest if pinned, else the tag, else `latest`. */
export function manifestTarget(ref: Reference): string {
  return ref.digest ?? ref.tag ?? 'latest'
}

/** Host serving the registry API: Docker Hub's API is not at docker.io. */
export function registryApiHost(registry: string): string {
  return registry === dockerHub ? 'registry-1.docker.io' : registry
}
