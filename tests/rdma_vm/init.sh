#!/bin/busybox sh
# init.sh — /init of the rdma_vm guest (tests/rdma_vm/run builds it in):
# mounts, loads the RDMA modules, attaches soft-RoCE (rxe0) to dummy0, runs
# each test of /opt/rdma_vm/tests.list under a timeout, prints
# "RESULT <name> rc=N" per test and the end marker
# "RDMA_VM_END passed=N failed=N skipped=N", then powers off.
# rc=0 passed, rc=77 skipped (a "SKIP name: reason" line says why).
export PATH=/opt/migd:/usr/bin:/usr/sbin:/bin:/sbin
export HOME=/tmp RDMA_VM_GUEST=1
V=/opt/rdma_vm

uptime_cs() {
	read -r up _ </proc/uptime
	echo "${up%.*}${up#*.}"
}

end() {
	echo "RDMA_VM_END passed=${passed:-0} failed=${failed:-0}" \
		"skipped=${skipped:-0} guest_uptime_s=$(cut -d' ' -f1 /proc/uptime)"
	sync
	poweroff -f
}

setup_failed() {
	echo "RDMA_VM_SETUP_FAILED: $*"
	dmesg | tail -n 30
	echo "RESULT setup rc=1"
	failed=1
	end
}

mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs -o size=90% tmp /tmp
mkdir -p /dev/shm /dev/pts
mount -t tmpfs shm /dev/shm
echo "rdma-vm guest: kernel $(uname -r), up $(cut -d' ' -f1 /proc/uptime) s"

# Dependencies first (the order file comes from each module's depends=),
# crc32_generic before rdma_rxe: no modprobe here to load it on demand.
for m in $(cat /modules/order); do
	insmod "/modules/$m.ko" || setup_failed "insmod $m"
done
# Loading dummy already creates dummy0. rxe on lo would fail route
# resolution with ENODEV, so lo is never used for RDMA.
ip link set lo up
ip link set dummy0 up || setup_failed "no dummy0"
ip addr add 192.0.2.1/24 dev dummy0 || setup_failed "ip addr"
rdma link add rxe0 type rxe netdev dummy0 || setup_failed "rdma link add"
# No udev: let the non-root test open the verbs and rdma_cm devices.
chmod 666 /dev/infiniband/* 2>/dev/null
# Crashes of test processes in the kernel log (fail() prints its tail).
sysctl -q -w debug.exception-trace=1 kernel.print-fatal-signals=1 2>/dev/null
echo "rdma-vm guest: kernel log has $(dmesg | wc -l) lines"
echo "rdma-vm guest: rxe0 on dummy0 192.0.2.1, up $(cut -d' ' -f1 \
	/proc/uptime) s"

. $V/config
passed=0 failed=0 skipped=0
# Every process but init (kernel threads have no exe): what a test left.
reap() {
	for p in /proc/[0-9]*; do
		pid=${p#/proc/}
		[ "$pid" = 1 ] && continue
		[ -n "$(readlink "$p/exe" 2>/dev/null)" ] && kill -9 "$pid" \
			2>/dev/null
	done
	sleep 0.2
}

for name in $(cat $V/tests.list); do
	dir=/tmp/t/$name
	mkdir -p "$dir"
	chmod 777 "$dir"
	t0=$(uptime_cs)
	(cd "$dir" && exec timeout -s KILL "$TEST_TIMEOUT" sh -c \
		". $V/lib.sh; . $V/tests.sh; TEST_NAME=$name; t_$name" \
		>"$dir/out" 2>&1)
	rc=$?
	reap
	t=$(($(uptime_cs) - t0))
	[ "$VERBOSE" = 1 ] && sed "s/^/$name| /" "$dir/out"
	grep -E '^(SKIP|FIGURE|RULE) ' "$dir/out"
	case $rc in
	0) passed=$((passed + 1)) ;;
	77) skipped=$((skipped + 1)) ;;
	*)
		failed=$((failed + 1))
		[ $rc = 137 ] && echo "TIMEOUT $name after $TEST_TIMEOUT s"
		echo "---- $name output (last 60 lines)"
		tail -n 60 "$dir/out"
		echo "---- end of $name output"
		;;
	esac
	echo "RESULT $name rc=$rc time=$((t / 100)).$((t / 10 % 10))s"
	rm -rf "$dir"
done
end
