/**
 * How the run's phases are started and awaited side by side: a phase starts
 * once what it needs is there, none starts after one has failed, and the run
 * waits for those under way before it reports the failure (what they created
 * must be recorded for the cleanup).
 */

/**
 * Phases that stop starting once one of them fails. Phases already under way
 * go on; they may read `signal` to stop early.
 */
export class FailFast {
  private readonly controller = new AbortController()

  /** Aborted, with the first failure as its reason, when a watched phase fails. */
  get signal(): AbortSignal {
    return this.controller.signal
  }

  /** Watches a phase: when it fails, no phase starts after it. */
  watched<T>(phase: Promise<T>): Promise<T> {
    phase.catch((err: unknown) => this.controller.abort(err))
    return phase
  }

  /**
   * Starts a phase once what it needs is there, unless another has failed
   * meanwhile: then it does not start, and fails with that phase's error.
   */
  after<A, T>(needs: Promise<A>, start: (ready: A) => Promise<T>): Promise<T> {
    return this.watched(
      needs.then((ready) => {
        this.controller.signal.throwIfAborted()
        return start(ready)
      }),
    )
  }
}

/**
 * Like Promise.all, but waits for every phase to settle before throwing the
 * first failure: a cluster still being created must be recorded for cleanup
 * before the step ends.
 */
export async function settled<T extends readonly unknown[]>(
  work: readonly [...{ [K in keyof T]: Promise<T[K]> }],
): Promise<T> {
  const results = await Promise.allSettled(work)
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')
  if (failed) throw failed.reason
  return results.map((r) => (r as PromiseFulfilledResult<unknown>).value) as unknown as T
}

/**
 * `work`'s result, unless `other` fails first: then `other`'s error, at once
 * (a Chains that did not install fails the run without waiting for the
 * training). A success of `other` changes nothing.
 */
export async function unlessFailed<T>(other: Promise<unknown>, work: Promise<T>): Promise<T> {
  work.catch(() => undefined)
  return Promise.race([work, other.then(() => work)])
}
