// Bundles the action (dist/index.js: main and post) and the CLI (dist/cli/index.js)
// with ncc. dist/ is committed: it is what GitHub runs.
import { execFileSync } from 'node:child_process'
import { chmodSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { minify } from 'terser'

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

// The CLI loads each command on demand, so ncc writes a chunk per dynamic
// import (N.index.js); its --minify covers index.js only.
for (const chunk of readdirSync('dist/cli').filter((f) => /^\d+\.index\.js$/.test(f))) {
  const file = path.join('dist/cli', chunk)
  const { code } = await minify(readFileSync(file, 'utf8'), {
    module: true,
    compress: true,
    mangle: true,
    format: { comments: false },
  })
  writeFileSync(file, code)
}
