// Bundles the action (dist/index.js: main and post) and the CLI (dist/cli/index.js)
// with ncc. dist/ is committed: it is what GitHub runs.
import { execFileSync } from 'node:child_process'
import { chmodSync, rmSync } from 'node:fs'

const ncc = ['node_modules/@vercel/ncc/dist/ncc/cli.js', 'build', '--minify', '--quiet']
rmSync('dist', { recursive: true, force: true })
execFileSync(
  process.execPath,
  [...ncc, 'src/main.ts', '--out', 'dist', '--license', 'licenses.txt'],
  {
    stdio: 'inherit',
  },
)
execFileSync(process.execPath, [...ncc, 'src/cli.ts', '--out', 'dist/cli'], { stdio: 'inherit' })
chmodSync('dist/cli/index.js', 0o755)
