#!/usr/bin/env bash
# demo.sh BUILD_DIR — a short tour of migd driven by migctl: start a paused
# guest, look at it over QMP, set migration capabilities and parameters the
# way a management layer would, show a QEMU-style error, run/stop, quit.
# (Becomes a real migration between two migds once live migration exists.)
# Cleans up after itself: the trap stops migd and removes the temp dir.
set -euo pipefail

BUILD=${1:-build}
MIGD=$BUILD/migd
MIGCTL=$BUILD/migctl
TMP=$(mktemp -d "${TMPDIR:-/tmp}/migd-demo.XXXXXX")
SOCK=$TMP/qmp.sock
MIGD_PID=

if [[ -t 1 ]]; then
	BOLD=$'\e[1m' DIM=$'\e[2m' RED=$'\e[31m' OFF=$'\e[0m'
else
	BOLD='' DIM='' RED='' OFF=''
fi

cleanup() {
	if [[ -n $MIGD_PID ]] && kill -0 "$MIGD_PID" 2>/dev/null; then
		kill "$MIGD_PID" 2>/dev/null || true
		wait "$MIGD_PID" 2>/dev/null || true
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() {
	echo "${RED}demo: $*${OFF}" >&2
	if [[ -s $TMP/migd.log ]]; then
		echo "--- migd log:" >&2
		tail -n 20 "$TMP/migd.log" >&2
	fi
	exit 1
}

# Waits up to 10 s for migd's QMP socket (or for migd to die).
wait_for_socket() {
	local i
	for ((i = 0; i < 200; i++)); do
		[[ -S $SOCK ]] && return 0
		kill -0 "$MIGD_PID" 2>/dev/null || die "migd exited during start-up"
		sleep 0.05
	done
	die "no QMP socket at $SOCK after 10 s"
}

say() {
	printf '\n%s== %s%s\n' "$BOLD" "$*" "$OFF"
}

# Prints "$ migctl ARGS" the way one would type it (quoting what needs it).
show_cmd() {
	local arg line="$ migctl"
	for arg in "$@"; do
		if [[ $arg =~ ^[A-Za-z0-9_.,:=/+-]+$ ]]; then
			line+=" $arg"
		else
			line+=" '$arg'"
		fi
	done
	printf '%s%s%s\n' "$DIM" "$line" "$OFF"
}

# Shows a migctl command line, runs it, indents its output. Extra output
# filtering: pass a python3 expression over the reply 'r' as FILTER=...
run() {
	local out
	show_cmd "$@"
	out=$("$MIGCTL" -s "$SOCK" "$@") || die "migctl $* failed"
	if [[ -n ${FILTER:-} ]]; then
		out=$(python3 -c "import json, sys; r = json.load(sys.stdin); $FILTER" <<<"$out")
	fi
	sed 's/^/    /' <<<"$out"
}

# Like run, but the command is expected to fail: shows the error and status.
run_fail() {
	local err rc=0
	show_cmd "$@"
	err=$("$MIGCTL" -s "$SOCK" "$@" 2>&1 >/dev/null) || rc=$?
	((rc != 0)) || die "migctl $* unexpectedly succeeded"
	printf '    %s%s%s\n    (exit status %d)\n' "$RED" "$err" "$OFF" "$rc"
}

main() {
	[[ -x $MIGD && -x $MIGCTL ]] || die "build first: $MIGD and $MIGCTL"

	say "Start a guest with 256 MiB of RAM, paused (-S)"
	echo "$ migd -m 256M -S -name demo -qmp unix:$SOCK,server=on,wait=off"
	"$MIGD" -m 256M -S -name demo -qmp "unix:$SOCK,server=on,wait=off" \
		>"$TMP/migd.log" 2>&1 &
	MIGD_PID=$!
	wait_for_socket

	say "Who is on the other end: migd speaks QEMU's QMP"
	run query-version
	run query-status

	say "Migration capabilities (a few of them)"
	FILTER='[print("%-16s %s" % (c["capability"], json.dumps(c["state"])))
		 for c in r
		 if c["capability"] in ("multifd", "zero-copy-send",
					"auto-converge", "events")]' \
		run query-migrate-capabilities

	say "Turn on multifd and use 4 channels"
	run migrate-set-capabilities \
		'capabilities=[{"capability": "multifd", "state": true}]'
	run migrate-set-parameters multifd-channels=4
	FILTER='[print("%-20s %s" % (k, r[k])) for k in ("multifd-channels",
		 "multifd-compression", "max-bandwidth", "downtime-limit")]' \
		run query-migrate-parameters

	say "Bad values get QEMU's errors"
	run_fail migrate-set-parameters multifd-channels=0
	run_fail no-such-command

	say "Run the guest, pause it again"
	run cont
	FILTER='print(r["status"])' run query-status
	run stop
	FILTER='print(r["status"])' run query-status

	say "No migration yet: query-migrate is empty"
	run query-migrate

	say "Quit"
	run quit
	local rc=0
	wait "$MIGD_PID" || rc=$?
	MIGD_PID=
	((rc == 0)) || die "migd exited with status $rc"
	echo "    migd exited cleanly"
}

main "$@"
