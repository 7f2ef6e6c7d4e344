#!/usr/bin/env bash
# Build the vio test guest: a Debian cloud kernel and a busybox initramfs
# holding the virtio modules, /init, blkcheck, rngcheck and netcheck. See
# docs/guest-harness.md.
#
# Usage: build-guest.sh [OUTDIR]
#   OUTDIR defaults to ${VIO_GUEST_CACHE:-$(pwd)/build/guest}.
# Produces in OUTDIR:
#   vmlinuz            the kernel
#   initramfs.cpio.gz  the base initramfs (run-guest.sh appends /test.sh)
#   blkcheck           the checker, static: runs in the guest and on the host
#   kernel-version     e.g. 6.1.0-56-cloud-amd64
#   modules.txt        the modules loaded by /init, in load order
#   stamp              hash of every input; a rebuild is skipped when equal
#   cache/             downloaded .deb files (kept; nothing else is)
# Environment:
#   VIO_GUEST_KERNEL_PKG  versioned kernel package to use instead of the one
#                         linux-image-cloud-amd64 depends on
#   VIO_GUEST_MODULES     root modules to load (default: virtio_pci virtio_blk
#                         virtio_rng virtio_net);
#                         their dependencies are added from modules.dep
#   FORCE=1               rebuild even when the stamp matches
#   EXTRA_BINS="B ..."    host programs (names on PATH or absolute paths) to
#                         add at the same path, with the shared libraries ldd
#                         lists and the dynamic loader (e.g. EXTRA_BINS=fio,
#                         used by bench/blk-guest); use a separate OUTDIR
# shellcheck disable=SC2012,SC2015,SC2013
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${1:-${VIO_GUEST_CACHE:-$(pwd)/build/guest}}
roots=${VIO_GUEST_MODULES:-virtio_pci virtio_blk virtio_rng virtio_net}

log() { echo "build-guest: $*" >&2; }
die() {
	echo "build-guest: error: $*" >&2
	exit 1
}

for tool in apt-get apt-cache dpkg-deb depmod cpio gzip xz gcc sha256sum; do
	command -v "$tool" >/dev/null ||
		die "$tool not found (run scripts/deps-guest.sh)"
done

mkdir -p "$out/cache"
out=$(cd "$out" && pwd)

# apt-cache answers from the package lists; without them (fresh machine)
# it knows nothing, so fetch them once.  (Not grep -q: under pipefail,
# apt-cache killed by SIGPIPE when grep quits early would read as "no
# lists", and every run would call apt-get update.)
apt_ready() {
	apt-cache show --no-all-versions "$1" 2>/dev/null | grep '^Version:' >/dev/null
}
if ! apt_ready busybox-static; then
	if [ "$(id -u)" = 0 ]; then
		log "apt lists missing: apt-get update"
		apt-get update -qq
	fi
fi

# The package version and the .deb file name apt-get download writes.
pkg_version() {
	apt-cache show --no-all-versions "$1" 2>/dev/null |
		sed -n 's/^Version: //p' | head -n1
}
deb_name() {
	local v=$2
	echo "${1}_${v//:/%3a}_amd64.deb"
}

# Fetch package $1 into the cache (once) and print the .deb path. When apt
# cannot answer (offline, no lists), fall back to a cached .deb.
fetch_deb() {
	local pkg=$1 ver deb
	ver=$(pkg_version "$pkg")
	if [ -z "$ver" ]; then
		deb=$(ls -1 "$out/cache/${pkg}_"*.deb 2>/dev/null | sort -V | tail -n1)
		[ -n "$deb" ] || die "apt knows no package $pkg and none is cached"
		log "apt cannot resolve $pkg; using cached $(basename "$deb")"
		echo "$deb"
		return
	fi
	deb=$out/cache/$(deb_name "$pkg" "$ver")
	if [ ! -s "$deb" ]; then
		log "downloading $pkg $ver"
		# apt-get download writes into the current directory. As root it
		# warns that _apt cannot write there (it downloads anyway).
		(cd "$out/cache" && apt-get download -q "$pkg" 2>&1 |
			grep -v 'unsandboxed as root' >&2 || true)
		[ -s "$deb" ] || die "apt-get download $pkg did not produce $deb"
	fi
	echo "$deb"
}

