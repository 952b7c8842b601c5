#!/usr/bin/env node
/**
 * Stand-in for `ec validate image` (Conforma CLI v0.9.115), for the tests of
 * the action's verdict gate only. Real ec cannot be used here: the Go module
 * proxy answers 403 for github.com/conforma/cli (and enterprise-contract/ec-cli)
 * at every version, so it cannot be built, and its release binaries are on
 * GitHub, which these machines cannot reach. The suite serves this file as the
 * release binary `ec_<os>_<arch>` (test/harness/internet.ts), so the action
 * downloads, checks and caches it as it would ec.
 *
 * What it does:
 * - reads its command line as ec's parser (cobra/pflag) reads `ec validate
 *   image`: ec's flag names, shorthands and value types, `--flag value` and
 *   `--flag=value`, booleans as `--flag` or `--flag=false`, string lists cut at
 *   commas, Go durations; a wrong one ends as ec ends, `Error: ...` on stderr
 *   and exit 1;
 * - checks what ec needs before it validates anything: an image reference, a
 *   readable PEM public key, a readable policy file, `--output` targets of the
 *   form `format=path?options`;
 * - writes, to every `json=<path>` target (stdout for a bare `json`), the bytes of
 *   one report real ec printed in its own acceptance tests: the file of
 *   test/fixtures/ec/ that $EC_STAND_IN_REPORT names, chosen by the test;
 * - exits with ec's code for that report: 1 (and an `Error:` line) when the
 *   report failed and --strict is true (ec's default), else 0.
 *
 * With $EC_STAND_IN_FAULT set it plays a broken ec instead (playFault).
 *
 * What it does not do: it judges nothing. It does not fetch the image, check
 * a signature or an attestation, read or evaluate the policy, or use the rule
 * data: the verdict is the replayed report's, and that report names the image
 * and ec version of ec's test scenario (`${REGISTRY}/acceptance/...`), not
 * the image it was asked about. --info and --show-successes do not change it
 * (each fixture is the output of one scenario's own command line). Flags of ec
 * the action never passes (keyless certificates, snapshots, VSAs, other
 * output formats, ...) are recognised and refused with exit 2, not played.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'

/** ec's flags for `validate image` (and its parents'), by name: type, shorthand, played or not. */
const FLAGS = {
  // What the action passes: played.
  image: { type: 'string', short: 'i', played: true },
  'public-key': { type: 'string', short: 'k', played: true },
  policy: { type: 'string', short: 'p', played: true },
  'ignore-rekor': { type: 'bool', played: true },
  info: { type: 'bool', played: true },
  'show-successes': { type: 'bool', played: true },
  strict: { type: 'bool', short: 's', played: true },
  output: { type: 'stringSlice', played: true },
  timeout: { type: 'duration', played: true },
  // Known to ec, never passed by the action: accepted by the parser, refused after.
  'rekor-url': { type: 'string', short: 'r' },
  'skip-image-sig-check': { type: 'bool' },
  'skip-att-sig-check': { type: 'bool' },
  'certificate-identity': { type: 'string' },
  'certificate-identity-regexp': { type: 'string' },
  'certificate-oidc-issuer': { type: 'string' },
  'certificate-oidc-issuer-regexp': { type: 'string' },
  'file-path': { type: 'string', short: 'f' },
  'json-input': { type: 'string', short: 'j' },
  images: { type: 'string' },
  'output-file': { type: 'string', short: 'o' },
  'effective-time': { type: 'string' },
  'allow-past-effective-time': { type: 'bool' },
  'extra-rule-data': { type: 'stringSlice' },
  snapshot: { type: 'string' },
  'no-color': { type: 'bool' },
  color: { type: 'bool' },
  workers: { type: 'int' },
  'filter-type': { type: 'string' },
  vsa: { type: 'bool' },
  'attestation-format': { type: 'string' },
  'vsa-signing-key': { type: 'string' },
  'vsa-public-key': { type: 'string' },
  'vsa-upload': { type: 'stringSlice' },
  'vsa-expiration': { type: 'duration' },
  'attestation-output-dir': { type: 'string' },
  'show-warnings': { type: 'bool' },
  'show-policy-docs-link': { type: 'bool' },
  quiet: { type: 'bool' },
  verbose: { type: 'bool' },
  debug: { type: 'bool' },
  logfile: { type: 'string' },
  'retry-max-wait': { type: 'duration' },
  'retry-max-retry': { type: 'int' },
  'retry-duration': { type: 'duration' },
  'retry-factor': { type: 'float' },
  'retry-jitter': { type: 'float' },
  kubeconfig: { type: 'string' },
}
/** ec's report formats; the stand-in writes only `json`. */
const OUTPUT_FORMATS = ['json', 'yaml', 'text', 'appstudio', 'summary', 'summary-markdown'].concat([
  'junit',
  'attestation',
  'policy-input',
  'vsa',
  'hacbs',
])

