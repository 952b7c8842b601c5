/**
 * The chain a run builds, drawn for the top of the job summary as a Mermaid
 * flowchart (GitHub renders ```mermaid blocks): dataset → PipelineRun → model
 * → signature and attestation → verdict, each node coloured by how far the
 * run got. A pure function of the RunReport, so a run that failed half-way
 * shows where it stopped.
 *
 * Labels carry registry names and other outside text. Mermaid reads a quoted
 * label up to the next `"` and then renders it as HTML, so every character
 * that is not plainly safe is written as a Mermaid entity code (`#60;` for
 * `<`), which Mermaid turns into an HTML character reference after parsing:
 * the text is shown as written, never read as syntax, HTML or Markdown.
 */
import { chainsKeyId } from '../cosign/keyid.js'
import type { RunReport } from './report.js'
import { clip, CONTROL, count, oneLine } from './report-text.js'

export type ChainNode = 'dataset' | 'pipelineRun' | 'model' | 'signature' | 'verdict'

/** In the order the run reaches them. */
export const CHAIN_NODES: readonly ChainNode[] = [
  'dataset',
  'pipelineRun',
  'model',
  'signature',
  'verdict',
]

/** `unreached`: the run stopped before it (or failed elsewhere first). */
export type NodeOutcome = 'ok' | 'failed' | 'unreached'

/**
 * The node each phase of run.ts (by its Timings name) works towards, so that a
 * failed phase marks the node it kept from being made. The cluster, Tekton,
 * credentials, trainer image and the registry check from a pod exist to run
 * the PipelineRun; the signing key
 * is for the signature. A phase not named here that fails leaves the mark to
 * the first node the run did not finish.
 */
export const NODE_OF_PHASE: Readonly<Record<string, ChainNode>> = {
  Dataset: 'dataset',
  Cluster: 'pipelineRun',
  'Tekton Pipelines': 'pipelineRun',
  'Registry credentials': 'pipelineRun',
  'Trainer image': 'pipelineRun',
  'Registry check': 'pipelineRun',
  Pipeline: 'pipelineRun',
  'Signing key': 'signature',
  'Tekton Chains': 'signature',
  Chains: 'signature',
  'ec install': 'verdict',
  'Enterprise Contract': 'verdict',
}

/** Mermaid node ids: fixed words, none of them Mermaid keywords. */
const NODE_ID: Record<ChainNode, string> = {
  dataset: 'dataset',
  pipelineRun: 'pipelinerun',
  model: 'model',
  signature: 'signature',
  verdict: 'verdict',
}

/**
 * Fill, border and text colour set together, so a node reads the same on
 * GitHub's light and dark themes (the theme then colours only the arrows).
 * The words in the labels say the outcome too, for readers who cannot tell
 * the colours apart.
 */
const CLASS_DEFS: Record<NodeOutcome, string> = {
  ok: 'fill:#dafbe1,stroke:#1a7f37,stroke-width:2px,color:#1f2328',
  failed: 'fill:#ffebe9,stroke:#cf222e,stroke-width:3px,color:#1f2328',
  unreached: 'fill:#f6f8fa,stroke:#818b98,stroke-width:1px,stroke-dasharray:5 4,color:#59636e',
}

// Caps, in characters before escaping (an entity code is at most 9
// characters), so the diagram stays a few KB whatever the names are.
const MAX_NAME = 48
const MAX_OTHER_DIGEST = 20
const MAX_FINGERPRINT = 24

/** How far the run got, node by node. */
export function chainOutcomes(report: RunReport): Record<ChainNode, NodeOutcome> {
  const timings = report.timings?.phases ?? []
  const phaseDone = (name: string) => timings.some((t) => t.phase === name && t.ok)
  const done: Record<ChainNode, boolean> = {
    // The Dataset phase can end well in a run that fails before the report
    // hears of its digest (phases run side by side).
    dataset: report.dataset?.digest !== undefined || phaseDone('Dataset'),
    pipelineRun: report.model !== undefined || phaseDone('Pipeline'),
    model: report.model !== undefined,
    signature: report.provenancePath !== undefined || report.ec !== undefined,
    verdict: report.verdict === 'pass',
  }
  // A node the run went past was made, even when the report lacks its details
  // (a provenance that does not record the dataset digest).
  for (let i = CHAIN_NODES.length - 2; i >= 0; i--) {
    if (done[CHAIN_NODES[i + 1] as ChainNode]) done[CHAIN_NODES[i] as ChainNode] = true
  }
  const failed = failedNodes(report, done)
  const outcomes = {} as Record<ChainNode, NodeOutcome>
  for (const node of CHAIN_NODES) {
    outcomes[node] = done[node] ? 'ok' : failed.has(node) ? 'failed' : 'unreached'
  }
  return outcomes
}