kpkg=${VIO_GUEST_KERNEL_PKG:-}
if [ -z "$kpkg" ]; then
	kpkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
		sed -n 's/^ *Depends: \(linux-image-[0-9].*-cloud-amd64\)$/\1/p' |
		head -n1)
	if [ -z "$kpkg" ]; then
		# offline: the newest cached kernel package
		kpkg=$(ls -1 "$out/cache/"linux-image-*-cloud-amd64_*.deb 2>/dev/null |
			sed 's,.*/,,; s,_.*,,' | sort -V | tail -n1)
		[ -n "$kpkg" ] ||
			die "cannot resolve linux-image-cloud-amd64 (apt-get update?)"
	fi
fi

kdeb=$(fetch_deb "$kpkg")
bdeb=$(fetch_deb busybox-static)

files=("$here/build-guest.sh" "$here/init.sh" "$here/waitdev.sh"
	"$here/blkcheck.c" "$here/rngcheck.sh" "$here/netcheck.sh")

# EXTRA_BINS: each program and every file ldd says it loads (the loader
# included), copied to the same path in the guest. extra_files holds
# "GUESTPATH HOSTFILE" pairs; HOSTFILE has its symlinks resolved.
extra_files=()
for b in ${EXTRA_BINS:-}; do
	p=$(command -v "$b") || die "EXTRA_BINS: $b not found"
	case "$p" in /*) ;; *) die "EXTRA_BINS: $b is not a program" ;; esac
	extra_files+=("$p $(readlink -f "$p")")
	if ! ldd_out=$(ldd "$p" 2>&1); then
		# a static program: ldd says so and fails
		echo "$ldd_out" | grep -q 'not a dynamic executable' ||
			die "EXTRA_BINS: ldd $p: $ldd_out"
		continue
	fi
	! echo "$ldd_out" | grep -q 'not found' ||
		die "EXTRA_BINS: $p: missing libraries: $ldd_out"
	for lib in $(echo "$ldd_out" | awk '{
		for (i = 1; i <= NF; i++) if ($i ~ /^\//) { print $i; break }
	}'); do
		extra_files+=("$lib $(readlink -f "$lib")")
	done
done
if [ ${#extra_files[@]} -gt 0 ]; then
	mapfile -t extra_files < <(printf '%s\n' "${extra_files[@]}" | LC_ALL=C sort -u)
fi

stamp=$({
	basename "$kdeb"
	basename "$bdeb"
	echo "modules: $roots"
	for e in "${extra_files[@]}"; do
		echo "extra: ${e%% *} $(sha256sum <"${e#* }" | cut -d' ' -f1)"
	done
	gcc -dumpfullversion
	sha256sum "${files[@]}" | cut -d' ' -f1
} | sha256sum | cut -d' ' -f1)

if [ "${FORCE:-0}" != 1 ] && [ -f "$out/stamp" ] &&
	[ "$(cat "$out/stamp")" = "$stamp" ] && [ -s "$out/vmlinuz" ] &&
	[ -s "$out/initramfs.cpio.gz" ] && [ -x "$out/blkcheck" ]; then
	log "up to date in $out ($(cat "$out/kernel-version"))"
	exit 0
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/vio-guest-build.XXXXXX")
trap 'rm -rf "$work"' EXIT

log "extracting $(basename "$kdeb")"
dpkg-deb -x "$kdeb" "$work/k"
dpkg-deb -x "$bdeb" "$work/bb"

# Debian 12 ships /lib/modules; merged-/usr releases ship /usr/lib/modules.
mroot=$(find "$work/k" -path '*/lib/modules/*/modules.builtin' -print -quit)
[ -n "$mroot" ] || die "no modules.builtin in $kpkg"
mdir=$(dirname "$mroot")
kver=$(basename "$mdir")
vmlinuz=$(find "$work/k" -path "*/boot/vmlinuz-$kver" -print -quit)
[ -n "$vmlinuz" ] || die "no vmlinuz-$kver in $kpkg"
config=$(find "$work/k" -path "*/boot/config-$kver" -print -quit)

# The .deb has no modules.dep (the postinst runs depmod): make one.
base=$(dirname "$(dirname "$(dirname "$mdir")")") # the dir holding lib/
if [ "$base/lib/modules/$kver" != "$mdir" ]; then
	die "unexpected module layout: $mdir"
fi
depmod -b "$base" "$kver"
[ -s "$mdir/modules.dep" ] || die "depmod produced no modules.dep"