/** Ends as ec does on an error: cobra prints `Error: ...`, ec exits 1. */
function fail(message) {
  process.stderr.write(`Error: ${message}\n`)
  process.exit(1)
}

/** A misuse of the stand-in itself, not something ec would say. */
function refuse(message) {
  process.stderr.write(`ec stand-in: ${message}\n`)
  process.exit(2)
}

/** Go's time.ParseDuration syntax: "0", or signed number+unit sequences like 1h30m or 2.5s. */
const DURATION = /^[-+]?(0|((\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h))+)$/
const BOOL = ['1', 't', 'T', 'TRUE', 'true', 'True', '0', 'f', 'F', 'FALSE', 'false', 'False']

function parseValue(name, spec, raw) {
  const invalid = (why) => fail(`invalid argument "${raw}" for "--${name}" flag: ${why}`)
  switch (spec.type) {
    case 'bool':
      if (!BOOL.includes(raw)) invalid(`strconv.ParseBool: parsing "${raw}": invalid syntax`)
      return ['1', 't', 'T', 'TRUE', 'true', 'True'].includes(raw)
    case 'duration':
      if (!DURATION.test(raw)) invalid(`time: invalid duration "${raw}"`)
      return raw
    case 'int':
      if (!/^[-+]?\d+$/.test(raw)) invalid(`strconv.ParseInt: parsing "${raw}": invalid syntax`)
      return Number(raw)
    case 'float':
      if (Number.isNaN(Number(raw)) || raw.trim() === '') {
        invalid(`strconv.ParseFloat: parsing "${raw}": invalid syntax`)
      }
      return Number(raw)
    case 'stringSlice':
      // pflag reads a string list as one CSV record: a comma always cuts.
      return raw === '' ? [] : raw.split(',')
    default:
      return raw
  }
}

/** pflag's long and short forms; a repeated list flag appends, any other flag's last value wins. */
function parseFlags(argv) {
  const values = {}
  const positional = []
  const byShort = Object.fromEntries(
    Object.entries(FLAGS)
      .filter(([, spec]) => spec.short)
      .map(([name, spec]) => [spec.short, name]),
  )
  const set = (name, raw) => {
    const spec = FLAGS[name]
    const value = parseValue(name, spec, raw)
    values[name] = spec.type === 'stringSlice' ? [...(values[name] ?? []), ...value] : value
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === '--') {
      positional.push(...argv.slice(i + 1))
      break
    }
    if (arg.startsWith('--')) {
      const [name, inline] = arg.slice(2).split(/=(.*)/s)
      const spec = FLAGS[name]
      if (!spec) fail(`unknown flag: --${name}`)
      if (inline !== undefined) set(name, inline)
      else if (spec.type === 'bool') set(name, 'true')
      else if (i + 1 < argv.length) set(name, argv[++i])
      else fail(`flag needs an argument: --${name}`)
    } else if (arg.startsWith('-') && arg.length > 1) {
      const letter = arg[1]
      const name = byShort[letter]
      if (!name) fail(`unknown shorthand flag: '${letter}' in ${arg}`)
      const rest = arg.slice(2)
      if (rest !== '') set(name, rest.startsWith('=') ? rest.slice(1) : rest)
      else if (FLAGS[name].type === 'bool') set(name, 'true')
      else if (i + 1 < argv.length) set(name, argv[++i])
      else fail(`flag needs an argument: '${letter}' in -${letter}`)
    } else {
      positional.push(arg)
    }
  }
  return { values, positional }
}

