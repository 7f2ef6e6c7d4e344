#!/usr/bin/env bash
# Fetch and configure the source of the installed fio, for building an
# external ioengine (src/fio) against the headers of that exact version.
#
#   scripts/fetch-fio-src.sh CACHE_DIR
#
# Prints the path of the configured source tree (holding fio.h and the
# generated config-host.h) on stdout; progress goes to stderr.  Idempotent:
# a tree already in CACHE_DIR for the installed version is reused; several
# runs at once are serialized by a lock in CACHE_DIR.
#
# The source is Debian's fio source package (`apt-get source`), the version
# of the installed fio package exactly.  If no deb-src entry exists, one is
# added (/etc/apt/sources.list.d/vio-deb-src.sources, the deb entries of
# the system with Types: deb-src) and the lists are updated: that needs
# root.  Fails (exit 1, one line why) if fio is not installed, the fio
# binary's version is not the source's, or the source cannot be fetched.
set -euo pipefail

cache=${1:?usage: fetch-fio-src.sh CACHE_DIR}
die() {
	echo "fetch-fio-src: $*" >&2
	exit 1
}

command -v fio >/dev/null || die "fio is not installed (apt-get install fio)"
pkgver=$(dpkg-query -W -f='${Version}' fio 2>/dev/null) ||
	die "the fio package is not installed (apt-get install fio)"
srcpkg=$(dpkg-query -W -f='${source:Package}' fio)
srcver=$(dpkg-query -W -f='${source:Version}' fio)
upstream=${srcver#*:}    # no epoch
upstream=${upstream%-*}  # no Debian revision
upstream=${upstream%+*}  # no repack suffix (3.33+dfsg)
binver=$(fio --version) # fio-3.33
[ "$binver" = "fio-$upstream" ] ||
	die "the fio binary says '$binver' but its package's source is $srcpkg $srcver (fio-$upstream): reinstall fio"

mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
exec 9>"$cache/.lock"
flock -w 600 9 || die "timed out waiting for $cache/.lock"

tree=$cache/$srcpkg-$srcver
stamp=$tree/.vio-configured
if [ -f "$stamp" ] && [ -f "$tree/config-host.h" ] &&
	[ "$(cat "$stamp")" = "$srcpkg $srcver $binver" ]; then
	echo "$tree"
	exit 0
fi

# ---- a deb-src entry for the suites the system uses ----
has_src() {
	grep -Eqs '^[[:space:]]*Types:.*deb-src' /etc/apt/sources.list.d/*.sources ||
		grep -Eqs '^[[:space:]]*deb-src[[:space:]]' /etc/apt/sources.list /etc/apt/sources.list.d/*.list
}
if ! has_src; then
	[ "$(id -u)" -eq 0 ] ||
		die "no deb-src entry in the apt sources; add one (or run once as root, which adds /etc/apt/sources.list.d/vio-deb-src.sources)"
	new=/etc/apt/sources.list.d/vio-deb-src.sources
	echo "fetch-fio-src: adding $new" >&2
	{
		# deb822 stanzas with Types: deb, as deb-src
		for f in /etc/apt/sources.list.d/*.sources; do
			[ -f "$f" ] || continue
			awk 'BEGIN { RS = ""; ORS = "\n\n" }
			     /(^|\n)Types:[^\n]*deb([ \t\n]|$)/ {
				sub(/(^|\n)Types:[^\n]*/, "\nTypes: deb-src")
				sub(/^\n/, ""); print }' "$f"
		done
		# one-line entries, converted to deb822
		for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
			[ -f "$f" ] || continue
			awk '$1 == "deb" {
				i = 2; opts = ""
				if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
				printf "Types: deb-src\nURIs: %s\nSuites: %s\nComponents:", $i, $(i + 1)
				for (j = i + 2; j <= NF; j++) printf " %s", $j
				printf "\n\n" }' "$f"
		done
	} >"$new.tmp"
	grep -q 'Types: deb-src' "$new.tmp" || {
		rm -f "$new.tmp"
		die "no deb entry found in the apt sources to derive a deb-src entry from"
	}
	mv "$new.tmp" "$new"
	apt-get update -qq >&2 || die "apt-get update failed"
fi

# ---- the source package, unpacked ----
command -v dpkg-source >/dev/null || die "dpkg-source is missing (apt-get install dpkg-dev)"
work=$cache/.work
rm -rf "$work" "$tree"
mkdir -p "$work"
echo "fetch-fio-src: apt-get source $srcpkg=$srcver" >&2
if ! (cd "$work" && apt-get source -qq --only-source "$srcpkg=$srcver" >&2); then
	# lists may be stale or the entry was just added by someone else
	[ "$(id -u)" -eq 0 ] && apt-get update -qq >&2 || true
	(cd "$work" && apt-get source -qq --only-source "$srcpkg=$srcver" >&2) ||
		die "apt-get source $srcpkg=$srcver failed"
fi
dir=$(find "$work" -mindepth 1 -maxdepth 1 -type d -name "$srcpkg-*" | head -n 1)
[ -n "$dir" ] && [ -f "$dir/fio.h" ] && [ -f "$dir/ioengines.h" ] ||
	die "apt-get source gave no fio tree in $work"

# The version the sources say (FIO-VERSION-GEN's default) must be the
# binary's too.
gen=$(sed -n 's/^DEF_VER=//p' "$dir/FIO-VERSION-GEN")
[ "$gen" = "$binver" ] ||
	die "the source tree is $gen but the fio binary is $binver"

# ---- configure: only to generate config-host.h (and config-host.mak) ----
echo "fetch-fio-src: configuring $srcpkg $srcver" >&2
(cd "$dir" && ./configure --disable-native >"$work/configure.log" 2>&1) ||
	die "fio's configure failed: see $work/configure.log"
[ -f "$dir/config-host.h" ] || die "configure made no config-host.h"
rm -rf "$tree"
mv -T "$dir" "$tree"
echo "$srcpkg $srcver $binver" >"$stamp"
rm -rf "$work"
echo "$tree"