norm() { echo "$1" | tr - _; }
# modules.dep key (path relative to $mdir) of module $1, or nothing.
mod_path() {
	local want
	want=$(norm "$1")
	awk -F: -v w="$want" '{
		n = $1; sub(/.*\//, "", n); sub(/\.ko(\.(xz|gz|zst))?$/, "", n)
		gsub(/-/, "_", n)
		if (n == w) { print $1; exit }
	}' "$mdir/modules.dep"
}
is_builtin() {
	local want
	want=$(norm "$1")
	sed 's,.*/,,; s,\.ko$,,' "$mdir/modules.builtin" | tr - _ |
		grep -qx "$want"
}

# Post-order walk over modules.dep (each line lists all the dependencies
# of a module): every module comes after what it needs.
order=()
declare -A seen=()
visit() {
	local rel=$1 d
	[ -z "${seen[$rel]:-}" ] || return 0
	seen[$rel]=1
	for d in $(awk -F: -v m="$rel" '$1 == m { print $2; exit }' \
		"$mdir/modules.dep"); do
		visit "$d"
	done
	order+=("$rel")
}
for m in $roots; do
	if is_builtin "$m"; then
		log "module $m is built in"
		continue
	fi
	rel=$(mod_path "$m")
	[ -n "$rel" ] || die "module $m is neither built in nor in $kpkg"
	visit "$rel"
done

# The initramfs tree.
root=$work/root
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,run,etc,lib/modules}
bb=$work/bb/bin/busybox
[ -x "$bb" ] || die "no bin/busybox in busybox-static"
if readelf -l "$bb" 2>/dev/null | grep -q 'Requesting program interpreter'; then
	die "busybox from busybox-static is not static"
fi
install -m 0755 "$bb" "$root/bin/busybox"
"$bb" --list-full | while read -r applet; do
	[ -e "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
done
install -m 0755 "$here/init.sh" "$root/init"
install -m 0755 "$here/waitdev.sh" "$root/bin/waitdev"
install -m 0755 "$here/rngcheck.sh" "$root/bin/rngcheck"
install -m 0755 "$here/netcheck.sh" "$root/bin/netcheck"

: >"$root/lib/modules/load.order"
: >"$work/modules.txt"
for rel in "${order[@]}"; do
	name=$(basename "$rel")
	name=${name%%.ko*}
	src=$mdir/$rel
	dst=$root/lib/modules/$name.ko
	# busybox insmod may lack decompression: decompress on the host.
	case "$rel" in
	*.ko.xz) xz -dc "$src" >"$dst" ;;
	*.ko.gz) gzip -dc "$src" >"$dst" ;;
	*.ko.zst) zstd -qdc "$src" >"$dst" ;;
	*.ko) cp "$src" "$dst" ;;
	*) die "unknown module file $rel" ;;
	esac
	echo "$name" >>"$root/lib/modules/load.order"
	echo "$name $rel" >>"$work/modules.txt"
done

for e in "${extra_files[@]}"; do
	dst=$root${e%% *}
	mkdir -p "$(dirname "$dst")"
	rm -f "$dst" # a busybox applet link of the same name
	cp "${e#* }" "$dst"
done
[ ${#extra_files[@]} -eq 0 ] ||
	log "added ${EXTRA_BINS} and their libraries: ${#extra_files[@]} files"

log "compiling blkcheck (static)"
gcc -std=gnu11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -static \
	-o "$work/blkcheck" "$here/blkcheck.c"
install -m 0755 "$work/blkcheck" "$root/bin/blkcheck"

# cpio newc, owned by root, stable order and times for a stable archive.
find "$root" -exec touch -h -d @0 {} +
(cd "$root" && find . -mindepth 1 | LC_ALL=C sort |
	cpio --quiet -o -H newc -R 0:0 --reproducible) |
	gzip -n -9 >"$work/initramfs.cpio.gz"

# Publish: everything first, the stamp last.
rm -f "$out/stamp"
install -m 0644 "$vmlinuz" "$out/vmlinuz"
install -m 0644 "$work/initramfs.cpio.gz" "$out/initramfs.cpio.gz"
install -m 0755 "$work/blkcheck" "$out/blkcheck"
install -m 0644 "$work/modules.txt" "$out/modules.txt"
[ -z "$config" ] || install -m 0644 "$config" "$out/config"
echo "$kver" >"$out/kernel-version"
echo "$stamp" >"$out/stamp"
log "built $out: kernel $kver ($kpkg), modules: $(cut -d' ' -f1 "$out/modules.txt" | tr '\n' ' ')"
log "initramfs $(stat -c %s "$out/initramfs.cpio.gz") bytes"