/** `[registry/]repository[:tag][@sha256:<64 hex>]`, the shapes go-containerregistry parses. */
const REFERENCE =
  /^(?:[a-z0-9.-]+(?::\d+)?\/)?[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$/

function readable(what, file) {
  try {
    return readFileSync(file, 'utf8')
  } catch (err) {
    fail(`${what} ${file} cannot be read: ${err.message}`)
  }
}

/** The fixture to replay: a JSON report real ec printed, kept in test/fixtures/ec/. */
function replayedReport() {
  const file = process.env.EC_STAND_IN_REPORT
  if (!file) refuse('EC_STAND_IN_REPORT is not set: name the report of test/fixtures/ec/ to replay')
  const inFixtures = path.dirname(path.resolve(file)).endsWith(path.join('test', 'fixtures', 'ec'))
  if (!inFixtures || !file.endsWith('.json')) {
    refuse(
      `${file} is not a report of test/fixtures/ec/: only reports real ec printed are replayed`,
    )
  }
  const text = readFileSync(file, 'utf8')
  return { file, text, success: JSON.parse(text).success === true }
}

/**
 * The faults of a broken ec, for the verdict gate's fault tests only, named
 * by $EC_STAND_IN_FAULT: `crash` (exits 2 before writing a report), `hang`
 * (never ends, until it is stopped), `truncate` (writes half the report).
 * None of them imitates how real ec fails; each says it is the stand-in.
 */
function playFault(fault) {
  if (fault === undefined || fault === '') return undefined
  if (fault === 'crash') {
    process.stderr.write(
      'ec stand-in: crashing before any report, as EC_STAND_IN_FAULT=crash asks\n',
    )
    process.exit(2)
  }
  if (fault === 'hang') {
    process.stderr.write('ec stand-in: hanging until stopped, as EC_STAND_IN_FAULT=hang asks\n')
    setInterval(() => undefined, 60_000)
    return fault
  }
  if (fault === 'truncate') return fault
  refuse(`EC_STAND_IN_FAULT=${fault} is not a fault the stand-in plays (crash, hang, truncate)`)
}

function main() {
  const [group, command, ...rest] = process.argv.slice(2)
  if (group !== 'validate' || command !== 'image') {
    refuse(`plays only \`ec validate image\`, not \`ec ${process.argv.slice(2).join(' ')}\``)
  }
  const { values } = parseFlags(rest)
  for (const name of Object.keys(values)) {
    if (!FLAGS[name].played) refuse(`--${name} is a flag of ec the stand-in does not play`)
  }

  const image = values.image ?? fail('no image to validate: --image is missing')
  if (!REFERENCE.test(image)) fail(`--image ${image} is not an image reference`)
  const key = values['public-key']
  if (key !== undefined && !/-----BEGIN PUBLIC KEY-----/.test(readable('public key', key))) {
    fail(`public key ${key} is not a PEM public key`)
  }
  if (values.policy !== undefined) readable('policy configuration', values.policy)

  const targets = (values.output ?? []).map((given) => {
    const [formatAndPath] = given.split('?')
    const [format, file = ''] = formatAndPath.split(/=(.*)/s)
    if (!OUTPUT_FORMATS.includes(format)) fail(`invalid output format: ${format}`)
    if (format !== 'json') refuse(`output format ${format} is not played (only json)`)
    return file
  })

  // Without --output, ec prints its text report, which is not played.
  if (targets.length === 0) refuse('no --output json=...: only the JSON report is played')

  const report = replayedReport()
  const fault = playFault(process.env.EC_STAND_IN_FAULT)
  if (fault === 'hang') return
  process.stderr.write(
    `ec stand-in: replaying ${path.basename(report.file)}, a report real ec printed; nothing was validated\n`,
  )
  // Cut short: the first half of the report's bytes, then a clean exit.
  const text = fault === 'truncate' ? report.text.slice(0, report.text.length / 2) : report.text
  for (const file of targets) {
    if (file === '') process.stdout.write(text)
    else writeFileSync(file, text)
  }
  if (fault === 'truncate') return
  if (values.strict !== false && !report.success) fail('the policy is not met (--strict)')
}

main()
