import { defineConfig } from 'vitest/config'

// `npm run bench` (scripts/bench.sh): the benchmark, apart from the tests.
export default defineConfig({
  test: {
    include: ['bench/**/*.bench.ts'],
    testTimeout: 3_600_000,
    hookTimeout: 900_000,
    globalSetup: ['test/harness/global-setup.ts'],
    // What the benchmark prints is its result: show it as it comes.
    disableConsoleIntercept: true,
  },
})
