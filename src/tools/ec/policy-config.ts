/**
 * Rule data for ec's policies, carried in a copy of the policy config.
 *
 * ec's `--extra-rule-data key=value` cannot carry the action's rule data:
 * the flag is a comma-separated list (a value with a comma is cut in two),
 * the value reaches Rego as a string whatever it looks like (no lists, no
 * numbers), and a value that looks like a URL or a .json/.yaml path is
 * fetched or read instead. A source's `ruleData` in the config takes any JSON
 * value, so the action writes a copy of the user's config with the entries
 * added to every source, as `--extra-rule-data` would, and points ec at it.
 * The user's file is only read.
 */
import { readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { parse } from 'yaml'
import { UserError } from '../../errors.js'
import { isRecord } from '../../json.js'

/** Rule data entries by name; ec gives a source's `ruleData` to Rego as `data.rule_data__configuration__`. */
export type RuleData = Readonly<Record<string, unknown>>

/**
 * Writes `<dir>/<name>.rule-data.json`: the policy config at `policyPath`
 * (YAML or JSON; an EnterpriseContractPolicy resource or its bare spec) with
 * `ruleData` merged into each source's `ruleData`, an entry given here
 * replacing one of the same name. Returns the copy's path.
 */
export async function writePolicyWithRuleData(
  policyPath: string,
  ruleData: RuleData,
  dir: string,
): Promise<string> {
  let doc: unknown
  try {
    // YAML 1.1, as ec reads it (sigs.k8s.io/yaml): `yes` and `on` are true there.
    doc = parse(await readFile(policyPath, 'utf8'), { version: '1.1' })
  } catch (err) {
    throw new UserError(`policy config ${policyPath} cannot be read: ${(err as Error).message}`, {
      cause: err,
    })
  }
  if (!isRecord(doc)) throw new UserError(`policy config ${policyPath} is not a YAML/JSON object`)
  // ec reads a resource (apiVersion + spec) by its spec, anything else as a spec.
  const spec = typeof doc.apiVersion === 'string' && isRecord(doc.spec) ? doc.spec : doc
  const sources = spec.sources
  if (!Array.isArray(sources) || sources.length === 0 || !sources.every(isRecord)) {
    throw new UserError(
      `policy config ${policyPath} has no "sources" list: rule data is given to a policy source`,
    )
  }
  for (const source of sources) {
    const existing = source.ruleData ?? {}
    if (!isRecord(existing)) {
      throw new UserError(`policy config ${policyPath}: a source's "ruleData" is not an object`)
    }
    source.ruleData = { ...existing, ...ruleData }
  }
  // ec takes a file as a config only with a .json/.yaml/.yml extension.
  const name = path.basename(policyPath).replace(/\.(ya?ml|json)$/i, '')
  const copy = path.join(dir, `${name}.rule-data.json`)
  await writeFile(copy, `${JSON.stringify(doc, null, 2)}\n`)
  return copy
}
