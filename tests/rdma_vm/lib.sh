# lib.sh — helpers for the RDMA tests in tests.sh (POSIX sh: busybox ash in
# the rdma_vm guest, /bin/sh on the host for make check-rdma-hw). Each test
# runs in its own empty directory (the current one) holding its RAM files,
# QMP sockets and logs. A test exits 0 (pass), 77 (skip) or anything else.
#
# Env: ADDR (the RDMA address, 192.0.2.1 in the guest), MIGD, MIGCTL,
# RAMDIGEST, QEMU (QEMU 7.2's qemu-system-x86_64), QEMU10 (QEMU 10.0, for
# the optional qemu10 tests), PORT_FILE.
: "${ADDR:=192.0.2.1}"
: "${MIGD:=migd}"
: "${MIGCTL:=migctl}"
: "${RAMDIGEST:=ramdigest}"
: "${QEMU:=qemu-system-x86_64}"
: "${QEMU10:=/opt/qemu10/qemu}" # QEMU 10.0, optional
: "${PORT_FILE:=/tmp/rdma_vm.port}"
: "${TEST_NAME:=test}"
MIB=1048576

log() { echo "[$(cut -d' ' -f1 /proc/uptime)] $*"; }
# fail MESSAGE: prints it, the tail of every process log of the test and
# the kernel's crash lines, then exits 1.
fail() {
	echo "FAIL: $*"
	for f in *.pid; do
		[ -e "$f" ] || continue
		pid=$(cat "$f")
		kill -0 "$pid" 2>/dev/null && continue
		wait "$pid" 2>/dev/null
		echo "== ${f%.pid} (pid $pid) exited with status $? (>128: signal)"
	done
	for f in *.log; do
		[ -s "$f" ] || continue
		echo "== $f (last 15 lines)"
		tail -n 15 "$f"
	done
	if [ "${RDMA_VM_GUEST:-0}" = 1 ]; then # the throwaway guest's own log
		echo "== kernel log (last 25 lines)"
		dmesg 2>/dev/null | tail -n 25
	fi
	exit 1
}
skip() {
	echo "SKIP $TEST_NAME: $*"
	exit 77
}

# A fresh TCP-space port per call (rdma_cm ports share the TCP port space).
next_port() {
	p=$(cat "$PORT_FILE" 2>/dev/null || echo 29200)
	echo $((p + 1)) >"$PORT_FILE"
	echo "$p"
}

# start_vm KIND NAME MiB [ARGS...]: KIND qemu, qemu10 or migd, -M none with one
# file-backed RAM block ram0 ($PWD/NAME.ram, created sparse when missing)
# and a QMP socket $PWD/NAME.qmp. Waits for the socket.
start_vm() {
	kind=$1 name=$2 mib=$3
	shift 3
	case $kind in
	qemu) bin=$QEMU ;;
	qemu10) bin=$QEMU10 ;;
	migd) bin=$MIGD ;;
	*) fail "start_vm: kind $kind" ;;
	esac
	command -v "$bin" >/dev/null || skip "no $bin"
	ram=$PWD/$name.ram
	[ -e "$ram" ] || truncate -s "${mib}M" "$ram"
	size=$((mib * MIB))
	$bin -M none -m "${mib}M" -object \
		"memory-backend-file,id=ram0,size=$size,mem-path=$ram,share=on" \
		-machine memory-backend=ram0 -nodefaults -display none \
		-qmp "unix:$PWD/$name.qmp,server=on,wait=off" "$@" \
		>"$name.log" 2>&1 &
	echo $! >"$name.pid"
	i=0
	while [ ! -S "$name.qmp" ]; do
		kill -0 "$(cat "$name.pid")" 2>/dev/null ||
			fail "$name exited at start: $(cat "$name.log")"
		i=$((i + 1))
		[ $i -gt 300 ] && fail "$name: no QMP socket after 30 s"
		sleep 0.1
	done
}

pid_of() { cat "$1.pid"; }

# qmp NAME COMMAND [JSON | KEY=VALUE...]: migctl, return value on stdout.
qmp() {
	n=$1
	shift
	$MIGCTL -s "unix:$PWD/$n.qmp" -t 30 "$@"
}
qmp_raw() {
	n=$1
	shift
	$MIGCTL -s "unix:$PWD/$n.qmp" -t 30 --raw "$@"
}

# set_cap NAME CAPABILITY true|false
set_cap() {
	qmp "$1" migrate-set-capabilities "{\"capabilities\": [{\"capability\":
		\"$2\", \"state\": $3}]}" >/dev/null
}

# Prints query-migrate's "status" ("" before any migration).
mig_status() {
	qmp_raw "$1" query-migrate |
		sed -n 's/.*"status": *"\([a-z-]*\)".*/\1/p'
}
error_desc() {
	qmp_raw "$1" query-migrate |
		sed -n 's/.*"error-desc": *"\(\([^"\\]\|\\.\)*\)".*/\1/p'
}
run_state() {
	qmp_raw "$1" query-status |
		sed -n 's/.*"status": *"\([a-z-]*\)".*/\1/p'
}

# wait_status NAME REGEX SECONDS: polls query-migrate until its status
# matches ^(REGEX)$; prints the status; 1 on timeout.
wait_status() {
	deadline=$(($(cut -d. -f1 /proc/uptime) + $3))
	while :; do
		st=$(mig_status "$1")
		if echo "$st" | grep -q -E "^($2)\$"; then
			echo "$st"
			return 0
		fi
		if [ "$(cut -d. -f1 /proc/uptime)" -ge $deadline ]; then
			echo "$st"
			return 1
		fi
		sleep 0.1
	done
}

# CPU time of a process so far, in clock ticks (utime + stime).
cpu_ticks() {
	awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0
}
uptime_cs() {
	read -r up _ </proc/uptime
	echo "${up%.*}${up#*.}"
}

# stop NAME: quit over QMP, then SIGKILL if still there after 10 s.
stop() {
	pid=$(pid_of "$1")
	qmp "$1" quit >/dev/null 2>&1
	i=0
	while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	if kill -0 "$pid" 2>/dev/null; then
		log "$1 did not quit within 10 s: SIGKILL"
		kill -9 "$pid"
	fi
	wait "$pid" 2>/dev/null
	return 0
}

# fill_ram FILE MiB: random data in the first half, zeros in the rest (the
# destination then sees both RDMA WRITEs and zero-page COMPRESS messages).
fill_ram() {
	truncate -s "$2M" "$1"
	dd if=/dev/urandom of="$1" bs=1M count=$(($2 / 2)) conv=notrunc \
		2>/dev/null || fail "dd $1"
}

# True when a migd error says migd has no RDMA yet (then the test skips).
migd_lacks_rdma() {
	grep -q -i -E "not supported by migd|rdma.*(not (yet )?supported|unsupported)" "$1"
}

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }
