import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    // Real tools (registry, cosign) start processes; give them room on 2 cores.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    globalSetup: ['test/harness/global-setup.ts'],
  },
})
