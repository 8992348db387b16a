# tests.sh — the RDMA tests, one function t_<name> each, run in the rdma_vm
# guest (tests/rdma_vm/run) or on a host with a real RDMA device
# (tests/rdma_vm/hw). Sourced after lib.sh, in an empty directory; exit 0
# pass, 77 skip (with a SKIP line), anything else fail. "FIGURE" lines carry
# the measurements the runner summarises (relative figures only: rxe under
# TCG says nothing about RDMA throughput).
#
# The test list is the order of the t_ functions below.

# --- the stack itself ---------------------------------------------------------

# rxe0 is there and active; rping (rdma_cm, RDMA READ/WRITE, SEND) passes.
t_probe() {
	command -v ibv_devices >/dev/null || skip "no ibv_devices (ibverbs-utils)"
	ibv_devices
	[ -n "$(ibv_devices | awk 'NR > 2 && NF')" ] ||
		fail "no RDMA device listed"
	ibv_devinfo | grep -q PORT_ACTIVE || fail "no active port"
	command -v rping >/dev/null || skip "no rping (rdmacm-utils)"
	port=$(next_port)
	rping -s -a "$ADDR" -p "$port" -C 10 -v >rping_s.log 2>&1 &
	sleep 0.5
	timeout 60 rping -c -a "$ADDR" -p "$port" -C 10 -v >rping_c.log 2>&1 ||
		fail "rping client: $(cat rping_c.log)"
	grep -c ping-9 rping_c.log >/dev/null || fail "rping: $(cat rping_c.log)"
	echo "rping: 10 iterations passed"
}

# Registration cost: one region of N MiB (pin-all) against N 1 MiB chunks
# (dynamic registration's chunk size), by tests/rdma_vm/regcost.c.
t_regcost() {
	command -v regcost >/dev/null || skip "regcost not built (no gcc?)"
	regcost 256 || fail "regcost"
}

# The verbs rules migd's loopback fabric enforces (rdma/verbs_loopback.h),
# provoked on the real stack by tests/rdma_vm/verbsrules.c: one "RULE" line
# each; any MISMATCH fails.
t_verbs_rules() {
	command -v verbsrules >/dev/null || skip "verbsrules not built (no gcc?)"
	verbsrules "$ADDR" 30000 >rules.out 2>&1
	rc=$?
	cat rules.out
	[ $rc = 0 ] || fail "$rc rule(s) differ on this stack"
}

# --- migrations ---------------------------------------------------------------

