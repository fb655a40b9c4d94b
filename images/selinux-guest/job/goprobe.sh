#!/bin/sh
# A Go build outside any container, as the calling process is (a systemd unit, a logged-in user, a profile):
# key=value lines on stdout, one record each, single-line values. Shipped per job; run by the mode scripts.
#
#   goprobe.sh GOROOT SRC STEP...
#     env           uid, user, HOME, XDG_CACHE_HOME, GOCACHE, CACHE_DIRECTORY, the SELinux context, the AppArmor
#                   confinement, `go env GOCACHE GOMODCACHE` (its exit code and first line of error)
#     build:NAME    `go build -v .` in SRC: NAME_rc, NAME_sec, NAME_compiled (packages compiled), NAME_err (Go's
#                   first line that is not a package path)
#     modd:NAME     `go mod download -x` in SRC: NAME_rc, NAME_sec, NAME_err
#     clean:NAME    `go clean -cache`: NAME_rc, NAME_err
#     cachedir-env  GOCACHE=$CACHE_DIRECTORY for the steps after it (what a unit's ExecStart can do with the
#                   directory systemd made for CacheDirectory=)
go=$1/bin/go
src=$2
shift 2
val() { printf '%s' "${1-<unset>}" | tr '\n' ' '; }
up() { cut -d' ' -f1 /proc/uptime; }
PKG='^[A-Za-z0-9_.~-]+(/[A-Za-z0-9_.~+-]+)*$'
for s in "$@"; do
	name=${s#*:}
	case $s in
	env)
		echo "uid=$(id -u)"
		echo "user=$(id -un 2>/dev/null)"
		echo "home=$(val "${HOME-<unset>}")"
		echo "xdg_cache_home=$(val "${XDG_CACHE_HOME-<unset>}")"
		echo "gocache_env=$(val "${GOCACHE-<unset>}")"
		echo "cache_directory=$(val "${CACHE_DIRECTORY-<unset>}")"
		echo "selinux_context=$(tr -d '\0' </proc/self/attr/current 2>/dev/null)"
		echo "apparmor=$(cat /proc/self/attr/apparmor/current 2>/dev/null)"
		out=$("$go" env GOCACHE GOMODCACHE 2>&1)
		echo "go_env_rc=$?"
		echo "go_env_gocache=$(printf '%s\n' "$out" | sed -n 1p)"
		echo "go_env_gomodcache=$(printf '%s\n' "$out" | sed -n 2p)"
		;;
	build:*)
		t0=$(up)
		out=$(cd "$src" && "$go" build -v . 2>&1)
		rc=$?
		t1=$(up)
		echo "${name}_rc=$rc"
		echo "${name}_sec=$(echo "$t0 $t1" | awk '{printf "%.2f", $2 - $1}')"
		echo "${name}_compiled=$(printf '%s\n' "$out" | grep -Ec "$PKG")"
		echo "${name}_err=$(printf '%s\n' "$out" | grep -Ev "$PKG" | grep -v '^go: downloading' | grep . | head -n 1)"
		;;
	modd:*)
		t0=$(up)
		out=$(cd "$src" && "$go" mod download 2>&1)
		rc=$?
		t1=$(up)
		echo "${name}_rc=$rc"
		echo "${name}_sec=$(echo "$t0 $t1" | awk '{printf "%.2f", $2 - $1}')"
		echo "${name}_err=$(printf '%s\n' "$out" | grep . | head -n 1)"
		;;
	clean:*)
		out=$("$go" clean -cache 2>&1)
		echo "${name}_rc=$?"
		echo "${name}_err=$(printf '%s\n' "$out" | grep . | head -n 1)"
		;;
	cachedir-env)
		GOCACHE=${CACHE_DIRECTORY-}
		export GOCACHE
		;;
	*) echo "unknown_step=$s" ;;
	esac
done
