import { parseAllDocuments } from 'yaml'
import { UserError } from '../errors.js'
import { isRecord } from '../json.js'

/** The fields every Kubernetes object has (what server-side apply needs). */
export interface KubeObject {
  apiVersion: string
  kind: string
  metadata: {
    name: string
    namespace?: string
    labels?: Record<string, string>
    annotations?: Record<string, string>
    [key: string]: unknown
  }
  [key: string]: unknown
}

/** A condition as Kubernetes status blocks list them. */
export interface Condition {
  type: string
  status: 'True' | 'False' | 'Unknown'
  reason?: string
  message?: string
  lastTransitionTime?: string
}

/**
 * Parses a multi-document YAML manifest (a release.yaml) into objects, in
 * order. Empty documents are skipped; anything without apiVersion, kind and
 * metadata.name is an error naming `source` and the document's position.
 */
export function parseManifests(text: string, source: string): KubeObject[] {
  const objects: KubeObject[] = []
  parseAllDocuments(text).forEach((doc, index) => {
    if (doc.errors.length > 0) {
      throw new UserError(
        `${source}: document ${index + 1} is not valid YAML: ${doc.errors[0]?.message}`,
      )
    }
    const value: unknown = doc.toJS()
    if (value === null || value === undefined) return
    if (
      !isRecord(value) ||
      typeof value.apiVersion !== 'string' ||
      typeof value.kind !== 'string' ||
      !isRecord(value.metadata) ||
      typeof value.metadata.name !== 'string'
    ) {
      throw new UserError(
        `${source}: document ${index + 1} is not a Kubernetes object (needs apiVersion, kind and metadata.name)`,
      )
    }
    objects.push(value as KubeObject)
  })
  return objects
}

/** `Kind namespace/name`, for logs and errors. */
export function describeObject(object: Pick<KubeObject, 'kind' | 'metadata'>): string {
  const { namespace, name } = object.metadata
  return `${object.kind} ${namespace ? `${namespace}/` : ''}${name}`
}

/** The condition of a type in an object's status, if it has one. */
export function conditionOf(object: unknown, type: string): Condition | undefined {
  if (!isRecord(object) || !isRecord(object.status)) return undefined
  const conditions = object.status.conditions
  if (!Array.isArray(conditions)) return undefined
  return conditions.find((c): c is Condition => isRecord(c) && c.type === type)
}
