/**
 * Debian's chromium, headless, driven by playwright-core, for what only a
 * browser can judge: how Mermaid draws the job summary's diagram. Pages come
 * from a server on 127.0.0.1 that serves only the files it is given (Mermaid's
 * own dist bundle from node_modules, a page made in the test), and every
 * request to any other address is refused and recorded, so a page that tries
 * to reach the network fails the test instead of waiting on it.
 *
 * Self-contained on purpose (node: modules and npm packages only): the
 * screenshot script imports it too, run by Node's own type stripping, which
 * does not map the `.js` of a relative import to a `.ts` file.
 */
import { accessSync, constants, readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { chromium, type BrowserContext, type Page } from 'playwright-core'

/**
 * Where a Chromium is found: Debian's package, Ubuntu's name for it, or the
 * Google Chrome GitHub's Ubuntu runners ship (Ubuntu's chromium package is
 * only a snap wrapper, which a CI job cannot use).
 */
export const CHROMIUM_CANDIDATES = [
  '/usr/bin/chromium',
  '/usr/bin/chromium-browser',
  '/usr/bin/google-chrome',
] as const

/** The first Chromium found, or an error naming the command that installs one. */
export function chromiumPath(): string {
  for (const file of CHROMIUM_CANDIDATES) {
    try {
      accessSync(file, constants.X_OK)
      return file
    } catch {
      // not this one
    }
  }
  throw new Error(
    `no Chromium found (${CHROMIUM_CANDIDATES.join(', ')}): install Debian's chromium (\`apt-get install -y chromium\`, which \`npm run test-tools\` runs as root)`,
  )
}

/** Mermaid's single-file browser bundle (no chunks to fetch). */
export const MERMAID_BUNDLE = createRequire(import.meta.url).resolve('mermaid/dist/mermaid.min.js')

export interface ServedFile {
  body: string | Buffer
  type: string
}

export interface LoopbackSite {
  /** `http://127.0.0.1:<port>` */
  origin: string
  close(): Promise<void>
}

/** Serves exactly `files` (by path, e.g. `/index.html`) on 127.0.0.1; anything else is a 404. */
export async function serveFiles(files: Record<string, ServedFile>): Promise<LoopbackSite> {
  const server = createServer((req, res) => {
    const file = files[new URL(req.url ?? '/', 'http://127.0.0.1').pathname]
    if (req.method !== 'GET' || file === undefined) {
      res.writeHead(404).end()
      return
    }
    res.writeHead(200, { 'content-type': file.type, 'cache-control': 'no-store' }).end(file.body)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', resolve)
  })
  const { port } = server.address() as AddressInfo
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

/** Flags that keep chromium from reaching out on its own (updates, sync, QUIC probes, DNS). */
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  // No host resolves but the loopback server's.
  '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
]

export interface HeadlessChromium {
  context: BrowserContext
  page: Page
  /** Requests the page made to anything but `allowedOrigin`, refused. */
  offsite: string[]
  close(): Promise<void>
}

/**
 * Chromium with a fresh profile and one page, which may load from
 * `allowedOrigin` only. `deviceScaleFactor` 2 makes screenshots sharp on
 * high-density screens.
 */
export async function launchChromium(
  allowedOrigin: string,
  { deviceScaleFactor = 1 } = {},
): Promise<HeadlessChromium> {
  const profile = await mkdtemp(path.join(tmpdir(), 'oml-chromium-'))
  let context: BrowserContext
  try {
    // A persistent context is the way to hand chromium our own --user-data-dir.
    context = await chromium.launchPersistentContext(profile, {
      executablePath: chromiumPath(),
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1000, height: 800 },
      deviceScaleFactor,
      timeout: 30_000,
    })
  } catch (err) {
    await rm(profile, { recursive: true, force: true })
    throw err
  }
  const offsite: string[] = []
  await context.route('**/*', async (route) => {
    const url = route.request().url()
    if (new URL(url).origin === allowedOrigin) await route.continue()
    else {
      offsite.push(url)
      await route.abort('blockedbyclient')
    }
  })
  const page = context.pages()[0] ?? (await context.newPage())
  return {
    context,
    page,
    offsite,
    close: async () => {
      await context.close()
      await rm(profile, { recursive: true, force: true })
    },
  }
}

/** One node of a drawn flowchart, as the SVG has it. */
export interface DrawnNode {
  /** The id Mermaid gave the node's group, e.g. `mermaid-0-flowchart-dataset-0`. */
  id: string
  classes: string[]
  /** The label's text as shown, line by line. */
  lines: string[]
  /** Computed fill of the node's shape, e.g. `rgb(218, 251, 225)`. */
  fill: string
}

export interface DrawnDiagram {
  svg: string
  nodes: DrawnNode[]
  /** Number of drawn edges (arrows). */
  edges: number
  /** The bars of a Gantt chart, in drawing order: the task's id, classes, label, place and length. */
  bars: { id: string; classes: string[]; label: string; x: number; width: number }[]
  /** The SVG's stylesheet, its own id written `#diagram`: the theme and classDefs in force. */
  style: string
  /** Every element name in the SVG, once each, sorted. */
  elements: string[]
  /** Attributes named on… (event handlers) anywhere in the SVG. */
  handlers: string[]
}

