#!/usr/bin/env bash
# demo.sh BUILD_DIR — a live migration between two local migds, driven by
# migctl the way a management layer drives QEMU: fill the source guest's
# RAM, keep its vCPUs writing, turn on multifd, migrate over loopback TCP
# while `migctl watch` shows the progress, then print the result and check
# that the destination's RAM equals the source's (x-query-ram-digest).
# Environment: DEMO_MEM (guest RAM, default 1G), DEMO_CHANNELS (multifd
# channels, 4), DEMO_DIRTY_RATE (MiB/s the vCPUs write during the
# migration, 50; "idle" for none; 0 = as fast as they can, which may never
# converge), DEMO_TIMEOUT (seconds the migration may take, 120).
# Exit status 0 only when the migration completed and the digests match.
# Cleans up after itself: the trap stops both migds and removes the temp dir.
set -euo pipefail

BUILD=${1:-build}
MEM=${DEMO_MEM:-1G}
CHANNELS=${DEMO_CHANNELS:-4}
DIRTY_RATE=${DEMO_DIRTY_RATE:-50}
MIG_TIMEOUT=${DEMO_TIMEOUT:-120}
FILL_TIMEOUT=60    # seconds to fill the RAM once
REPLY_TIMEOUT=10   # seconds migctl waits for one reply
TMP=
declare -A PIDS=() # src/dst -> process id of the migd we started

if [[ -t 1 ]]; then
	BOLD=$'\e[1m' DIM=$'\e[2m' RED=$'\e[31m' GREEN=$'\e[32m' OFF=$'\e[0m'
else
	BOLD='' DIM='' RED='' GREEN='' OFF=''
fi

