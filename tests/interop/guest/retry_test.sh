#!/usr/bin/env bash
# The guest harness's answer to a QEMU that crashes (docs/guest-harness.md):
# run-guest.sh boots once more when QEMU dies of a signal before /init, and
# only then.  QEMU is a wrapper (QEMU=...) around the real binary that kills
# itself with SIGSEGV:
#   first  the first launch crashes at once: one RETRY line, then a pass
#          with boots=2;
#   always every launch crashes: one RETRY, then a failure (exit 1);
#   late   QEMU crashes after the guest reached /init, while the test runs:
#          a failure with no retry (boots=1).
# Usage: retry_test.sh [--guest DIR]
# Exit: 0 pass, 1 fail, 2 harness error, 77 skip (no QEMU: said loudly).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
guest=${VIO_GUEST_CACHE:-$(cd "$here/../../.." && pwd)/build/guest}
if [ "${1:-}" = --guest ]; then guest=${2:?--guest DIR}; fi
name=guest_harness_retry

real=$(command -v qemu-system-x86_64 || true)
if [ -z "$real" ]; then
	echo "$name: SKIP: qemu-system-x86_64 is not installed" \
		"(scripts/deps-guest.sh installs it)" >&2
	exit 77
fi
mkdir -p "$(dirname "$guest")"
(
	flock -w 300 9 || { echo "$name: guest build lock timeout" >&2; exit 2; }
	"$here/build-guest.sh" "$guest" >/dev/null
) 9>"$(dirname "$guest")/.guest.lock"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vio-guest-retry.XXXXXX")
trap '[ "${KEEP:-0}" = 1 ] || rm -rf "$tmp"' EXIT

# the wrapper: FAKE_MODE says when it crashes; FAKE_COUNT counts launches
cat >"$tmp/qemu" <<EOF
#!/usr/bin/env bash
n=\$(cat "\$FAKE_COUNT" 2>/dev/null || echo 0)
echo \$((n + 1)) >"\$FAKE_COUNT"
case "\$FAKE_MODE:\$n" in
first:0 | always:*) kill -SEGV \$\$ ;;
late:*)
	serial=
	prev=
	for a in "\$@"; do
		[ "\$prev" = -serial ] && serial=\${a#file:}
		prev=\$a
	done
	setpriv --pdeathsig KILL -- "$real" "\$@" &
	q=\$!
	for _ in \$(seq 1200); do
		grep -q 'VIO-GUEST-INIT:' "\$serial" 2>/dev/null && break
		kill -0 \$q 2>/dev/null || break
		sleep 0.05
	done
	kill -KILL \$q 2>/dev/null
	wait \$q
	kill -SEGV \$\$
	;;
esac
exec "$real" "\$@"
EOF
chmod +x "$tmp/qemu"
echo 'echo retry-test: the test ran; sleep 1' >"$tmp/test.sh"

fails=0
check() { # MODE WANT_RC WANT_BOOTS WANT_RETRIES
	local mode=$1 want_rc=$2 want_boots=$3 want_retries=$4 rc=0
	rm -f "$tmp/count"
	FAKE_MODE=$mode FAKE_COUNT=$tmp/count QEMU=$tmp/qemu BOOT_DEADLINE=90 \
		timeout 200 "$here/run-guest.sh" --guest "$guest" \
		--test "$tmp/test.sh" --timeout 150 >"$tmp/$mode.out" 2>&1 || rc=$?
	local boots retries launches
	boots=$(sed -n 's/^run-guest: .* boots=\([0-9]*\)$/\1/p' "$tmp/$mode.out")
	retries=$(grep -c '^run-guest: RETRY: QEMU died of signal 11 before /init' \
		"$tmp/$mode.out" || true)
	launches=$(cat "$tmp/count" 2>/dev/null || echo 0)
	if [ "$want_rc" = 1 ] &&
		! grep -q '^run-guest: FAIL: no result marker: QEMU died of signal 11$' \
			"$tmp/$mode.out"; then
		rc="$rc, no FAIL line naming the signal"
	fi
	if [ "$rc" = "$want_rc" ] && [ "$boots" = "$want_boots" ] &&
		[ "$retries" = "$want_retries" ] && [ "$launches" = "$want_boots" ]; then
		echo "$name: ok: $mode: exit $rc, boots=$boots, $retries retry"
	else
		echo "$name: FAIL: $mode: exit $rc (want $want_rc), boots=$boots" \
			"(want $want_boots), launches $launches, $retries RETRY" \
			"lines (want $want_retries)" >&2
		sed 's/^/  | /' "$tmp/$mode.out" >&2
		fails=$((fails + 1))
	fi
}
check first 0 2 1
check always 1 2 1
check late 1 1 0
if [ "$fails" != 0 ]; then
	echo "$name: FAIL: $fails of 3 cases" >&2
	exit 1
fi
echo "$name: PASS"
