#!/usr/bin/env bash
# demo_postcopy.sh BUILD_DIR — what `make demo-postcopy` runs: a guest that
# dirties its RAM faster than the link carries it. Precopy alone never
# converges (migperf cancels it after DEMO_PRECOPY_TIME seconds); the same
# migration with postcopy completes: the source stops, the destination runs
# at once and the rest of RAM follows in the background (page requests
# first). Both runs use migperf (docs/migperf.md) between two local migds.
# Environment: DEMO_MEM (guest RAM, 512M), DEMO_DIRTY_RATE (MB/s the vCPUs
# write, 200), DEMO_LINK (max-bandwidth of precopy, 64M),
# DEMO_PRECOPY_TIME (seconds precopy may try, 10), DEMO_PREEMPT (on/off).
# Exit status 0 when precopy did not converge and postcopy completed with
# equal RAM digests on both sides.
set -euo pipefail

BUILD=${1:-build}
MEM=${DEMO_MEM:-512M}
RATE=${DEMO_DIRTY_RATE:-200}
LINK=${DEMO_LINK:-64M}
PRECOPY_TIME=${DEMO_PRECOPY_TIME:-10}
PREEMPT=${DEMO_PREEMPT:-off}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

COMMON=(--build "$BUILD" --mem "$MEM" --cpus 2 --dirty-rate "$RATE"
	--pattern random --working-set "$MEM" --max-bandwidth "$LINK"
	--max-iters 1000)

field() { # field FILE EXPR: python expression over the report's result
	python3 -c "import json, sys; r = json.load(open(sys.argv[1]))['result']; print($2)" "$1"
}

echo "== 1. precopy only: the guest writes $RATE MB/s, the link carries $LINK/s"
"$BUILD/migperf" run "${COMMON[@]}" --max-time "$PRECOPY_TIME" \
	-o "$TMP/precopy.json" || true
if [[ $(field "$TMP/precopy.json" "r.get('status')") == completed ]]; then
	echo "demo: precopy converged; raise DEMO_DIRTY_RATE or lower DEMO_LINK" >&2
	exit 1
fi

echo
echo "== 2. the same guest with postcopy (migrate-start-postcopy after 2 s)"
"$BUILD/migperf" run "${COMMON[@]}" --postcopy on --postcopy-after 2 \
	--postcopy-preempt "$PREEMPT" --postcopy-dst-workload off \
	--max-postcopy-bandwidth "$LINK" \
	-o "$TMP/postcopy.json"
[[ $(field "$TMP/postcopy.json" "r.get('digest', {}).get('match')") == True ]] ||
	{ echo "demo: RAM digests not equal" >&2; exit 1; }
echo
echo "demo: precopy gave up ($(field "$TMP/precopy.json" "r.get('error')")); postcopy completed in $(field "$TMP/postcopy.json" "r['total_time_ms']") ms with equal RAM"
