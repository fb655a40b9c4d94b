# shellcheck shell=bash
# The `apparmor` cases: Go builds under AppArmor enforcing with Debian's profiles loaded; sourced by job.sh (mark,
# now, case_dir, GOHOST, GODIR, IMAGE).
#
# Lines: apparmor|toolchain|variant|budget
#   root, user   root's and gopher's own builds with the default ~/.cache/go-build (no profile confines go)
#   profile      gopher's build with `go` confined by an enforced profile of ours, attached to the toolchain's
#                bin/go the way a packaged program's profile is: it lists the toolchain, the sources (read, lock:
#                go locks go.mod), /tmp, ~/.config/go (Go's telemetry counters), but not ~/.cache
#   profile-rw   the same profile plus the rule such tables recommend: owner @{HOME}/.cache/go-build/** rwk
#   podman       a podman container (its default AppArmor profile) with GOCACHE bind-mounted from gopher's home
# Records: out.txt (goprobe.sh's key=value lines; podman: case.sh's files in run/), profile.txt (the profile
# loaded), ls.txt, the kernel's DENIED lines come from the audit log by time window (host side).
LAB=/opt/gcm-lab
AA_USER=gopher

aa_setup() {
	mkdir -p "$LAB"
	cp -r "$JOB/ro/src" "$JOB/goprobe.sh" "$LAB/"
	chmod -R a+rX "$LAB"
	{
		echo "apparmor enabled: $(cat /sys/module/apparmor/parameters/enabled)"
		cat /sys/kernel/security/apparmor/profiles
	} >"$GCM_RESULTS/apparmor-setup.log" 2>&1
}

# aa_profile TOOLCHAIN-DIR RW: an enforced profile attached to <toolchain>/bin/go; RW=1 adds the cache rule
aa_profile() {
	cat <<PROFILE
abi <abi/3.0>,
include <tunables/global>

profile gcm-go $1/bin/go {
  include <abstractions/base>

  $1/** mrix,
  $LAB/** rk,
  /tmp/ r,
  owner /tmp/** rwk,
  @{PROC}/** r,
  /sys/** r,
  /etc/** r,
  owner @{HOME}/ r,
  owner @{HOME}/.config/ rw,
  owner @{HOME}/.config/go/ rw,
  owner @{HOME}/.config/go/** rwk,
PROFILE
	if [ "$2" = 1 ]; then
		cat <<RULE
  owner @{HOME}/.cache/ rw,
  owner @{HOME}/.cache/go-build/ rw,
  owner @{HOME}/.cache/go-build/** rwk,
RULE
	fi
	echo "}"
}

run_apparmor() {
	local line s tc v budget d go home out
	aa_setup
	while IFS= read -r line; do
		IFS='|' read -r s tc v budget <<<"$line"
		budget=$((budget < 300 ? budget : 300)) # each command's hang guard: these builds take seconds
		d=$(case_dir "$s" "$tc" "$v")
		go=${GOHOST[$tc]}
		home=/home/$AA_USER
		mark case-start "apparmor/$tc/$v"
		now >"$d/t_start"
		case $v in
		root)
			HOME=/root timeout -k 10 "$budget" sh "$LAB/goprobe.sh" "$go" "$LAB/src" env build:build build:rebuild \
				>"$d/out.txt" 2>"$d/err.txt"
			ls -ld /root/.cache/go-build >"$d/ls.txt" 2>&1
			;;
		user)
			rm -rf "$home/.cache/go-build"
			timeout -k 10 "$budget" runuser -u "$AA_USER" -- env -i PATH=/usr/bin:/bin HOME="$home" \
				sh "$LAB/goprobe.sh" "$go" "$LAB/src" env build:build build:rebuild >"$d/out.txt" 2>"$d/err.txt"
			ls -ld "$home/.cache/go-build" >"$d/ls.txt" 2>&1
			;;
		profile | profile-rw)
			rm -rf "$home/.cache/go-build"
			aa_profile "$go" "$([ "$v" = profile-rw ] && echo 1 || echo 0)" >"$d/profile.txt"
			apparmor_parser -r "$d/profile.txt" >"$d/parser.log" 2>&1
			echo $? >"$d/parser.rc"
			grep gcm-go /sys/kernel/security/apparmor/profiles >"$d/loaded.txt" 2>&1
			timeout -k 10 "$budget" runuser -u "$AA_USER" -- env -i PATH=/usr/bin:/bin HOME="$home" \
				sh "$LAB/goprobe.sh" "$go" "$LAB/src" env build:build build:rebuild >"$d/out.txt" 2>"$d/err.txt"
			ls -ld "$home/.cache/go-build" >"$d/ls.txt" 2>&1
			apparmor_parser -R "$d/profile.txt" >>"$d/parser.log" 2>&1
			;;
		podman)
			mkdir -p "$home/.cache/gcm-$tc-podman"
			chown "$AA_USER:" "$home/.cache" "$home/.cache/gcm-$tc-podman"
			out=$d/run
			mkdir -p "$out/second"
			timeout -k 10 "$budget" podman run --rm --network=none --name "gcm-aa-$tc" \
				-v "$home/.cache/gcm-$tc-podman:/cache" -v "$JOB/ro:/opt/gcm:ro" -v "${GODIR[$tc]}:/usr/local/go:ro" \
				-v "$out:/out" "$IMAGE" /bin/sh /opt/gcm/case.sh first label write build >"$d/engine.log" 2>&1
			echo $? >"$d/engine.rc"
			podman run --rm --network=none -v "$home/.cache/gcm-$tc-podman:/cache" -v "$JOB/ro:/opt/gcm:ro" \
				-v "${GODIR[$tc]}:/usr/local/go:ro" -v "$out/second:/out" "$IMAGE" /bin/sh /opt/gcm/case.sh second \
				build >"$d/engine2.log" 2>&1 || true
			ls -ld "$home/.cache/gcm-$tc-podman" >"$d/ls.txt" 2>&1
			;;
		*) echo "unknown variant $v" >"$d/error" ;;
		esac
		now >"$d/t_end"
		mark case-end "apparmor/$tc/$v"
	done
}
