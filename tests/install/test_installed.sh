#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The examples (examples/) built as a third party builds them, then run.
#
#   test_installed.sh installed  BUILD_DIR VIO SRC_ROOT
#       meson install of BUILD_DIR into a temporary --destdir; each example
#       compiled with plain $CC and `pkg-config --cflags --libs vio`
#       against that tree (PKG_CONFIG_SYSROOT_DIR), every vio header it
#       includes checked to come from there, and run with the installed
#       libvio.so (LD_LIBRARY_PATH, checked with ldd).  A header that is
#       not installed, or a symbol libvio.so does not export, fails here.
#   test_installed.sh subproject VIO SRC_ROOT
#       examples/ as a consumer project with subprojects/vio a symlink to
#       SRC_ROOT: meson setup --force-fallback-for=vio, ninja; dependency
#       ('vio') must come from vio's override, and vio's tests and
#       benchmarks must not be part of the consumer's build.
#
# Then, either way: echo-device on a temporary socket (ready once the
# socket file exists: vio_backend_listen publishes it listening), driven by
# echo-driver with a short text and a 20000-byte one (many receive buffers
# and transmit chunks), then SIGTERM: exit 0, socket gone.  VIO (the built
# `vio serve blk`) on an image with known bytes in sectors 0 and 7 (ready
# once --pidfile appears): read-sector's dumps must match, a sector past
# the end must fail.  Environment: CC (the build's compiler), VIO_SANITIZE
# (the build's b_sanitize: the examples get the same -fsanitize).  Every
# process is ended by PID; everything lives in one temporary directory.
set -uo pipefail
mode=${1:-}
case $mode in
installed)
	[ $# = 4 ] || { echo "usage: $0 installed BUILD_DIR VIO SRC_ROOT" >&2; exit 2; }
	build=$(realpath "$2") vio=$(realpath "$3") src=$(realpath "$4") ;;
subproject)
	[ $# = 3 ] || { echo "usage: $0 subproject VIO SRC_ROOT" >&2; exit 2; }
	vio=$(realpath "$2") src=$(realpath "$3") ;;
*)
	echo "usage: $0 installed|subproject ..." >&2; exit 2 ;;
esac
read -ra cc <<<"${CC:-cc}"
san=${VIO_SANITIZE:-none}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vio-install-test.XXXXXX")
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
	echo "FAIL $*"
	exit 1
}
ok() {
	echo "ok   $*"
}
# show FILE: a log, indented, when something failed
show() {
	sed 's/^/    | /' "$1"
}

# wait_for TEST PATH PID: [ TEST PATH ] within 20 s, while PID lives
wait_for() {
	local end=$((SECONDS + 20))
	until test "$1" "$2"; do
		kill -0 "$3" 2>/dev/null || return 1
		[ "$SECONDS" -le "$end" ] || return 1
		sleep 0.01
	done
}
# stop PID NAME: SIGTERM, then its exit status within 20 s must be 0
stop() {
	local end=$((SECONDS + 20)) rc=0
	kill -TERM "$1" 2>/dev/null
	while kill -0 "$1" 2>/dev/null; do
		[ "$SECONDS" -le "$end" ] || fail "$2: still running 20 s after SIGTERM"
		sleep 0.01
	done
	wait "$1" || rc=$?
	[ "$rc" = 0 ] || fail "$2: exit $rc after SIGTERM"
}

# ---- build the examples ----

