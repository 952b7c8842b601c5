#!/usr/bin/env bash
# Checks a model image against the EC policy by hand, the way the action does:
# ec verifies the image signature and the Chains attestations with the public
# key (no Rekor: Chains runs with transparency off), then runs policy/rules.
# The rules read SLSA v0.2 provenance (Chains format slsa/v1, as the action
# configures it) and SLSA v1 (slsa/v2alpha3, slsa/v2alpha4), so an image from
# another Chains setup can be checked too.
# Exit status is ec's: 0 passed, 1 violations or an error (see the report).
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: policy/check.sh [options] IMAGE PUBLIC_KEY [CONFIG]

  IMAGE       the model to check, best by digest: registry/repository@sha256:<hex>
  PUBLIC_KEY  the cosign public key (PEM file) the signature and attestations
              must verify with, or an ec key reference such as k8s://ns/secret
  CONFIG      ec policy config; default policy/config.yaml, run from the
              repository root. Relative paths inside a CONFIG you give are
              resolved by ec against the current directory.

Options (rule data; each replaces the same key of the CONFIG's ruleData):
  --allowed-prefix P  allow datasets whose reference starts with P, e.g.
                      quay.io/acme/ (repeatable; allowed_dataset_prefixes).
                      Without any, the CONFIG must set them or dataset.permitted fails.
  --min-accuracy X    lowest accepted test accuracy, 0 to 1 (min_accuracy)
Other options:
  --report FILE       where ec writes its JSON report (default ./ec-report.json)
  --ec PATH           the ec binary (default $EC, else ec on PATH)
  -h, --help          show this help
EOF
}

die() {
  printf 'check.sh: %s\n' "$*" >&2
  exit 2
}
bad_usage() {
  printf 'check.sh: %s\n\n' "$*" >&2
  usage >&2
  exit 2
}

# need_value OPTION REMAINING_ARG_COUNT: an option's value must follow it.
need_value() { [ "$2" -ge 2 ] || bad_usage "$1 needs a value"; }

# An absolute path, without requiring the file to exist yet.
absolute() {
  case $1 in
    /*) printf '%s' "$1" ;;
    *) printf '%s/%s' "$PWD" "$1" ;;
  esac
}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ec=${EC:-ec}
report='ec-report.json'
prefixes=()
min_accuracy=
positional=()

while [ $# -gt 0 ]; do
  case $1 in
    -h | --help)
      usage
      exit 0
      ;;
    --allowed-prefix)
      need_value "$1" $#
      prefixes+=("$2")
      shift 2
      ;;
    --allowed-prefix=*)
      prefixes+=("${1#*=}")
      shift
      ;;
    --min-accuracy)
      need_value "$1" $#
      min_accuracy=$2
      shift 2
      ;;
    --min-accuracy=*)
      min_accuracy=${1#*=}
      shift
      ;;
    --report)
      need_value "$1" $#
      report=$2
      shift 2
      ;;
    --report=*)
      report=${1#*=}
      shift
      ;;
    --ec)
      need_value "$1" $#
      ec=$2
      shift 2
      ;;
    --ec=*)
      ec=${1#*=}
      shift
      ;;
    --)
      shift
      positional+=("$@")
      break
      ;;
    -*) bad_usage "unknown option $1" ;;
    *)
      positional+=("$1")
      shift
      ;;
  esac
done

[ ${#positional[@]} -ge 2 ] || bad_usage 'IMAGE and PUBLIC_KEY are required'
[ ${#positional[@]} -le 3 ] || bad_usage "too many arguments: ${positional[*]:3}"
image=${positional[0]}
key=${positional[1]}
config=${positional[2]:-}

[ -n "$image" ] || bad_usage 'IMAGE is empty'
case $image in
  *@sha256:*) ;;
  *) printf 'check.sh: note: %s is not pinned by digest; ec checks whatever it points to now\n' "$image" >&2 ;;
esac

# ec reads a key reference (k8s://, env://, ...) itself; a file is made absolute
# because ec may run from the repository root below.
case $key in
  *://*) ;;
  *)
    [ -f "$key" ] || die "public key $key: no such file"
    key=$(absolute "$key")
    ;;
esac

run_dir=$PWD
if [ -n "$config" ]; then
  [ -f "$config" ] || die "policy config $config: no such file"
  # ec takes a file as a config only with one of these extensions.
  case $config in
    *.yaml | *.yml | *.json) ;;
    *) die "policy config $config: name it *.yaml, *.yml or *.json (ec reads other names as inline text)" ;;
  esac
  config=$(absolute "$config")
else
  # config.yaml names ./policy/rules, which ec resolves against its working directory.
  config=$root/policy/config.yaml
  run_dir=$root
fi

report=$(absolute "$report")
# ec splits --output at commas and reads "?..." as format options.
case $report in
  *,* | *\?*) die "report path $report: a comma or ? would be misread by ec's --output" ;;
esac

rule_data=()
if [ -n "$min_accuracy" ]; then
  [[ $min_accuracy =~ ^(0(\.[0-9]+)?|1(\.0+)?|\.[0-9]+)$ ]] ||
    bad_usage "--min-accuracy $min_accuracy: give a number from 0 to 1, e.g. 0.9"
  rule_data+=(--extra-rule-data "min_accuracy=$min_accuracy")
fi

tmp=
trap '[ -z "$tmp" ] || rm -rf "$tmp"' EXIT
if [ ${#prefixes[@]} -gt 0 ]; then
  # A list cannot go inline: ec splits the flag's value at commas. A value naming
  # a .json file is read from it instead, and the rules parse that text as a list.
  tmp=$(mktemp -d)
  case $tmp in *,*) die "temporary directory $tmp has a comma in its path; set TMPDIR" ;; esac
  json=
  for prefix in "${prefixes[@]}"; do
    # Reference characters only, so the list needs no JSON escaping.
    [[ $prefix =~ ^[A-Za-z0-9._:/@-]+$ ]] ||
      bad_usage "--allowed-prefix '$prefix': use registry/repository characters only (letters, digits, . _ : / @ -)"
    json+="${json:+, }\"$prefix\""
  done
  printf '[%s]\n' "$json" >"$tmp/allowed_dataset_prefixes.json"
  rule_data+=(--extra-rule-data "allowed_dataset_prefixes=$tmp/allowed_dataset_prefixes.json")
else
  printf 'check.sh: note: no --allowed-prefix; dataset.permitted fails unless %s sets allowed_dataset_prefixes\n' "$config" >&2
fi

command -v "$ec" >/dev/null || die "ec not found ($ec): install it from https://github.com/conforma/cli/releases or pass --ec PATH"
# A path to ec must survive the change of directory below.
case $ec in */*) ec=$(absolute "$ec") ;; esac

args=(
  validate image
  --image "$image"
  --public-key "$key"
  --policy "$config"
  --ignore-rekor
  --info
  --show-successes
  --output "json=$report"
  --output text
  "${rule_data[@]}"
)
# A report left from an earlier run must not pass for this run's.
mkdir -p "$(dirname "$report")"
rm -f "$report"
status=0
(cd "$run_dir" && "$ec" "${args[@]}") || status=$?
if [ -f "$report" ]; then
  printf 'check.sh: report in %s\n' "$report" >&2
else
  printf 'check.sh: ec wrote no report: it could not check the image (see above)\n' >&2
fi
exit "$status"
