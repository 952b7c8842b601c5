/**
 * The summary's picture of where the time went: each phase as a bar of a
 * Mermaid Gantt chart on the run's own clock (GitHub draws it in the reader's
 * time zone), the critical path's bars marked `crit`.
 */
import { formatDuration } from '../duration.js'
import type { TimingsDocument } from '../timing.js'

/** A ```mermaid gantt block, or '' when no phase ran. */
export function ganttChart(timings: TimingsDocument): string {
  if (timings.phases.length === 0) return ''
  const origin = Date.parse(timings.startedAt)
  const critical = new Set(timings.criticalPath.phases)
  const bars = timings.phases.map((p, i) => {
    const tag = critical.has(p.phase) ? 'crit' : 'done'
    // Mermaid ends a task's name at ':' and a statement at ';' or '#'.
    const name = `${p.phase}${p.ok ? '' : ' (failed)'}`.replace(/[:;#]/g, ' ')
    // At least 1 ms long: a phase of 0 ms still gets a bar to hover.
    const end = Math.max(p.end, p.start + 1)
    return `  ${name}:${tag}, phase${i}, ${origin + p.start}, ${origin + end}`
  })
  return [
    '```mermaid',
    'gantt',
    '  dateFormat x',
    '  axisFormat %H:%M:%S',
    '  todayMarker off',
    ...bars,
    '```',
  ].join('\n')
}

/** One sentence on the critical path: what the run's time is made of. */
export function criticalPathLine(timings: TimingsDocument): string {
  const { criticalPath, wallMs, sequentialMs } = timings
  if (criticalPath.phases.length === 0) return ''
  return (
    `The run took ${formatDuration(wallMs)}. Its critical path, the phases it waited for one ` +
    `after another, took ${formatDuration(criticalPath.ms)}: ${criticalPath.phases.join(' → ')} ` +
    `(the red bars). All phases one after another would take ${formatDuration(sequentialMs)}.`
  )
}