export interface MermaidPage {
  /** Parses and draws a Mermaid definition; rejects with Mermaid's parse error. */
  render(definition: string): Promise<DrawnDiagram>
  browser: HeadlessChromium
  close(): Promise<void>
}

const MERMAID_PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>mermaid</title></head>
<body><div id="out"></div><script src="/mermaid.min.js"></script></body></html>`

interface MermaidGlobal {
  initialize(config: Record<string, unknown>): void
  parse(text: string): Promise<unknown>
  render(id: string, text: string): Promise<{ svg: string }>
}

/**
 * A page with Mermaid loaded, initialized the way GitHub's viewer runs it
 * (strict security: no HTML beyond text, no click handlers).
 */
export async function openMermaidPage(): Promise<MermaidPage> {
  const site = await serveFiles({
    '/': { body: MERMAID_PAGE, type: 'text/html; charset=utf-8' },
    '/mermaid.min.js': {
      body: readFileSync(MERMAID_BUNDLE),
      type: 'text/javascript; charset=utf-8',
    },
  })
  let browser: HeadlessChromium | undefined
  try {
    browser = await launchChromium(site.origin)
    await browser.page.goto(`${site.origin}/`)
    await browser.page.evaluate(() => {
      const { mermaid } = globalThis as unknown as PageGlobals
      mermaid.initialize({ startOnLoad: false, securityLevel: 'strict' })
    })
  } catch (err) {
    // A page that did not load must not leave chromium and its profile behind.
    await browser?.close()
    await site.close()
    throw err
  }
  const opened = browser
  let renders = 0
  return {
    browser: opened,
    render: (definition) => renderIn(opened.page, definition, `diagram${renders++}`),
    close: async () => {
      await opened.close()
      await site.close()
    },
  }
}

// The few DOM shapes the page code below uses: the project's types have no
// DOM library (src must not see browser globals).
interface PageElement {
  id: string
  localName: string
  attributes: Iterable<{ name: string }>
  innerHTML: string
  innerText: string
  textContent: string | null
  classList: Iterable<string>
  getAttribute(name: string): string | null
  querySelector(selector: string): PageElement | null
  querySelectorAll(selector: string): ArrayLike<PageElement> & Iterable<PageElement>
}
interface PageGlobals {
  mermaid: MermaidGlobal
  document: { getElementById(id: string): PageElement }
  getComputedStyle(element: PageElement): { fill: string }
}

async function renderIn(page: Page, definition: string, id: string): Promise<DrawnDiagram> {
  return page.evaluate(
    async ({ definition, id }) => {
      const { mermaid, document, getComputedStyle } = globalThis as unknown as PageGlobals
      // parse() first: it rejects with Mermaid's own message, where render()
      // may leave an error drawing behind.
      await mermaid.parse(definition)
      const { svg } = await mermaid.render(id, definition)
      const out = document.getElementById('out')
      out.innerHTML = svg
      const nodes = Array.from(out.querySelectorAll('g.node'), (node) => {
        const label = node.querySelector('.nodeLabel')
        // innerText shows the label as laid out: a <br> is a line break.
        const text = label ? label.innerText : (node.textContent ?? '')
        const shape = node.querySelector('rect, path, polygon, circle')
        return {
          id: node.id,
          classes: Array.from(node.classList),
          lines: text.split('\n'),
          fill: shape ? getComputedStyle(shape).fill : '',
        }
      })
      const edges = out.querySelectorAll('.edgePaths path, path.flowchart-link').length
      const bars = Array.from(out.querySelectorAll('rect.task'), (bar) => ({
        id: bar.id,
        classes: Array.from(bar.classList),
        label: out.querySelector(`[id="${bar.id}-text"]`)?.textContent ?? '',
        x: Number(bar.getAttribute('x')),
        width: Number(bar.getAttribute('width')),
      }))
      const all = Array.from(out.querySelectorAll('svg, svg *'))
      const style = out.querySelector('svg > style')?.textContent ?? ''
      return {
        svg: out.innerHTML,
        nodes,
        edges,
        bars,
        style: style.split(`#${id}`).join('#diagram'),
        elements: [...new Set(all.map((e) => e.localName))].sort(),
        handlers: all.flatMap((e) =>
          Array.from(e.attributes, (a) => a.name).filter((name) => /^on/i.test(name)),
        ),
      }
    },
    { definition, id },
  )
}

/** The first ```mermaid block of a Markdown document, without its fences. */
export function mermaidBlock(markdown: string): string | undefined {
  return mermaidBlocks(markdown)[0]
}

/** Every ```mermaid block of a Markdown document, without their fences. */
export function mermaidBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/^```mermaid\n([\s\S]*?)\n```$/gm)].map((m) => m[1]!)
}
