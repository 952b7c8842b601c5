import { accessSync, constants } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
export const toolsBin = path.join(repoRoot, '.tools', 'bin')

/** Tools that scripts/test-tools.sh installs into .tools/bin. */
export const TEST_TOOLS = [
  'node',
  'cosign',
  'registry',
  'kind',
  'etcd',
  'kube-apiserver',
  'kube-controller-manager',
  // The node of test/harness/node/ (test/harness/node.test.ts).
  'kube-scheduler',
  'kubelet',
  'kube-proxy',
  'crictl',
  // Runs the EC policy's rego unit tests and checks (test/policy.test.ts).
  'opa',
  // The trainer's virtualenv interpreter (scikit-learn, oras, omlmd).
  'python3',
  // Checks .github/workflows (test/workflows.test.ts, .ci/run).
  'actionlint',
] as const
export type TestTool = (typeof TEST_TOOLS)[number]

/**
 * Path of a real tool the tests need. A missing tool fails the test with the
 * command that installs it; it never turns into a skip.
 */
export function toolPath(name: TestTool): string {
  const file = path.join(toolsBin, name)
  try {
    accessSync(file, constants.X_OK)
  } catch {
    throw new Error(
      `${name} is not installed in ${toolsBin}: run \`npm run test-tools\` (scripts/test-tools.sh)`,
    )
  }
  return file
}