# migrate SRC_KIND DST_KIND PIN [MiB]: SRC (qemu|qemu10|migd) -> DST over
# rdma:$ADDR:port, rdma-pin-all PIN on both; source RAM half random, half
# zero; checks completion on both ends and the RAM bit for bit (cmp of the
# RAM files, and migd's x-query-ram-digest against ramdigest of the file).
# Prints a FIGURE line: wall ms and CPU ticks of each side.
migrate() {
	sk=$1 dk=$2 pin=$3 mib=${4:-64}
	port=$(next_port)
	fill_ram src.ram "$mib"
	log "source RAM filled ($mib MiB, half random)"
	# A migd peer of QEMU 7.2 runs with the knobs an old peer needs
	# (tests/interop/qemutest.py COMPAT_72_GLOBALS): 7.2 does not know
	# MIG_CMD_SWITCHOVER_START (0xb).
	compat=
	[ "$sk" = qemu ] || [ "$dk" = qemu ] && compat="-global
		migration.multifd-flush-after-each-section=on -global
		migration.send-switchover-start=off"
	sx='' dx=''
	[ "$sk" = migd ] && sx=$compat
	[ "$dk" = migd ] && dx=$compat
	# shellcheck disable=SC2086 # word-split the knobs on purpose
	start_vm "$dk" dst "$mib" -S -incoming defer $dx
	# shellcheck disable=SC2086
	start_vm "$sk" src "$mib" -S $sx
	log "$sk source and $dk destination started"
	set_cap src rdma-pin-all "$pin" || fail "src rdma-pin-all"
	set_cap dst rdma-pin-all "$pin" || fail "dst rdma-pin-all"
	if ! qmp dst migrate-incoming "uri=rdma:$ADDR:$port" >inc.out 2>&1; then
		[ "$dk" = migd ] && migd_lacks_rdma inc.out &&
			skip "migd: $(cat inc.out)"
		fail "migrate-incoming: $(cat inc.out)"
	fi
	s0=$(cpu_ticks "$(pid_of src)") d0=$(cpu_ticks "$(pid_of dst)")
	t0=$(uptime_cs)
	if ! qmp src migrate "uri=rdma:$ADDR:$port" >mig.out 2>&1; then
		[ "$sk" = migd ] && migd_lacks_rdma mig.out &&
			skip "migd: $(cat mig.out)"
		fail "migrate: $(cat mig.out)"
	fi
	st=$(wait_status src 'completed|failed|cancelled' 150) ||
		fail "source still '$st' after 150 s"
	t1=$(uptime_cs)
	[ "$st" = completed ] || fail "source $st: $(error_desc src)"
	st=$(wait_status dst 'completed|failed' 30) ||
		fail "destination still '$st' (source completed)"
	[ "$st" = completed ] || fail "destination $st: $(error_desc dst)"
	log "migration completed in $(((t1 - t0) * 10)) ms"
	s1=$(cpu_ticks "$(pid_of src)") d1=$(cpu_ticks "$(pid_of dst)")
	rs=$(run_state dst)
	[ "$rs" = inmigrate ] && fail "destination still inmigrate"
	check_ram "$sk" "$dk"
	echo "FIGURE migration test=$TEST_NAME src=$sk dst=$dk pin_all=$pin" \
		"mib=$mib ms=$(((t1 - t0) * 10)) src_ticks=$((s1 - s0))" \
		"dst_ticks=$((d1 - d0)) hz=100"
	log "$sk -> $dk pin-all=$pin: completed, RAM identical, dst $rs"
}

# Bit-exact RAM: migd's own digest of its RAM against ramdigest of the other
# side's file, then (both stopped) the two files byte for byte.
check_ram() {
	want=$($RAMDIGEST src.ram | cut -d' ' -f1)
	for side in src dst; do
		k=$1
		[ $side = dst ] && k=$2
		[ "$k" = migd ] || continue
		got=$(qmp_raw $side x-query-ram-digest |
			sed -n 's/.*"digest": *"\([0-9a-f]*\)".*/\1/p')
		[ "$got" = "$want" ] ||
			fail "$side x-query-ram-digest $got, ramdigest $want"
	done
	log "digests checked"
	stop src
	stop dst
	log "both stopped"
	# ramdigest (mmap, xxh3): busybox cmp reads byte by byte, 7 s for
	# 64 MiB under TCG.
	a=$($RAMDIGEST src.ram | cut -d' ' -f1)
	b=$($RAMDIGEST dst.ram | cut -d' ' -f1)
	[ "$a" = "$b" ] || fail "RAM files differ: $(cmp src.ram dst.ram)"
	log "RAM files identical"
}

t_qemu_qemu() { migrate qemu qemu false; }
t_qemu_qemu_pinall() { migrate qemu qemu true; }
t_migd_migd() { migrate migd migd false; }
t_migd_migd_pinall() { migrate migd migd true; }
t_migd_qemu() { migrate migd qemu false; }
t_migd_qemu_pinall() { migrate migd qemu true; }
t_qemu_migd() { migrate qemu migd false; }
t_qemu_migd_pinall() { migrate qemu migd true; }

# QEMU 10.0 (when contrib/install-qemu.sh unpacked it), both directions.
need_qemu10() {
	[ -x "$QEMU10" ] || skip "no QEMU 10.0 (contrib/install-qemu.sh)"
}
t_qemu10_migd() {
	need_qemu10
	migrate qemu10 migd false
}
t_migd_qemu10() {
	need_qemu10
	migrate migd qemu10 false
}

