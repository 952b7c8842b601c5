import * as core from '@actions/core'
import { isRecord } from './json.js'
import type { CreatedResources } from './phases/cluster.js'

/**
 * What the main step hands to the post step. GitHub gives a step's saved
 * state back to its post step: `isPost` tells the one bundle which step it
 * runs, `created` what cleanup may remove, `keepCluster` whether it should.
 */
const IS_POST = 'isPost'
const CREATED = 'created'
const KEEP_CLUSTER = 'keepCluster'

export function isPost(): boolean {
  return core.getState(IS_POST) === 'true'
}

export function markMainStarted(): void {
  core.saveState(IS_POST, 'true')
}

/** Saved each time something is about to be created, so a failure half-way still cleans up. */
export function saveCreated(created: CreatedResources): void {
  core.saveState(CREATED, JSON.stringify(created))
}

export function loadCreated(): CreatedResources {
  try {
    const value: unknown = JSON.parse(core.getState(CREATED) || '{}')
    return isRecord(value) ? (value as CreatedResources) : {}
  } catch {
    return {}
  }
}

export function saveKeepCluster(keep: boolean): void {
  core.saveState(KEEP_CLUSTER, String(keep))
}

export function loadKeepCluster(): boolean {
  return core.getState(KEEP_CLUSTER) === 'true'
}
