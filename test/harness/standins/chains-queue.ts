import type { RunKey } from './chains-run.js'

/**
 * One reconcile at a time per run, as a controller's work queue does; a
 * change that arrives meanwhile makes it run once more afterwards.
 */
export class RunQueue {
  private readonly active = new Map<string, { again: boolean }>()
  private readonly running = new Set<Promise<void>>()

  constructor(
    private readonly work: (key: RunKey) => Promise<void>,
    private readonly onError: (key: RunKey, err: unknown) => void,
  ) {}

  add(key: RunKey): void {
    const id = `${key.kind}/${key.namespace}/${key.name}`
    const found = this.active.get(id)
    if (found) {
      found.again = true
      return
    }
    const state = { again: true }
    this.active.set(id, state)
    const loop = async () => {
      while (state.again) {
        state.again = false
        await this.work(key).catch((err: unknown) => this.onError(key, err))
      }
      this.active.delete(id)
    }
    const promise: Promise<void> = loop().finally(() => this.running.delete(promise))
    this.running.add(promise)
  }

  async drain(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running])
  }
}