# Stops one migd we started: SIGTERM, then SIGKILL after 5 s.
stop_migd() {
	local pid=$1 i
	kill -0 "$pid" 2>/dev/null || return 0
	kill "$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	local who
	for who in "${!PIDS[@]}"; do
		stop_migd "${PIDS[$who]}"
	done
	[[ -z $TMP ]] || rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() {
	local who
	echo "${RED}demo: $*${OFF}" >&2
	for who in src dst; do
		if [[ -n $TMP && -s $TMP/$who.log ]]; then
			echo "--- $who migd log (last lines):" >&2
			tail -n 20 "$TMP/$who.log" >&2
		fi
	done
	exit 1
}

say() {
	printf '\n%s== %s%s\n' "$BOLD" "$*" "$OFF"
}

# Prints "$ migctl ARGS" the way one would type it (quoting what needs it).
show_cmd() {
	local arg line="\$ $1"
	shift
	for arg in "$@"; do
		if [[ $arg =~ ^[A-Za-z0-9_.,:=/+-]+$ ]]; then
			line+=" $arg"
		else
			line+=" '$arg'"
		fi
	done
	printf '%s%s%s\n' "$DIM" "$line" "$OFF"
}

# mctl WHO ARGS: runs migctl on migd WHO (src or dst) quietly; prints its
# output; dies with migctl's message when it fails.
mctl() {
	local who=$1 out rc=0
	shift
	out=$(timeout 30 "$MIGCTL" -s "$who.sock" -t "$REPLY_TIMEOUT" "$@" \
		2>"$TMP/migctl.err") || rc=$?
	((rc == 0)) || die "migctl -s $who.sock $1 failed (exit $rc): $(cat "$TMP/migctl.err")"
	printf '%s\n' "$out"
}

# jsonpy EXPR: evaluates a python3 expression over the JSON value on stdin
# (as 'r') and prints it.
jsonpy() {
	python3 -c "import json, sys; r = json.load(sys.stdin); print($1)"
}

# run WHO ARGS: shows the migctl command line, runs it, indents its output.
# FILTER=EXPR shows jsonpy EXPR of the reply instead.
run() {
	local who=$1 out
	shift
	show_cmd migctl -s "$who.sock" "$@"
	out=$(mctl "$who" "$@")
	if [[ -n ${FILTER:-} ]]; then
		out=$(jsonpy "$FILTER" <<<"$out")
	fi
	[[ -z $out || $out == "{}" ]] || sed 's/^/    /' <<<"$out"
}

# start_migd WHO ARGS: starts migd with a QMP socket WHO.sock and waits up
# to 10 s for the socket.
start_migd() {
	local who=$1 i
	shift
	show_cmd migd "$@" -qmp "unix:$who.sock,server=on,wait=off"
	"$MIGD" "$@" -qmp "unix:$who.sock,server=on,wait=off" \
		</dev/null >"$TMP/$who.log" 2>&1 &
	PIDS[$who]=$!
	for ((i = 0; i < 200; i++)); do
		[[ -S $who.sock ]] && return 0
		kill -0 "${PIDS[$who]}" 2>/dev/null ||
			die "$who migd exited during start-up"
		sleep 0.05
	done
	die "no QMP socket $TMP/$who.sock after 10 s"
}

# wait_until SECONDS WHAT COMMAND...: polls COMMAND every 0.1 s.
wait_until() {
	local secs=$1 what=$2 deadline
	shift 2
	deadline=$((SECONDS + secs))
	until "$@"; do
		((SECONDS < deadline)) || die "timed out after $secs s waiting for $what"
		sleep 0.1
	done
}

# (Called as loop conditions, where set -e does not act: exit explicitly.)
fill_finished() {
	local out
	out=$(mctl src x-guest-workload) || exit 1
	[[ $(jsonpy 'r.get("finished")' <<<"$out") == True ]]
}

# dst_done: the destination's migration has ended (any final status).
dst_done() {
	local out st
	out=$(mctl dst query-migrate) || exit 1
	st=$(jsonpy 'r.get("status", "none")' <<<"$out")
	[[ $st == completed || $st == failed ]]
}

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_guests() {
	say "Start a source guest ($MEM, 2 vCPUs) and a destination waiting for it"
	start_migd src -m "$MEM" -smp 2 -name demo-src
	start_migd dst -m "$MEM" -incoming defer -name demo-dst
	FILTER='r["status"]' run src query-status
	FILTER='r["status"]' run dst query-status
}

# Milliseconds since the epoch (bash 5).
now_ms() {
	local t=${EPOCHREALTIME/[.,]/}
	echo $((t / 1000))
}

fill_ram() {
	local t0
	t0=$(now_ms)
	say "Fill the source's RAM: the vCPUs write every page once, random data"
	FILTER='"%s, %s content, %d passes" % (r["pattern"], r["content"], r["passes"])' \
		run src x-guest-workload \
		'{"dirty-rate": 0, "pattern": "sequential", "content": "random", "passes": 1}'
	wait_until "$FILL_TIMEOUT" "the RAM to be filled" fill_finished
	t0=$(($(now_ms) - t0))
	printf '    done ("finished": true) after %d.%d s\n' $((t0 / 1000)) \
		$((t0 % 1000 / 100))
}

configure() {
	local who caps
	caps='capabilities=[{"capability": "multifd", "state": true}, {"capability": "events", "state": true}]'
	for who in src dst; do
		say "$who: multifd with $CHANNELS channels, migration events on"
		run "$who" migrate-set-capabilities "$caps"
		run "$who" migrate-set-parameters "multifd-channels=$CHANNELS"
	done
	say "src: no bandwidth cap, 300 ms downtime limit"
	run src migrate-set-parameters max-bandwidth=0 downtime-limit=300
	FILTER='"\n".join("%-18s %s" % (k, r[k]) for k in ("multifd-channels",
		"max-bandwidth", "downtime-limit"))' run src query-migrate-parameters
}

start_dirtying() {
	if [[ $DIRTY_RATE == idle ]]; then
		say "Let the guest idle during the migration"
		FILTER='r["dirty-rate"]' run src x-guest-workload dirty-rate=idle
		return
	fi
	say "Keep the guest busy: $DIRTY_RATE MiB/s of random writes, mixed content"
	FILTER='"%s MiB/s, %s pattern, %s content" % (r["dirty-rate"],
		r["pattern"], r["content"])' run src x-guest-workload \
		"{\"dirty-rate\": $DIRTY_RATE, \"pattern\": \"random\", \"content\": \"mixed\"}"
}

migrate() {
	local uri rc=0
	uri="tcp:127.0.0.1:$(free_port)"
	say "Migrate: the destination listens, the source connects"
	run dst migrate-incoming "uri=$uri"
	run src migrate "uri=$uri"
	say "Progress"
	show_cmd migctl -s src.sock watch
	timeout --foreground "$MIG_TIMEOUT" \
		"$MIGCTL" -s src.sock -t "$REPLY_TIMEOUT" watch || rc=$?
	((rc != 124)) || die "the migration took longer than $MIG_TIMEOUT s"
	((rc == 0)) || die "the migration did not complete (migctl watch exit $rc)"
	wait_until 30 "the destination to finish" dst_done
}