# --- failures -----------------------------------------------------------------

# start_pair MiB [PIN]: a running migd source (filled) and a migd
# destination listening on rdma:$ADDR:$port, rdma-pin-all PIN (default
# false) on both; skips when migd has no RDMA yet.
start_pair() {
	mib=$1
	port=$(next_port)
	fill_ram src.ram "$mib"
	start_vm migd dst "$mib" -S -incoming defer
	start_vm migd src "$mib"
	set_cap src rdma-pin-all "${2:-false}" || fail "src rdma-pin-all"
	set_cap dst rdma-pin-all "${2:-false}" || fail "dst rdma-pin-all"
	qmp dst migrate-incoming "uri=rdma:$ADDR:$port" >inc.out 2>&1 && return
	migd_lacks_rdma inc.out && skip "migd: $(cat inc.out)"
	fail "migrate-incoming: $(cat inc.out)"
}

# expect_failed_source MIGRATE_OUT: the source's migrate either failed at
# once or ends 'failed' with an error-desc; its guest keeps running and its
# monitor answers.
expect_failed_source() {
	if [ -s "$1" ] && grep -q '^error' "$1"; then
		migd_lacks_rdma "$1" && skip "migd: $(cat "$1")"
		log "migrate refused: $(cat "$1")"
	else
		st=$(wait_status src 'failed|completed|cancelled' 120) ||
			fail "source still '$st' after 120 s"
		[ "$st" = failed ] || fail "source ended '$st', want failed"
		desc=$(error_desc src)
		[ -n "$desc" ] || fail "failed without error-desc"
		log "error-desc: $desc"
	fi
	rs=$(run_state src)
	[ "$rs" = running ] || fail "source guest '$rs' after the failure"
}

# Nobody listens on the port: the connection is refused/rejected.
t_migd_refused() {
	port=$(next_port)
	start_vm migd src 64
	qmp src migrate "uri=rdma:$ADDR:$port" >mig.out 2>&1
	expect_failed_source mig.out
	stop src
}

# The destination is killed (SIGKILL) mid-stream: the source fails with an
# error-desc, bounded in time, and its guest keeps running.
t_migd_peer_killed() {
	start_active
	kill -9 "$(pid_of dst)"
	log "destination killed while the source was $(mig_status src)"
	expect_failed_source /dev/null
	stop src
}

# start_active: start_pair 256 MiB, migrate, wait until it is active.
start_active() {
	start_pair 256
	if ! qmp src migrate "uri=rdma:$ADDR:$port" >mig.out 2>&1; then
		migd_lacks_rdma mig.out && skip "migd: $(cat mig.out)"
		fail "migrate: $(cat mig.out)"
	fi
	st=$(wait_status src 'active|completed|failed' 60) ||
		fail "source not active: '$st'"
	[ "$st" = active ] || fail "migration '$st' before the fault"
	sleep 0.5
}

# migrate_cancel mid-stream: the source ends 'cancelled' with its guest
# running; the destination fails (bounded) and its monitor still answers.
t_migd_cancel() {
	start_active
	qmp src migrate_cancel >/dev/null || fail "migrate_cancel"
	st=$(wait_status src 'cancelled|failed|completed' 30) ||
		fail "source still '$st' 30 s after migrate_cancel"
	[ "$st" = cancelled ] || fail "source ended '$st', want cancelled"
	[ "$(run_state src)" = running ] || fail "source guest not running"
	st=$(wait_status dst 'failed|completed' 30) ||
		fail "destination still '$st' 30 s after the cancel"
	[ "$st" = failed ] || fail "destination ended '$st'"
	log "destination: $(error_desc dst)"
	stop src
	stop dst
}

