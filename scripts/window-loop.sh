#!/usr/bin/env bash
# Run the fault-window integration test (tests/it/window.rs) N times per
# broker locally and print the pass count. Not for CI (CI runs 2).
#   scripts/window-loop.sh [N]   (default 20)
set -u
n="${1:-20}"
cd "$(dirname "$0")/.."
pass=0; fail=0
for i in $(seq 1 "$n"); do
  for b in on_the_embedded_broker on_mosquitto; do
    if MQTT_CHAOS_WINDOW_RUNS=1 cargo test -q --test tests "window::through_a_toxiproxy_that_closes_before_it_answers::$b" >"/tmp/window-loop-$b-$i.log" 2>&1; then
      pass=$((pass + 1))
    else
      fail=$((fail + 1)); echo "run $i $b failed: /tmp/window-loop-$b-$i.log"
    fi
  done
done
echo "window loop: $pass passed, $fail failed (of $((2 * n)))"