function failedNodes(report: RunReport, done: Record<ChainNode, boolean>): Set<ChainNode> {
  const failed = new Set<ChainNode>()
  if (report.verdict === 'pass') return failed
  for (const node of failedPhases(report).keys()) if (!done[node]) failed.add(node)
  // ec said fail; or an error that no phase timing names (ec gave no report, an
  // untimed step, a bad input): the run stopped at the first node it did not make.
  if (failed.size === 0) failed.add(CHAIN_NODES.find((node) => !done[node]) ?? 'verdict')
  return failed
}

/** The phases that failed, by the node they were working towards. */
function failedPhases(report: RunReport): Map<ChainNode, string[]> {
  const byNode = new Map<ChainNode, string[]>()
  for (const timing of report.timings?.phases ?? []) {
    const node = NODE_OF_PHASE[timing.phase]
    if (timing.ok || node === undefined) continue
    byNode.set(node, [...(byNode.get(node) ?? []), timing.phase])
  }
  return byNode
}

/**
 * The diagram as a ```mermaid block, or '' when the run stopped before it did
 * anything (a bad input): five grey boxes would say nothing the error does not.
 */
export function renderChain(report: RunReport): string {
  if ((report.timings?.phases ?? []).length === 0 && !report.dataset && !report.model) return ''
  const outcomes = chainOutcomes(report)
  const failedBy = failedPhases(report)
  const labels = nodeLabels(report)
  const lines = ['flowchart LR', "  accTitle: How this run's model was made and checked"]
  for (const node of CHAIN_NODES) {
    const outcome = outcomes[node]
    const pieces = [...labels[node]]
    if (outcome === 'failed') {
      const phases = failedBy.get(node)
      if (phases) pieces.push(`${phases.join(', ')} failed`)
      // ec's own outcome (fail, no report) is on the verdict's lines already.
      else if (node !== 'verdict' || report.ec === undefined) pieces.push('the run stopped here')
    } else if (outcome === 'unreached') {
      pieces.push(node === 'verdict' ? 'Enterprise Contract not reached' : 'not reached')
    }
    const [open, close] = SHAPES[node]
    lines.push(`  ${NODE_ID[node]}${open}"${mermaidLabel(pieces)}"${close}`)
  }
  lines.push(`  ${CHAIN_NODES.map((node) => NODE_ID[node]).join(' --> ')}`)
  for (const [outcome, style] of Object.entries(CLASS_DEFS)) {
    lines.push(`  classDef ${outcome} ${style}`)
  }
  for (const outcome of Object.keys(CLASS_DEFS) as NodeOutcome[]) {
    const nodes = CHAIN_NODES.filter((node) => outcomes[node] === outcome)
    if (nodes.length > 0) lines.push(`  class ${nodes.map((n) => NODE_ID[n]).join(',')} ${outcome}`)
  }
  return ['```mermaid', ...lines, '```'].join('\n')
}

/** Mermaid node shapes: a cylinder for the data, a stadium for the verdict. */
const SHAPES: Record<ChainNode, [string, string]> = {
  dataset: ['[(', ')]'],
  pipelineRun: ['[', ']'],
  model: ['[', ']'],
  signature: ['[', ']'],
  verdict: ['([', '])'],
}