# The source is killed mid-stream: migd's destination (which stays up,
# unlike QEMU's) fails with an error-desc within a bounded time.
t_migd_src_killed() {
	start_active
	kill -9 "$(pid_of src)"
	st=$(wait_status dst 'failed|completed' 60) ||
		fail "destination still '$st' 60 s after the source died"
	[ "$st" = failed ] || fail "destination ended '$st'"
	desc=$(error_desc dst)
	[ -n "$desc" ] || fail "destination failed without error-desc"
	log "destination error-desc: $desc"
	stop dst
}

# An address nobody holds on the subnet: the source fails (bounded) with an
# "RDMA ERROR:" error-desc and its guest keeps running.
t_migd_bad_address() {
	start_vm migd src 64
	qmp src migrate "uri=rdma:192.0.2.77:$(next_port)" >mig.out 2>&1
	expect_failed_source mig.out
	stop src
}

# migrate_cancel while the source resolves an address nobody holds: the
# source is 'cancelled' within 2 s (not after the 10 s bound), guest runs.
# (From hrd2's notes.)
t_migd_cancel_connecting() {
	start_vm migd src 64
	qmp src migrate "uri=rdma:192.0.2.77:$(next_port)" >mig.out 2>&1 ||
		fail "migrate: $(cat mig.out)"
	sleep 0.5
	st=$(mig_status src)
	[ "$st" = setup ] || skip "source already '$st' (no resolution wait)"
	t0=$(uptime_cs)
	qmp src migrate_cancel >/dev/null 2>&1 || fail "migrate_cancel"
	st=$(wait_status src 'cancelled|failed|completed' 10) ||
		fail "source still '$st' 10 s after migrate_cancel"
	t1=$(uptime_cs)
	[ "$st" = cancelled ] || fail "source ended '$st', want cancelled"
	[ $((t1 - t0)) -lt 200 ] || fail "cancel took $((t1 - t0)) cs"
	[ "$(run_state src)" = running ] || fail "source guest not running"
	stop src
}

dirty_syncs() {
	qmp_raw "$1" query-migrate |
		sed -n 's/.*"dirty-sync-count": *\([0-9]*\).*/\1/p'
}

# A live guest: migd's workload re-dirties pages while migrating; after
# three dirty syncs (rounds that re-send re-dirtied pages over RDMA) the
# workload stops so the migration converges even at TCG speed. The RAM
# must still match bit for bit.
t_migd_live() {
	start_pair 64
	qmp src x-guest-workload '{"dirty-rate": 500, "pattern": "random",
		"content": "random"}' >/dev/null || fail "x-guest-workload"
	if ! qmp src migrate "uri=rdma:$ADDR:$port" >mig.out 2>&1; then
		migd_lacks_rdma mig.out && skip "migd: $(cat mig.out)"
		fail "migrate: $(cat mig.out)"
	fi
	i=0
	while n=$(dirty_syncs src) && [ "${n:-0}" -lt 3 ]; do
		case $(mig_status src) in setup | active) ;; *) break ;; esac
		i=$((i + 1))
		[ $i -gt 600 ] && fail "no 3rd dirty sync in 60 s: $(qmp_raw \
			src query-migrate)"
		sleep 0.1
	done
	qmp src x-guest-workload dirty-rate=idle >/dev/null
	log "$(dirty_syncs src) dirty syncs; workload stopped"
	st=$(wait_status src 'completed|failed|cancelled' 120) ||
		fail "source still '$st': $(qmp_raw src query-migrate)"
	[ "$st" = completed ] || fail "source $st: $(error_desc src)"
	syncs=$(dirty_syncs src)
	log "completed after ${syncs:-?} dirty syncs"
	[ "${syncs:-0}" -ge 3 ] || fail "only ${syncs:-?} dirty sync(s)"
	st=$(wait_status dst 'completed|failed' 30) ||
		fail "destination still '$st'"
	[ "$st" = completed ] || fail "destination $st: $(error_desc dst)"
	check_ram migd migd
}

