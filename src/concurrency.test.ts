import { describe, expect, it } from 'vitest'
import { FailFast, settled, unlessFailed } from './concurrency.js'

/** A promise settled by the test, when the test says. */
function deferred<T>() {
  let resolve!: (value: T) => void
  let reject!: (reason: unknown) => void
  const promise = new Promise<T>((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}

/** Lets every callback already queued run. */
const drain = () => new Promise<void>((resolve) => setImmediate(resolve))

/** 'pending', or how the promise settled, once every callback already queued has run. */
async function state(promise: Promise<unknown>): Promise<string> {
  let seen = 'pending'
  promise.then(
    (value) => (seen = `resolved ${String(value)}`),
    (err: unknown) => (seen = `rejected ${(err as Error).message}`),
  )
  await drain()
  return seen
}

describe('FailFast', () => {
  it('starts a phase once what it needs is there, with what it needs', async () => {
    const failFast = new FailFast()
    const cluster = deferred<string>()
    const started: string[] = []
    const tekton = failFast.after(cluster.promise, async (name) => {
      started.push(name)
      return `tekton on ${name}`
    })
    await drain()
    expect(started).toEqual([])
    cluster.resolve('kind')
    await expect(tekton).resolves.toBe('tekton on kind')
    expect(started).toEqual(['kind'])
  })

  it('does not start a phase after another has failed, and fails it with that error', async () => {
    const failFast = new FailFast()
    const cluster = deferred<string>()
    let started = false
    const tekton = failFast.after(cluster.promise, async () => {
      started = true
    })
    tekton.catch(() => undefined)
    const dataset = failFast.watched(Promise.reject(new Error('dataset not found')))
    dataset.catch(() => undefined)
    await drain()
    expect(failFast.signal.aborted).toBe(true)
    cluster.resolve('kind')
    await expect(tekton).rejects.toThrow('dataset not found')
    expect(started).toBe(false)
  })

  it('lets a phase under way finish, and keeps the first failure as the reason', async () => {
    const failFast = new FailFast()
    const cluster = deferred<string>()
    const underWay = failFast.watched(cluster.promise)
    const first = failFast.watched(Promise.reject(new Error('first')))
    first.catch(() => undefined)
    await drain()
    const second = failFast.watched(Promise.reject(new Error('second')))
    second.catch(() => undefined)
    await drain()
    expect((failFast.signal.reason as Error).message).toBe('first')
    cluster.resolve('kind')
    await expect(underWay).resolves.toBe('kind')
  })
})

describe('settled', () => {
  it("gives every phase's result, in order", async () => {
    await expect(settled([Promise.resolve(1), Promise.resolve('two')] as const)).resolves.toEqual([
      1,
      'two',
    ])
  })

  it('throws the first failure only once every phase has settled', async () => {
    const cluster = deferred<string>()
    const all = settled([cluster.promise, Promise.reject(new Error('dataset not found'))] as const)
    all.catch(() => undefined)
    expect(await state(all)).toBe('pending')
    cluster.resolve('kind')
    await expect(all).rejects.toThrow('dataset not found')
  })
})

describe('unlessFailed', () => {
  it("fails at once with the other's error, while the work is still under way", async () => {
    const chains = deferred<void>()
    const training = deferred<string>()
    const result = unlessFailed(chains.promise, training.promise)
    chains.reject(new Error('Chains did not install'))
    expect(await state(result)).toBe('rejected Chains did not install')
  })

  it("gives the work's result when the other succeeds first, and waits for it", async () => {
    const chains = deferred<void>()
    const training = deferred<string>()
    const result = unlessFailed(chains.promise, training.promise)
    chains.resolve()
    expect(await state(result)).toBe('pending')
    training.resolve('model')
    expect(await state(result)).toBe('resolved model')
  })

  it("gives the work's result when it ends before the other", async () => {
    const chains = deferred<void>()
    const result = unlessFailed(chains.promise, Promise.resolve('model'))
    expect(await state(result)).toBe('resolved model')
  })

  it("gives the work's own error when the work fails", async () => {
    const chains = deferred<void>()
    const result = unlessFailed(chains.promise, Promise.reject(new Error('training failed')))
    expect(await state(result)).toBe('rejected training failed')
  })
})
