#!/usr/bin/env bash
# Usage: scripts/tiers.sh "UNIT_PKGS" "INTEGRATION_PKGS" "E2E_PKGS"
# Fails unless every package of `go list ./...` is named by exactly one
# test tier of the Makefile, so that no package's tests are left out of
# `make test` (and none run twice).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 3 ] || { echo "usage: $0 UNIT INTEGRATION E2E" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
names=(unit integration e2e)
i=0
for pkgs in "$@"; do
	name=${names[$i]}
	i=$((i + 1))
	# shellcheck disable=SC2086 # the list is a set of words on purpose
	if ! go list $pkgs >"$tmp/$name" 2>"$tmp/$name.err" || [ -s "$tmp/$name.err" ]; then
		echo "tier $name names a package that does not exist:" >&2
		cat "$tmp/$name.err" >&2
		exit 1
	fi
done
go list ./... | sort >"$tmp/all"
cat "$tmp/unit" "$tmp/integration" "$tmp/e2e" | sort >"$tmp/named"
fail=0
if dup=$(uniq -d "$tmp/named") && [ -n "$dup" ]; then
	echo "packages in more than one test tier (Makefile):" >&2
	echo "$dup" >&2
	fail=1
fi
if missing=$(comm -23 "$tmp/all" <(sort -u "$tmp/named")) && [ -n "$missing" ]; then
	echo "packages in no test tier (add them to UNIT_PKGS, INTEGRATION_PKGS or E2E_PKGS in the Makefile):" >&2
	echo "$missing" >&2
	fail=1
fi
exit $fail