# No QP, MR or CM id left behind: after a migration and both migd exits,
# the kernel lists no RC QP (rdma res; the GSI QP 1 is rxe's own).
t_migd_no_leaks() {
	command -v rdma >/dev/null || skip "no rdma tool (iproute2)"
	migrate migd migd false
	sleep 0.5
	left=$(rdma res show qp 2>/dev/null | grep -c -v -E 'type (GSI|SMI)')
	rdma res show qp
	[ "$left" = 0 ] || fail "$left QP(s) left after both migd exited"
	rdma res show mr 2>/dev/null | grep -q . &&
		fail "MRs left: $(rdma res show mr)"
	log "no QP or MR left"
}

# RLIMIT_MEMLOCK: a non-root migd source with ulimit -l 4096 (KiB) and
# rdma-pin-all cannot pin 128 MiB; the migration fails with migd's memlock
# error (naming the limit) and the source guest keeps running.
t_migd_memlock() {
	[ "$(id -u)" = 0 ] || skip "needs root to drop to an unprivileged user"
	# util-linux's setpriv by path: busybox's applet has no --reuid and
	# busybox sh prefers its applets.
	sp=
	for f in /usr/bin/setpriv /bin/setpriv; do
		[ -x $f ] && ! [ -L $f ] && sp=$f && break
	done
	[ -n "$sp" ] || skip "no util-linux setpriv"
	cat >migd-user <<-EOF
		#!/bin/sh
		ulimit -l 4096 || exit 1
		exec $sp --reuid=65534 --regid=65534 --clear-groups $MIGD "\$@"
	EOF
	chmod 755 migd-user
	start_pair 128 true
	chmod 666 src.ram
	stop src
	rm -f src.qmp
	MIGD=$PWD/migd-user start_vm migd src 128
	set_cap src rdma-pin-all true || fail "src rdma-pin-all"
	qmp src migrate "uri=rdma:$ADDR:$port" >mig.out 2>&1
	expect_failed_source mig.out
	grep -q -i -E 'memlock|ulimit -l' mig.out src.log 2>/dev/null ||
		error_desc src | grep -q -i -E 'memlock|ulimit -l' ||
		fail "no memlock error: $(cat mig.out) / $(error_desc src)"
	stop src
}

refused_or_fail() {
	grep -q '^error: ' "$1" &&
		skip "multifd over rdma not accepted yet: $(cat "$1")"
	fail "$(cat "$1")"
}

# Multifd over RDMA, 4 channels, migd -> migd (each channel its own RC QP).
# Skips, printing migd's reason, until migd accepts multifd with rdma:.
t_migd_multifd() {
	mib=128
	port=$(next_port)
	fill_ram src.ram $mib
	start_vm migd dst $mib -S -incoming defer
	start_vm migd src $mib -S
	for s in src dst; do
		qmp $s migrate-set-capabilities '{"capabilities":
			[{"capability": "multifd", "state": true}]}' >cap.out 2>&1 ||
			fail "multifd capability: $(cat cap.out)"
		qmp $s migrate-set-parameters multifd-channels=4 >/dev/null ||
			fail "multifd-channels"
	done
	# A QMP error reply is a refusal (skip); anything else (a crash) fails.
	qmp dst migrate-incoming "uri=rdma:$ADDR:$port" >inc.out 2>&1 ||
		refused_or_fail inc.out
	t0=$(uptime_cs)
	qmp src migrate "uri=rdma:$ADDR:$port" >mig.out 2>&1 ||
		refused_or_fail mig.out
	st=$(wait_status src 'completed|failed|cancelled' 150) ||
		fail "source still '$st'"
	log "source $st after $((($(uptime_cs) - t0) * 10)) ms, 4 channels"
	if [ "$st" != completed ]; then
		desc=$(error_desc src)
		echo "$desc" | grep -q -i "rdma and multifd" &&
			skip "multifd over rdma not accepted yet: $desc"
		fail "source $st: $desc"
	fi
	st=$(wait_status dst 'completed|failed' 30) ||
		fail "destination still '$st'"
	[ "$st" = completed ] || fail "destination $st: $(error_desc dst)"
	check_ram migd migd
}
