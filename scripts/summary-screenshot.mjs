// Makes docs/summary-pass.png, the README's picture of a job summary: the
// pass summary snapshot (src/phases/__snapshots__/summary-pass.md) turned into
// HTML as GitHub does (GitHub-flavoured Markdown, the ```mermaid block drawn by
// Mermaid), styled like GitHub's Markdown and photographed in Debian's
// headless chromium. Like the tests, the page loads nothing but what a
// loopback server gives it.
//
//   npm run screenshot        (Node 24 and chromium: scripts/test-tools.sh)
import { mkdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Marked } from 'marked'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const source = path.join(root, 'src/phases/__snapshots__/summary-pass.md')
const output = path.join(root, 'docs/summary-pass.png')

// The browser harness is TypeScript, loaded through Node's type stripping.
if (!process.features.typescript) {
  console.error(
    `summary-screenshot: needs Node 24 (this is ${process.version}): run \`npm run screenshot\`, which uses .tools/bin/node`,
  )
  process.exit(1)
}
const { launchChromium, MERMAID_BUNDLE, serveFiles } = await import('../test/harness/browser.ts')

const escapeHtml = (text) =>
  text.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c])

// GitHub draws a ```mermaid block in place of the code; Mermaid reads the
// block's text back from the <pre>.
const markdown = new Marked({
  gfm: true,
  renderer: {
    code({ text, lang }) {
      return lang === 'mermaid' ? `<pre class="mermaid">${escapeHtml(text)}</pre>\n` : false
    },
  },
})

// The few rules of GitHub's Markdown style (light theme) that this summary uses.
const CSS = `
body { margin: 0; background: #f6f8fa; }
.summary { box-sizing: border-box; width: 960px; margin: 16px; padding: 8px 24px 16px;
  background: #fff; border: 1px solid #d1d9e0; border-radius: 6px; }
.markdown-body { color: #1f2328; font-size: 14px; line-height: 1.5;
  font-family: -apple-system, BlinkMacSystemFont, "Segoe UI", "Noto Sans", Helvetica, Arial, "Liberation Sans", sans-serif; }
h2, h3, h4 { font-weight: 600; line-height: 1.25; margin: 24px 0 16px; }
h2 { font-size: 1.5em; padding-bottom: .3em; border-bottom: 1px solid #d1d9e0b3; }
h3 { font-size: 1.25em; }
p, table, pre, ul { margin: 0 0 16px; }
code, pre { font-family: ui-monospace, SFMono-Regular, "SF Mono", Menlo, Consolas, "Liberation Mono", monospace; }
code { font-size: 85%; padding: .2em .4em; border-radius: 6px; background: #818b981f; }
pre { font-size: 85%; padding: 16px; border-radius: 6px; background: #f6f8fa; overflow: auto; }
pre code { padding: 0; background: none; font-size: 100%; }
pre.mermaid { background: none; padding: 0; text-align: center; font-family: inherit; }
table { border-collapse: collapse; display: block; overflow: auto; }
th, td { padding: 6px 13px; border: 1px solid #d1d9e0; }
th { font-weight: 600; }
tr:nth-child(2n) { background: #f6f8fa; }
`

const html = `<!doctype html>
<html><head><meta charset="utf-8"><title>oml-chains summary</title><style>${CSS}</style></head>
<body><div class="summary markdown-body">${markdown.parse(readFileSync(source, 'utf8'))}</div>
<script src="/mermaid.min.js"></script></body></html>`

const site = await serveFiles({
  '/': { body: html, type: 'text/html; charset=utf-8' },
  '/mermaid.min.js': { body: readFileSync(MERMAID_BUNDLE), type: 'text/javascript; charset=utf-8' },
})
try {
  const browser = await launchChromium(site.origin, { deviceScaleFactor: 2 })
  try {
    const { page } = browser
    // Mermaid draws some shapes through rough.js, with random control points on
    // straight lines: a fixed sequence makes the same picture on every run.
    await page.addInitScript(() => {
      let seed = 1
      Math.random = () => (seed = (seed * 16807) % 2147483647) / 2147483647
    })
    await page.goto(`${site.origin}/`)
    await page.evaluate(async () => {
      const { mermaid } = globalThis
      mermaid.initialize({ startOnLoad: false, securityLevel: 'strict', theme: 'default' })
      await mermaid.run({ querySelector: 'pre.mermaid' })
    })
    if ((await page.locator('pre.mermaid svg').count()) !== 1) {
      throw new Error('Mermaid drew no diagram')
    }
    if (browser.offsite.length > 0) {
      throw new Error(`the page asked for ${browser.offsite.join(', ')}`)
    }
    // The top of the summary: the verdict, the chain, the run's facts and the
    // policy results, up to the timings.
    const box = await page.locator('.summary').boundingBox()
    const timings = await page.locator('h3', { hasText: 'Timings' }).boundingBox()
    if (!box || !timings) throw new Error('the summary has no Timings section to stop at')
    mkdirSync(path.dirname(output), { recursive: true })
    await page.screenshot({
      path: output,
      clip: { x: box.x, y: box.y, width: box.width, height: timings.y - box.y },
    })
    console.log(`summary-screenshot: wrote ${path.relative(root, output)}`)
  } finally {
    await browser.close()
  }
} finally {
  await site.close()
}