bin=$tmp/bin
mkdir -p "$bin"
if [ "$mode" = installed ]; then
	root=$tmp/root
	meson install -C "$build" --no-rebuild --destdir "$root" --quiet \
		>"$tmp/install.log" 2>&1 || { show "$tmp/install.log"; fail "meson install"; }
	mapfile -t pcs < <(find "$root" -name vio.pc)
	[ ${#pcs[@]} = 1 ] || fail "installed tree: want one vio.pc, found ${#pcs[@]}"
	pcdir=$(dirname "${pcs[0]}")
	export PKG_CONFIG_PATH="$pcdir${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
	export PKG_CONFIG_SYSROOT_DIR=$root
	static=()
	[ -n "$(find "$root" -name 'libvio.so*')" ] || static=(--static)
	cflags=$(pkg-config --cflags vio) && libs=$(pkg-config "${static[@]}" --libs vio) ||
		fail "pkg-config vio against the installed tree"
	# every path pkg-config gives must lie in the installed tree
	libdir=
	for f in $cflags $libs; do
		case $f in
		-I* | -L*)
			case ${f:2} in
			"$root"/*) ;;
			*) fail "pkg-config: $f is outside the installed tree ($cflags $libs)" ;;
			esac
			[ "${f:0:2}" = -L ] && libdir=${f:2} ;;
		esac
	done
	[ -n "$libdir" ] || fail "pkg-config --libs vio gives no -L ($libs)"
	ok "meson install --destdir; pkg-config: $cflags $libs"
	sanflags=()
	[ "$san" = none ] || sanflags=(-fsanitize="$san" -fno-omit-frame-pointer)
	for ex in echo-device echo-driver read-sector; do
		# shellcheck disable=SC2086 # flags are words
		"${cc[@]}" "${sanflags[@]}" -std=gnu11 -Wall -Wextra -Werror $cflags \
			-o "$bin/$ex" "$src/examples/$ex.c" $libs -pthread \
			>"$tmp/cc.log" 2>&1 || { show "$tmp/cc.log"; fail "$ex: does not build against the installed tree"; }
		# the vio headers it includes: all from the installed tree
		# shellcheck disable=SC2086
		"${cc[@]}" $cflags -M "$src/examples/$ex.c" >"$tmp/deps" 2>&1 ||
			{ show "$tmp/deps"; fail "$ex: cc -M"; }
		outside=$(tr -s ' \\' '\n' <"$tmp/deps" | grep -E '/vio/[^/]+\.h$' | grep -v "^$root/")
		[ -z "$outside" ] || fail "$ex: vio headers from outside the installed tree: $outside"
	done
	export LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
	if [ ${#static[@]} = 0 ]; then
		# (captured first: grep -q ending early would fail the pipe)
		deps=$(ldd "$bin/echo-device")
		grep -q "libvio\.so.* => $libdir/" <<<"$deps" ||
			fail "echo-device does not load the installed libvio: $(grep libvio <<<"$deps")"
	fi
	ok "examples built with ${cc[*]} ${sanflags[*]} against the installed headers and library"
else
	cons=$tmp/consumer
	mkdir -p "$cons/subprojects"
	cp "$src"/examples/meson.build "$src"/examples/*.c "$cons/"
	ln -s "$src" "$cons/subprojects/vio"
	# warnings are errors in the examples; vio's own are its build's business
	setup=(--force-fallback-for=vio -Dwerror=true -Dvio:werror=false)
	[ "$san" = none ] || setup+=(-Db_sanitize="$san" -Db_lundef=false)
	CC="${cc[*]}" meson setup "${setup[@]}" "$cons/build" "$cons" >"$tmp/setup.log" 2>&1 ||
		{ show "$tmp/setup.log"; fail "meson setup of a project with vio as a subproject"; }
	grep -q "Dependency vio found: YES .*(overridden)" "$tmp/setup.log" ||
		{ show "$tmp/setup.log"; fail "dependency('vio') did not come from vio's meson.override_dependency"; }
	# a consumer builds libvio and its own targets, not vio's tests
	extra=$(meson introspect --targets "$cons/build" | python3 -c '
import json, sys
for t in json.load(sys.stdin):
    d = t["defined_in"].replace("\\", "/")
    if t["subproject"] == "vio" and ("/tests/" in d or "/bench/" in d or "/fuzz/" in d):
        print(t["name"])')
	[ -z "$extra" ] || fail "the consumer builds vio's tests or benchmarks: ${extra//$'\n'/ }"
	ninja -C "$cons/build" >"$tmp/ninja.log" 2>&1 ||
		{ tail -40 "$tmp/ninja.log" | show /dev/stdin; fail "ninja in the consumer project"; }
	# run in place: their rpath finds the subproject's libvio.so
	bin=$cons/build
	for ex in echo-device echo-driver read-sector; do
		[ -x "$bin/$ex" ] || fail "the consumer built no $ex"
	done
	ok "consumer project with subprojects/vio: setup ($san), dependency('vio') overridden, built"
fi

# ---- run them ----

help=$("$bin/echo-device" --help) && grep -q "usage: echo-device SOCKET" <<<"$help" ||
	fail "echo-device --help"
sock=$tmp/echo.sock
"$bin/echo-device" "$sock" 2>"$tmp/echo.log" &
epid=$!
pids+=("$epid")
wait_for -S "$sock" "$epid" || { show "$tmp/echo.log"; fail "echo-device: no socket $sock"; }
short="hello, virtio console"
got=$(timeout 30 "$bin/echo-driver" "$sock" "$short" 2>"$tmp/driver.log") ||
	{ show "$tmp/driver.log"; show "$tmp/echo.log"; fail "echo-driver (short text)"; }
[ "$got" = "$short" ] || fail "echo: sent '$short', got '$got'"
grep -q "console 80x25" "$tmp/driver.log" || { show "$tmp/driver.log"; fail "echo-driver: no config space (cols x rows)"; }
ok "echo: '$got' (config 80x25)"
long=$(python3 -c 'print("".join(chr(33 + (i * 7) % 94) for i in range(20000)))')
got=$(timeout 30 "$bin/echo-driver" "$sock" "$long" 2>"$tmp/driver.log") ||
	{ show "$tmp/driver.log"; show "$tmp/echo.log"; fail "echo-driver (20000 bytes)"; }
[ "$got" = "$long" ] || fail "echo: 20000 bytes sent, ${#got} came back, not the same"
ok "echo: 20000 bytes back intact, second connection"
stop "$epid" echo-device
[ ! -e "$sock" ] || fail "echo-device left its socket file"
ok "echo-device: SIGTERM, exit 0, socket removed"

# an image with known bytes in sectors 0 and 7, and the dumps to expect
python3 - "$tmp" <<'EOF' || fail "making the image"
import os, sys
d = sys.argv[1]
img = bytearray(1 << 20)
img[0:512] = bytes((i * 37 + 11) & 0xff for i in range(512))
img[0:32] = b"vio read-sector: sector 0 here\x00\x7f"
img[7 * 512:7 * 512 + 20] = b"and this is sector 7"
open(os.path.join(d, "disk.img"), "wb").write(img)
for s in (0, 7):
    with open(os.path.join(d, "sector%d.txt" % s), "w") as f:
        for i in range(0, 512, 16):
            row = img[s * 512 + i:s * 512 + i + 16]
            hx = " ".join("%02x" % b for b in row[:8]) + "  " + \
                " ".join("%02x" % b for b in row[8:])
            asc = "".join(chr(b) if 32 <= b < 127 else "." for b in row)
            f.write("%08x  %s  |%s|\n" % (s * 512 + i, hx, asc))
EOF
"$vio" serve blk --socket "$tmp/blk.sock" --image "$tmp/disk.img" --pidfile "$tmp/blk.pid" \
	2>"$tmp/serve.log" &
spid=$!
pids+=("$spid")
wait_for -s "$tmp/blk.pid" "$spid" || { show "$tmp/serve.log"; fail "vio serve blk: no pidfile"; }
for s in 0 7; do
	args=("$tmp/blk.sock")
	[ "$s" = 0 ] || args+=("$s")
	timeout 30 "$bin/read-sector" "${args[@]}" >"$tmp/got$s.txt" 2>"$tmp/rs.log" ||
		{ show "$tmp/rs.log"; show "$tmp/serve.log"; fail "read-sector ${args[*]}"; }
	diff "$tmp/sector$s.txt" "$tmp/got$s.txt" >"$tmp/diff" ||
		{ show "$tmp/diff"; fail "read-sector: sector $s differs from the image"; }
	ok "read-sector ${args[*]##*/}: $(head -n1 "$tmp/got$s.txt")"
done
rc=0
timeout 30 "$bin/read-sector" "$tmp/blk.sock" 4096 >"$tmp/out" 2>"$tmp/rs.log" || rc=$?
[ "$rc" = 1 ] && [ ! -s "$tmp/out" ] ||
	fail "read-sector past the end: exit $rc (want 1), stdout: $(head -n1 "$tmp/out")"
ok "read-sector past the end: exit 1, $(cat "$tmp/rs.log")"
stop "$spid" "vio serve blk"
ok "vio serve blk: SIGTERM, exit 0"
