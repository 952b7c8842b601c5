/**
 * The iptables chains the node's parts add to this machine: the kubelet's and
 * kube-proxy's (KUBE-*) and the CNI plugins' (CNI-*), for IPv4 and IPv6. The
 * chains there were before the cluster started are noted, and those added
 * since are removed when it stops, together with the rules elsewhere that
 * jump to them; nothing else is touched (Docker's rules stay as they are).
 */
import { run, runChecked } from './procs.js'

const FAMILIES = ['iptables', 'ip6tables'] as const
const TABLES = ['filter', 'nat', 'mangle', 'raw'] as const
/** Only chains with these prefixes are ever removed. */
const OURS = /^(KUBE|CNI)-/

/** `iptables/filter` -> the chains of that table. */
export type ChainSnapshot = Record<string, string[]>

interface TableDump {
  chains: string[]
  rules: string[]
}

/** `<family>-save -t <table>`, or undefined where that family or table is not there. */
async function dump(family: string, table: string): Promise<TableDump | undefined> {
  const result = await run(`${family}-save`, ['-t', table]).catch(() => undefined)
  if (!result || result.code !== 0) return undefined
  const lines = result.stdout.split('\n')
  return {
    chains: lines.filter((l) => l.startsWith(':')).map((l) => l.slice(1).split(' ')[0]!),
    rules: lines.filter((l) => l.startsWith('-A ')),
  }
}

export async function snapshotChains(): Promise<ChainSnapshot> {
  const snapshot: ChainSnapshot = {}
  for (const family of FAMILIES) {
    for (const table of TABLES) {
      const found = await dump(family, table)
      if (found) snapshot[`${family}/${table}`] = found.chains
    }
  }
  return snapshot
}

/**
 * Removes the KUBE- and CNI- chains that are not in `before`, and the rules in
 * other chains that jump to them. Returns `family/table/chain` of each.
 */
export async function removeAddedChains(before: ChainSnapshot): Promise<string[]> {
  const removed: string[] = []
  for (const family of FAMILIES) {
    for (const table of TABLES) {
      const now = await dump(family, table)
      if (!now) continue
      const had = new Set(before[`${family}/${table}`] ?? [])
      const added = new Set(now.chains.filter((c) => OURS.test(c) && !had.has(c)))
      if (added.size === 0) continue
      // One iptables-restore transaction: first the jumps into our chains
      // from chains that stay, then our chains' own rules, then the chains.
      const script = [`*${table}`]
      for (const rule of now.rules) {
        const [, chain, ...spec] = rule.split(' ')
        if (added.has(chain!)) continue
        const target = /(?:^| )-[jg] (\S+)/.exec(spec.join(' '))?.[1]
        if (target && added.has(target)) script.push(`-D ${chain} ${spec.join(' ')}`)
      }
      for (const chain of added) script.push(`-F ${chain}`)
      for (const chain of added) script.push(`-X ${chain}`)
      script.push('COMMIT', '')
      await runChecked(`${family}-restore`, ['--noflush'], { input: script.join('\n') })
      for (const chain of added) removed.push(`${family}/${table}/${chain}`)
    }
  }
  return removed
}
