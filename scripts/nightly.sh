#!/usr/bin/env bash
# One night of a nightly CI (docs/nightly.md): run a scenario, compare the run
# against the last good one (the baseline), write a Markdown job summary, and
# keep the run as the next baseline only if it passed without a regression.
#
#   scripts/nightly.sh [OPTIONS] SCENARIO [--] [RUN_ARGS...]
#
# RUN_ARGS go to `mqtt-chaos run` (e.g. --broker mosquitto --seed 7); --out is
# the script's own.
#
# Options:
#   --baseline DIR      the baseline directory: a copy of the last good run
#                       (default $MQTT_CHAOS_BASELINE_DIR, else nightly-baseline)
#   --out DIR           where the run writes its report (default
#                       $MQTT_CHAOS_NIGHTLY_OUT, else reports/nightly-<UTC time>);
#                       must not hold a report yet
#   --threshold F=L     passed to `mqtt-chaos compare` (repeatable)
#   --reset-baseline    do not compare: a passing run becomes the baseline
#                       (after a deliberate change of the scenario)
#   -h, --help
#
# Environment:
#   MQTT_CHAOS_BIN            the mqtt-chaos binary (default: mqtt-chaos on PATH)
#   MQTT_CHAOS_BASELINE_DIR   as --baseline
#   MQTT_CHAOS_NIGHTLY_OUT    as --out
#   GITHUB_STEP_SUMMARY       where the summary is appended (GitHub Actions);
#                             unset: the summary is printed on stdout
#
# Written into the run directory: report.* (the run), compare.md and
# compare.json (against the baseline), nightly.md (the summary).
#
# Exit codes (the most severe wins, in this order):
#   4  the run errored: verdict error, or it could not start (environment)
#   3  the run failed: an SLO was breached (verdict fail)
#   1  the run passed but regressed against the baseline
#   0  the run passed, no regression: it is the new baseline
#   2  usage: bad options, a bad scenario or threshold, a baseline that cannot
#      be read or compared (another scenario: see --reset-baseline)
#   130 interrupted
# Only exit 0 promotes the run to the baseline.
set -euo pipefail

readonly EXIT_OK=0 EXIT_REGRESSED=1 EXIT_USAGE=2 EXIT_FAILED=3 EXIT_ERRORED=4 EXIT_INTERRUPTED=130

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
}

die_usage() {
  echo "nightly: $*" >&2
  echo "nightly: see scripts/nightly.sh --help" >&2
  exit "$EXIT_USAGE"
}

bin="${MQTT_CHAOS_BIN:-mqtt-chaos}"
baseline="${MQTT_CHAOS_BASELINE_DIR:-nightly-baseline}"
out="${MQTT_CHAOS_NIGHTLY_OUT:-}"
reset=0
thresholds=()
scenario=""

while [ $# -gt 0 ]; do
  case "$1" in
    -h | --help)
      usage
      exit "$EXIT_OK"
      ;;
    --baseline)
      [ $# -ge 2 ] || die_usage "--baseline needs a directory"
      baseline="$2"
      shift 2
      ;;
    --baseline=*)
      baseline="${1#*=}"
      shift
      ;;
    --out)
      [ $# -ge 2 ] || die_usage "--out needs a directory"
      out="$2"
      shift 2
      ;;
    --out=*)
      out="${1#*=}"
      shift
      ;;
    --threshold)
      [ $# -ge 2 ] || die_usage "--threshold needs FIGURE=LIMIT"
      thresholds+=(--threshold "$2")
      shift 2
      ;;
    --threshold=*)
      thresholds+=(--threshold "${1#*=}")
      shift
      ;;
    --reset-baseline)
      reset=1
      shift
      ;;
    --)
      shift
      break
      ;;
    -*)
      die_usage "unknown option $1 (options go before SCENARIO; run options after it)"
      ;;
    *)
      scenario="$1"
      shift
      break
      ;;
  esac
done
if [ -z "$scenario" ]; then
  [ $# -gt 0 ] || die_usage "no SCENARIO given"
  scenario="$1"
  shift
fi
if [ "${1:-}" = "--" ]; then
  shift
fi
run_args=("$@")
for a in "${run_args[@]+"${run_args[@]}"}"; do
  case "$a" in
    --out | --out=*) die_usage "give --out before SCENARIO: the script names the run directory" ;;
  esac
done

[ -f "$scenario" ] || die_usage "$scenario: no such scenario file"
command -v "$bin" >/dev/null 2>&1 || die_usage "$bin: no such program (set MQTT_CHAOS_BIN)"
[ -n "$baseline" ] || die_usage "the baseline directory is empty (--baseline, MQTT_CHAOS_BASELINE_DIR)"
baseline="${baseline%/}"
if [ -z "$out" ]; then
  out="reports/nightly-$(date -u +%Y%m%dT%H%M%SZ)"
