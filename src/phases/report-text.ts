/**
 * Plain-text helpers for what the report shows a person (the summary's
 * Markdown and its Mermaid diagram): each format escapes on top of these.
 */

/** Controls other than tab and newline: invisible in a page, confusing in a terminal. */
// eslint-disable-next-line no-control-regex
export const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g

/** At most `max` characters (code points), the last one an ellipsis when cut. */
export function clip(text: string, max: number): string {
  const chars = Array.from(text)
  return chars.length <= max ? text : `${chars.slice(0, max - 1).join('')}…`
}

/** Line breaks, with the blanks around them, as one space. */
export function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, ' ')
}

/** `1 violation`, `3 violations`. */
export function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`
}