/** Each node's lines of text, unescaped: a title, then what the report knows. */
function nodeLabels(report: RunReport): Record<ChainNode, string[]> {
  const dataset = ['Dataset']
  if (report.dataset) {
    const [name, pinned] = splitDigest(report.dataset.url)
    dataset.push(clip(name, MAX_NAME))
    const digest = report.dataset.digest ?? pinned
    dataset.push(digest === undefined ? 'digest not known' : shortDigest(digest))
  }
  const pipelineRun = ['PipelineRun']
  if (report.pipelineRun) pipelineRun.push(clip(report.pipelineRun, MAX_NAME))
  if (report.trainerImage) {
    const [name, digest] = splitDigest(report.trainerImage)
    pipelineRun.push(`trainer ${clip(name, MAX_NAME)}`)
    if (digest !== undefined) pipelineRun.push(shortDigest(digest))
  }
  const model = ['Model']
  if (report.model) {
    model.push(clip(`${report.model.registry}/${report.model.repository}`, MAX_NAME))
    model.push(shortDigest(report.model.digest))
  }
  const signature = ['Signature and attestation']
  const fingerprint = keyFingerprint(report.publicKeyPem)
  if (fingerprint) signature.push(`key ${clip(fingerprint, MAX_FINGERPRINT)}`)
  return { dataset, pipelineRun, model, signature, verdict: verdictLines(report) }
}

function verdictLines(report: RunReport): string[] {
  const title = `Verdict: ${report.verdict.toUpperCase()}`
  const summary = report.ec && report.ec.verdict !== 'error' ? report.ec.summary : undefined
  if (report.verdict === 'pass') {
    const warnings = summary?.warnings.length ?? 0
    return [title, warnings > 0 ? count(warnings, 'warning') : 'no violations']
  }
  if (report.verdict === 'fail') {
    return summary ? [title, count(summary.violations.length, 'violation')] : [title]
  }
  if (report.ec === undefined) return [title]
  if (report.ec.verdict === 'error') return [title, 'ec gave no report']
  return [title, 'the run failed after Enterprise Contract']
}

/**
 * Chains' keyid for the key (`SHA256:…`, as ssh-keygen prints it): what the
 * signatures name. None for a key that does not load; the run said why.
 */
export function keyFingerprint(publicKeyPem: string | undefined): string | undefined {
  if (!publicKeyPem) return undefined
  try {
    return chainsKeyId(publicKeyPem)
  } catch {
    return undefined
  }
}

/** `name@digest` → [name, digest]; a reference without a digest → [reference]. */
function splitDigest(reference: string): [string, string?] {
  const at = reference.lastIndexOf('@')
  return at > 0 ? [reference.slice(0, at), reference.slice(at + 1)] : [reference]
}

/** `sha256:` and the first 12 hex digits: enough to tell digests apart by eye. */
function shortDigest(digest: string): string {
  return /^sha256:[0-9a-f]{64}$/.test(digest)
    ? `${digest.slice(0, 'sha256:'.length + 12)}…`
    : clip(digest, MAX_OTHER_DIGEST)
}

/** Characters a label keeps as they are (the ellipsis is the one clip() adds). */
const PLAIN = /^[A-Za-z0-9 ./@,+=…-]$/

/**
 * The lines of one label, escaped and joined with `<br>` (Mermaid's line
 * break). Every character outside PLAIN becomes an entity code: `"` would end
 * the label, `%%{` start a directive, `<` a tag, `#…;` an entity, and a
 * backtick a Markdown label (or end the fenced block). A colon stays readable
 * unless the line names `style` or `classDef`: Mermaid, before parsing, drops
 * the last `;` of any line matching `style.*:\S*#.*;` (or the same with
 * classDef), which would break the last entity code of the line.
 */
export function mermaidLabel(lines: readonly string[]): string {
  const texts = lines.map((line) =>
    oneLine(line.replace(CONTROL, ''))
      .replace(/\t/g, ' ')
      // Bidi overrides and zero-width characters could make the text read
      // other than it is.
      .replace(/\p{Cf}/gu, ''),
  )
  const keepColon = !/style|classdef/i.test(texts.join(' '))
  const escape = (char: string) =>
    PLAIN.test(char) || (char === ':' && keepColon) ? char : `#${char.codePointAt(0)};`
  return texts.map((text) => Array.from(text, escape).join('')).join('<br>')
}
