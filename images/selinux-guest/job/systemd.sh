# shellcheck shell=bash
# The `systemd` cases: a Go build in transient units (systemd-run) as a service would run it; sourced by job.sh
# (mark, now, case_dir, GOHOST). Each case starts two units one after the other: `first` records the unit's
# environment, `go env GOCACHE`, a build and a rebuild; `second` (a new unit, same settings) builds again, so a
# cache that outlives the unit shows as a warm build.
#
# Lines: systemd|toolchain|variant|budget
#   root              no User=: root, with the environment systemd gives a system service
#   user-nohome       User= a system user whose home (/nonexistent) does not exist, as `adduser --system` makes
#   dynamic           DynamicUser=yes
#   dynamic-cachedir  DynamicUser=yes, CacheDirectory=go-build, GOCACHE=%C/go-build given with -E (--setenv);
#                     a third unit, `property`, gives it as -p Environment=GOCACHE=%C/go-build: which of the two
#                     expands the %C specifier is recorded, not assumed; two more (`viaenv`, `viaenv2`) set
#                     GOCACHE=$CACHE_DIRECTORY in the unit's command, the variable systemd sets for CacheDirectory=
# Records: <unit>.out (goprobe.sh's key=value lines), <unit>.err (the unit's stderr), <unit>.run (systemd-run's
# own output) and .run.rc, <unit>.state and .rc (SubState, Result, ExecMainStatus), cachedir.txt (/var/cache as
# root sees it after).
LAB=/opt/gcm-lab
NOHOME_USER=gcmnohome

systemd_setup() {
	mkdir -p "$LAB"
	cp -r "$JOB/ro/src" "$JOB/goprobe.sh" "$LAB/"
	chmod -R a+rX "$LAB"
	id "$NOHOME_USER" >/dev/null 2>&1 || useradd --system --no-create-home --home-dir /nonexistent "$NOHOME_USER"
	systemctl --version | head -n 1 >"$GCM_RESULTS/systemd-version"
}

# systemd_unit DIR NAME BUDGET GOROOT [--steps STEP...] PROPERTY...: one transient unit, its records in DIR/NAME.*
# (goprobe.sh's steps: env, a build and a rebuild unless given)
# Not `systemd-run --wait --pipe`: those need a D-Bus broker, which this guest has not (systemd-run and systemctl
# reach PID 1 over its private socket). The unit writes its output to files PID 1 opens for it, stays loaded after
# it exits (RemainAfterExit=) so its exit status can be read, and is stopped and forgotten after.
systemd_unit() {
	local d=$1 name=$2 budget=$3 go=$4 unit state i
	local -a steps=(env build:build build:rebuild)
	shift 4
	if [ "${1:-}" = --steps ]; then
		steps=("$2" "${steps[@]}")
		shift 2
	fi
	unit=gcm-$(basename "$(dirname "$d")")-$(basename "$d")-$name
	unit=${unit//./_}.service
	systemd-run --quiet --unit "$unit" -p RemainAfterExit=yes -p "StandardOutput=file:$d/$name.out" \
		-p "StandardError=file:$d/$name.err" -p WorkingDirectory="$LAB/src" -E GOPROXY=off -E GOTOOLCHAIN=local "$@" \
		/bin/sh "$LAB/goprobe.sh" "$go" "$LAB/src" "${steps[@]}" </dev/null >"$d/$name.run" 2>&1
	echo $? >"$d/$name.run.rc"
	for ((i = 0; i < budget * 2; i++)); do
		state=$(systemctl show -p SubState --value "$unit" 2>/dev/null)
		case $state in exited | failed | dead | "") break ;; esac
		sleep 0.5
	done
	systemctl show -p SubState -p Result -p ExecMainStatus "$unit" >"$d/$name.state" 2>&1
	systemctl show -p ExecMainStatus --value "$unit" >"$d/$name.rc" 2>/dev/null
	systemctl stop "$unit" >/dev/null 2>&1
	systemctl reset-failed "$unit" >/dev/null 2>&1
}

run_systemd() {
	local line s tc v budget d go
	local -a props
	systemd_setup
	while IFS= read -r line; do
		IFS='|' read -r s tc v budget <<<"$line"
		d=$(case_dir "$s" "$tc" "$v")
		go=${GOHOST[$tc]}
		mark case-start "systemd/$tc/$v"
		now >"$d/t_start"
		case $v in
		root) props=() ;;
		user-nohome) props=(-p "User=$NOHOME_USER") ;;
		dynamic) props=(-p DynamicUser=yes) ;;
		dynamic-cachedir) props=(-p DynamicUser=yes -p CacheDirectory=go-build) ;;
		*)
			echo "unknown variant $v" >"$d/error"
			continue
			;;
		esac
		if [ "$v" = dynamic-cachedir ]; then
			systemd_unit "$d" first "$budget" "$go" "${props[@]}" -E 'GOCACHE=%C/go-build'
			systemd_unit "$d" second "$budget" "$go" "${props[@]}" -E 'GOCACHE=%C/go-build'
			systemd_unit "$d" property "$budget" "$go" "${props[@]}" -p 'Environment=GOCACHE=%C/go-build'
			# what the unit itself can do: GOCACHE=$CACHE_DIRECTORY in its command; twice, for the new unit's hit
			systemd_unit "$d" viaenv "$budget" "$go" --steps cachedir-env "${props[@]}"
			systemd_unit "$d" viaenv2 "$budget" "$go" --steps cachedir-env "${props[@]}"
		else
			systemd_unit "$d" first "$budget" "$go" "${props[@]}"
			systemd_unit "$d" second "$budget" "$go" "${props[@]}"
		fi
		ls -la /var/cache /var/cache/private >"$d/cachedir.txt" 2>&1
		now >"$d/t_end"
		mark case-end "systemd/$tc/$v" "rc=$(cat "$d/first.rc")"
	done
}
