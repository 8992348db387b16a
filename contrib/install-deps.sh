#!/usr/bin/env bash
# install-deps.sh — installs the Debian 12 packages migd's build and tests
# need, and only those that are missing. Quiet and fast when everything is
# present (it runs at the start of every `make check` and `make demo`).
# Non-interactive; uses sudo when not run as root.
set -euo pipefail

# Everything the build, tests, fuzzing and demo need. Add new ones here.
PACKAGES=(
	build-essential   # gcc, make
	pkg-config
	libjansson-dev    # JSON (QMP)
	zlib1g-dev        # multifd zlib compression
	libzstd-dev       # multifd zstd compression
	libssl-dev        # TLS
	openssl           # tests: certificates for TLS
	libxxhash-dev     # RAM digests
	libibverbs-dev    # rdma: transport (libibverbs)
	librdmacm-dev     # rdma: transport (librdmacm)
	ibverbs-providers # rdma: librxe for make check-rdma-vm (soft-RoCE)
	ibverbs-utils     # rdma: ibv_devices (check-rdma-vm, check-rdma-hw)
	rdmacm-utils      # rdma: rping probe in check-rdma-vm
	libcmocka-dev     # unit tests
	python3           # system tests
	clang             # make fuzz (libFuzzer)
	libclang-rt-14-dev # sanitizer and fuzzer runtimes for clang
	clang-format      # make format
	iproute2          # ss/ip in network tests
	procps            # ps/pgrep in tests
	iperf3            # make bench: loopback TCP limit
	gnuplot-nox       # migperf and make bench: plots (SVG, PNG)
)

# Prints the packages from PACKAGES that are not installed.
missing_packages() {
	local pkg status
	for pkg in "${PACKAGES[@]}"; do
		status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" \
			2>/dev/null || true)
		[[ $status == ii* ]] || echo "$pkg"
	done
}

main() {
	local missing sudo=()
	mapfile -t missing < <(missing_packages)
	((${#missing[@]} == 0)) && return 0

	if ((EUID != 0)); then
		if ! command -v sudo >/dev/null; then
			echo "install-deps: missing packages: ${missing[*]}" >&2
			echo "install-deps: run as root or install sudo" >&2
			exit 1
		fi
		sudo=(sudo -n)
	fi
	echo "install-deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	"${sudo[@]}" apt-get update -qq
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends "${missing[@]}"
}

main "$@"