fi
out="${out%/}"
[ "$out" != "$baseline" ] || die_usage "--out and --baseline are the same directory"
[ ! -e "$out/report.json" ] || die_usage "$out already holds a report; give a fresh --out"

have_baseline=0
if [ "$reset" -eq 0 ] && [ -f "$baseline/report.json" ]; then
  have_baseline=1
  # Fail fast, before the run: the baseline is readable and the thresholds
  # are good (the baseline against itself never regresses).
  if ! "$bin" compare "${thresholds[@]+"${thresholds[@]}"}" "$baseline" "$baseline" >/dev/null; then
    die_usage "the baseline $baseline or a --threshold is bad (see above)"
  fi
fi

# The run. Its exit code is its verdict: 0 pass, 1 fail, 3 error (or the
# environment failed before a report), 2 usage, 130 interrupted.
mkdir -p "$(dirname "$out")"
run_code=0
"$bin" run "$scenario" --out "$out" "${run_args[@]+"${run_args[@]}"}" || run_code=$?

case "$run_code" in
  0) verdict=pass ;;
  1) verdict=fail ;;
  2) exit "$EXIT_USAGE" ;;
  130) verdict=interrupted ;;
  *) verdict=error ;;
esac
if [ ! -f "$out/report.json" ]; then
  # Nothing was measured: the environment failed before the run started.
  mkdir -p "$out"
  verdict=error
fi

# The comparison with the baseline.
compare_code=none
if [ "$have_baseline" -eq 1 ] && [ -f "$out/report.json" ]; then
  compare_code=0
  "$bin" compare --format md "${thresholds[@]+"${thresholds[@]}"}" "$baseline" "$out" \
    >"$out/compare.md" 2>"$out/compare.stderr" || compare_code=$?
  "$bin" compare --format json "${thresholds[@]+"${thresholds[@]}"}" "$baseline" "$out" \
    >"$out/compare.json" 2>/dev/null || true
  if [ "$compare_code" -ne 0 ] && [ "$compare_code" -ne 1 ]; then
    cat "$out/compare.stderr" >&2
  fi
  # Its warnings are in compare.md too; keep the file only when it says more.
  if [ ! -s "$out/compare.stderr" ]; then
    rm -f "$out/compare.stderr"
  fi
fi

# The outcome, most severe first.
promote=0
if [ "$verdict" = error ]; then
  code=$EXIT_ERRORED
  outcome="the run errored: it cannot vouch for its figures"
elif [ "$verdict" = interrupted ]; then
  code=$EXIT_INTERRUPTED
  outcome="the run was interrupted"
elif [ "$verdict" = fail ]; then
  code=$EXIT_FAILED
  outcome="the run failed: an SLO was breached"
elif [ "$compare_code" = 1 ]; then
  code=$EXIT_REGRESSED
  outcome="the run passed but regressed against the baseline"
elif [ "$compare_code" = none ] || [ "$compare_code" = 0 ]; then
  code=$EXIT_OK
  promote=1
  if [ "$compare_code" = none ]; then
    outcome="the run passed (no baseline to compare with)"
  else
    outcome="the run passed, no regression"
  fi
else
  code=$EXIT_USAGE
  outcome="the run passed but cannot be compared with the baseline (another scenario? see --reset-baseline)"
fi

if [ "$promote" -eq 1 ]; then
  # Copy first, then swap: an interrupted copy leaves the old baseline.
  staging="$baseline.new.$$"
  rm -rf "$staging"
  mkdir -p "$(dirname "$baseline")"
  cp -R "$out" "$staging"
  rm -f "$staging/.mqtt-chaos.lock"
  rm -rf "$baseline"
  mv "$staging" "$baseline"
  kept="promoted to the baseline \`$baseline\`"
else
  kept="not promoted: the baseline \`$baseline\` stays"
fi

{
  echo "## mqtt-chaos nightly: $outcome"
  echo
  echo "Scenario \`$scenario\`, run \`$out\`: $kept (exit $code)."
  echo
  if [ -s "$out/compare.md" ]; then
    cat "$out/compare.md"
  elif [ -f "$out/report.md" ]; then
    cat "$out/report.md"
  else
    echo "No report was written; the run's own output above says why."
  fi
} >"$out/nightly.md"

if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
  cat "$out/nightly.md" >>"$GITHUB_STEP_SUMMARY"
else
  cat "$out/nightly.md"
fi
echo "nightly: $outcome; $kept (exit $code)" >&2
exit "$code"
