#!/usr/bin/env bash
# install-qemu.sh — installs the two real QEMU peers of the interop tests
# (tests/interop/), side by side:
#   QEMU 7.2  = Debian bookworm's qemu-system-x86, installed with apt-get
#               when missing (/usr/bin/qemu-system-x86_64);
#   QEMU 10.0 = bookworm-backports' qemu-system-x86, qemu-system-common and
#               qemu-system-data, fetched with `apt-get download` and unpacked
#               with `dpkg -x` under DIR (default build/qemu-10.0), run
#               through the wrapper DIR/qemu-system-x86_64.
# The backports suite is read through a private apt configuration under
# DIR/apt that reuses the archive URI this machine already has configured for
# bookworm; the system's apt sources are left untouched. Quick and quiet
# when both are already in place. Usage: install-qemu.sh [DIR]
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${1:-$ROOT/build/qemu-10.0}
SUITE=bookworm-backports
# The 10.0 packages; the libraries they need are bookworm's (the 7.2
# package pulls them in; ldd of every unpacked binary finds them all).
PACKAGES_100=(qemu-system-x86 qemu-system-common qemu-system-data)
DEFAULT_KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

log() { echo "install-qemu: $*" >&2; }

as_root() {
	if ((EUID == 0)); then
		"$@"
	elif command -v sudo >/dev/null; then
		sudo -n "$@"
	else
		log "need root for: $*"
		return 1
	fi
}

# QEMU 7.2 from bookworm, only when missing.
install_72() {
	local status
	status=$(dpkg-query -W -f='${db:Status-Abbrev}' qemu-system-x86 \
		2>/dev/null || true)
	[[ $status == ii* ]] && return 0
	log "installing qemu-system-x86 (bookworm)"
	as_root apt-get update -qq
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends qemu-system-x86
}

# Prints "URI KEYRING" of the first one-line style entry for bookworm.
uri_from_list() {
	local f=$1 line uri opts keyring
	local re='^deb[[:space:]]+(\[([^]]*)\][[:space:]]+)?([^[:space:]]+)[[:space:]]+bookworm[[:space:]]'
	while read -r line; do
		[[ $line =~ $re ]] || continue
		opts=${BASH_REMATCH[2]} uri=${BASH_REMATCH[3]}
		keyring=$DEFAULT_KEYRING
		[[ $opts =~ signed-by=([^[:space:]]+) ]] && keyring=${BASH_REMATCH[1]}
		echo "$uri $keyring"
		return 0
	done <"$f"
	return 1
}

# Prints "URI KEYRING" of the first deb822 stanza whose Suites has bookworm.
uri_from_sources() {
	awk -v def="$DEFAULT_KEYRING" '
		function flush() {
			if (types ~ /(^| )deb( |$)/ && suites ~ /(^| )bookworm( |$)/ &&
			    uri != "" && !done) {
				print uri, (key != "" ? key : def); done = 1
			}
			types = suites = uri = key = ""
		}
		/^[[:space:]]*#/ { next }
		/^[[:space:]]*$/ { flush(); next }
		tolower($1) == "types:" { $1 = ""; types = $0 " " }
		tolower($1) == "suites:" { $1 = ""; suites = $0 " " }
		tolower($1) == "uris:" { uri = $2 }
		tolower($1) == "signed-by:" { key = $2 }
		END { flush(); exit !done }
	' "$1"
}

# "URI KEYRING" for bookworm from the machine's apt sources.
bookworm_uri() {
	local f
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[[ -r $f ]] && uri_from_list "$f" && return 0
	done
	for f in /etc/apt/sources.list.d/*.sources; do
		[[ -r $f ]] && uri_from_sources "$f" && return 0
	done
	log "no apt source for bookworm found in /etc/apt"
	return 1
}

# apt-get/apt-cache with the private configuration under DIR/apt.
papt() {
	local tool=$1
	shift
	"$tool" -o Dir::Etc::SourceList="$DIR/apt/sources.list" \
		-o Dir::Etc::SourceParts=/nonexistent \
		-o Dir::State::Lists="$DIR/apt/lists" \
		-o Dir::Cache="$DIR/apt/cache" \
		-o APT::Sandbox::User=root -qq "$@"
}

# Writes the wrapper that runs the unpacked binary with its own modules
# and data directory.
write_wrapper() {
	cat >"$DIR/qemu-system-x86_64.new" <<'EOF'
#!/bin/sh
# QEMU 10.0 from bookworm-backports, unpacked by contrib/install-qemu.sh.
here=$(cd "$(dirname "$0")" && pwd)
QEMU_MODULE_DIR=$here/root/usr/lib/x86_64-linux-gnu/qemu
export QEMU_MODULE_DIR
exec "$here/root/usr/bin/qemu-system-x86_64" -L "$here/root/usr/share/qemu" "$@"
EOF
	chmod +x "$DIR/qemu-system-x86_64.new"
	mv "$DIR/qemu-system-x86_64.new" "$DIR/qemu-system-x86_64"
}

installed_100() {
	[[ -x $DIR/qemu-system-x86_64 ]] &&
		"$DIR/qemu-system-x86_64" --version 2>/dev/null |
		grep -q '^QEMU emulator version 10\.0\.'
}

install_100() {
	local uri keyring pkg debs=()
	installed_100 && return 0
	read -r uri keyring < <(bookworm_uri)
	log "fetching QEMU 10.0 from $SUITE (${PACKAGES_100[*]})"
	rm -rf "$DIR/root" "$DIR/debs"
	mkdir -p "$DIR/apt/lists/partial" "$DIR/apt/cache/archives/partial" \
		"$DIR/debs" "$DIR/root"
	echo "deb [signed-by=$keyring] $uri $SUITE main" >"$DIR/apt/sources.list"
	papt apt-get update
	for pkg in "${PACKAGES_100[@]}"; do
		debs+=("$pkg/$SUITE")
	done
	(cd "$DIR/debs" && papt apt-get download "${debs[@]}")
	for pkg in "$DIR"/debs/*.deb; do
		dpkg -x "$pkg" "$DIR/root"
	done
	rm -rf "$DIR/debs"
	write_wrapper
	installed_100 || {
		log "unpacked QEMU 10.0 does not run:"
		"$DIR/qemu-system-x86_64" --version >&2 || true
		return 1
	}
}

main() {
	install_72
	install_100
	echo "install-qemu: $(/usr/bin/qemu-system-x86_64 --version | head -n1)"
	echo "install-qemu: $("$DIR/qemu-system-x86_64" --version | head -n1)" \
		"($DIR)"
}

main "$@"
