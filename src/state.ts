import * as core from '@actions/core'

/**
 * The action's one entry serves both steps: main saves `isPost` in the step's
 * state, and GitHub hands that state back to the post step, which is how the
 * bundle tells them apart.
 */
const IS_POST = 'isPost'

export function isPost(): boolean {
  return core.getState(IS_POST) === 'true'
}

export function markMainStarted(): void {
  core.saveState(IS_POST, 'true')
}
