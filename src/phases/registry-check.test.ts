/**
 * The registry check pod as the action writes it. It runs on the real node,
 * pulled by the real kubelet, in test/node/registry-check.test.ts.
 */
import { describe, expect, it } from 'vitest'
import { parseReference } from '../oci/reference.js'
import { registryCheckPod, registryUrl } from './registry-check.js'

const target = { namespace: 'oml-chains', serviceAccount: 'oml-chains-pipeline' }

describe('registryCheckPod', () => {
  it('asks plain-HTTP registries over HTTP, others over HTTPS, Docker Hub at its API host', () => {
    expect(registryUrl('registry.local:5000')).toBe('http://registry.local:5000/v2/')
    expect(registryUrl('127.0.0.1:5000')).toBe('http://127.0.0.1:5000/v2/')
    expect(registryUrl('quay.io')).toBe('https://quay.io/v2/')
    expect(registryUrl('docker.io')).toBe('https://registry-1.docker.io/v2/')
  })

  it('runs the trainer image as the pipeline step does: non-root, no privileges, no token', () => {
    const pod = registryCheckPod({
      image: parseReference(`registry.local:5000/oml-chains/trainer@sha256:${'a'.repeat(64)}`),
      registries: ['quay.io', 'registry.local:5000', 'quay.io'],
      ...target,
    })
    const spec = pod.spec as {
      serviceAccountName: string
      automountServiceAccountToken: boolean
      restartPolicy: string
      securityContext: Record<string, unknown>
      containers: { image: string; command: string[]; securityContext: Record<string, unknown> }[]
    }
    expect(spec.serviceAccountName).toBe('oml-chains-pipeline')
    expect(spec.automountServiceAccountToken).toBe(false)
    expect(spec.restartPolicy).toBe('Never')
    expect(spec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 65532 })
    const [container] = spec.containers
    expect(container!.image).toBe(`registry.local:5000/oml-chains/trainer@sha256:${'a'.repeat(64)}`)
    expect(container!.command.slice(0, 2)).toEqual(['python', '-c'])
    expect(container!.command.slice(3)).toEqual([
      'https://quay.io/v2/',
      'http://registry.local:5000/v2/',
    ])
    expect(container!.securityContext).toEqual({
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
    })
  })
})