# Prints the numbers that matter from the source's query-migrate.
summary() {
	local st
	say "Result"
	mctl src query-migrate | jsonpy '"\n".join([
		"status          %s" % r["status"],
		"total time      %d ms" % r["total-time"],
		"throughput      %.2f GB/s (transferred / total time)" %
			(r["ram"]["transferred"] / 1e6 / max(r["total-time"], 1)),
		"downtime        %d ms (limit 300 ms%s)" % (r["downtime"],
			", exceeded" if r["downtime"] > 300 else ""),
		"transferred     %.1f MiB (%d pages sent, %d zero pages)" %
			(r["ram"]["transferred"] / 2**20, r["ram"]["normal"],
			 r["ram"]["duplicate"]),
		"dirty syncs     %d" % r["ram"]["dirty-sync-count"]])' |
		sed 's/^/    /'
	st=$(mctl dst query-migrate | jsonpy 'r["status"]')
	[[ $st == completed ]] || die "destination migration status: $st"
	st=$(mctl src query-status | jsonpy 'r["status"]')
	echo "    source          $st"
	st=$(mctl dst query-status | jsonpy 'r["status"]')
	echo "    destination     $st"
	[[ $st == running ]] || die "the destination guest is not running"
}

# digest_lines WHO: "block algorithm digest size" per RAM block of WHO.
digest_lines() {
	mctl "$1" x-query-ram-digest | jsonpy '"\n".join("%s %s %s %d" % (
		b["block"], b["algorithm"], b["digest"], b["size"]) for b in r)'
}

# Compares x-query-ram-digest of both guests (the source is stopped in
# postmigrate, the destination's vCPUs are idle: both RAMs are still).
check_digests() {
	local src dst line
	say "Compare the RAM of both guests"
	show_cmd migctl -s src.sock x-query-ram-digest
	src=$(digest_lines src)
	sed 's/^/    /' <<<"$src"
	show_cmd migctl -s dst.sock x-query-ram-digest
	dst=$(digest_lines dst)
	sed 's/^/    /' <<<"$dst"
	[[ -n $src ]] || die "the source reports no RAM blocks"
	[[ $src == "$dst" ]] ||
		die "RAM digest check: FAILED (the destination's RAM differs)"
	while read -r -a line; do
		printf '%sRAM digest check: OK (%s %s, block %s, %s bytes)%s\n' \
			"$GREEN" "${line[1]}" "${line[2]}" "${line[0]}" \
			"${line[3]}" "$OFF"
	done <<<"$src"
}

quit_all() {
	local who rc
	for who in src dst; do
		mctl "$who" quit >/dev/null
		rc=0
		wait "${PIDS[$who]}" || rc=$?
		unset "PIDS[$who]"
		((rc == 0)) || die "$who migd exited with status $rc"
	done
}

check_settings() {
	[[ $DIRTY_RATE =~ ^([0-9]+(\.[0-9]+)?|idle)$ ]] ||
		die "DEMO_DIRTY_RATE must be a number of MiB/s or idle, not '$DIRTY_RATE'"
	[[ $CHANNELS =~ ^[0-9]+$ ]] ||
		die "DEMO_CHANNELS must be a number, not '$CHANNELS'"
	[[ $MIG_TIMEOUT =~ ^[1-9][0-9]*$ ]] ||
		die "DEMO_TIMEOUT must be a number of seconds, not '$MIG_TIMEOUT'"
}

main() {
	check_settings
	[[ -x $BUILD/migd && -x $BUILD/migctl ]] ||
		die "build first: $BUILD/migd and $BUILD/migctl (make)"
	MIGD=$(realpath "$BUILD/migd")
	MIGCTL=$(realpath "$BUILD/migctl")
	TMP=$(mktemp -d "${TMPDIR:-/tmp}/migd-demo.XXXXXX")
	cd "$TMP"
	printf '%sworking in %s (QMP sockets src.sock and dst.sock)%s\n' \
		"$DIM" "$TMP" "$OFF"
	start_guests
	fill_ram
	configure
	start_dirtying
	migrate
	summary
	check_digests
	quit_all
}

main "$@"
