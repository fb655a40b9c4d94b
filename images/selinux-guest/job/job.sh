#!/bin/bash
# One boot of the guest lab: mount the toolchain disks, then run each guest scenario's cases with its script
# (<scenario>.sh, sourced: it defines run_<scenario>, which reads that scenario's lines of ./cases on stdin).
# Started by gcm-guest-job in the unpacked job directory.
#
#   env GCM_RESULTS: the results directory (goes back to the host); fd 3: the serial console (GCM-MARK lines)
#   ./params   KEY=value lines, written by the host:
#              MODE=<selinux|systemd|nfs|apparmor>  LSM=<selinux|apparmor>  IMAGE=<the containers' image tag>
#              GO=<toolchain>|<device>|<mountpoint>|<SELinux context or empty>   one line per toolchain mount
#   ./cases    one line per case (a `selinux` case: per container run), fields separated by "|":
#              scenario|toolchain|variant|budget[|scenario-specific fields]
#              budget: seconds the case (run) may take (a hang guard, already scaled for the accelerator)
#   ./make-image.sh, ./ro/ (case.sh, the workload, Containerfile, an empty build context)
#
# Each case's records go to $GCM_RESULTS/cases/<scenario>/<toolchain>/<variant>/ (a `selinux` case: one directory
# per run below it), with its start and end times (t_start, t_end: epoch seconds) for the host's denial windows.
# The whole file: LSM, IMAGE, GODIR and GOHOST are read by the case scripts it sources, checked one at a time.
# shellcheck disable=SC2034
set -u
mark() { echo "GCM-MARK $*" >&3; }
now() { date +%s.%N; }
JOB=$PWD
CASES="$GCM_RESULTS/cases"
MODE='' LSM='' IMAGE=''
declare -A GODIR=()  # toolchain -> the mount containers use (and every host-level case outside SELinux)
declare -A GOHOST=() # toolchain -> the mount host-level cases use (SELinux: labelled bin_t)
while IFS='=' read -r key value; do
	case $key in
	MODE) MODE=$value ;;
	LSM) LSM=$value ;;
	IMAGE) IMAGE=$value ;;
	GO)
		IFS='|' read -r tc dev dir ctx <<<"$value"
		mkdir -p "$dir"
		if [ -n "$ctx" ]; then mount -o "ro,context=$ctx" "$dev" "$dir" || exit 10; else mount -o ro "$dev" "$dir" || exit 10; fi
		if [ "$ctx" = "" ] || [[ $ctx == *container_ro_file_t* ]]; then GODIR[$tc]=$dir; fi
		if [ "$ctx" = "" ] || [[ $ctx != *container_ro_file_t* ]]; then GOHOST[$tc]=$dir; fi
		;;
	esac
done <"$JOB/params"
[ -n "$MODE" ] || exit 12
echo "$MODE" >"$GCM_RESULTS/mode"
mkdir -p "$CASES"
# case_dir SCENARIO TOOLCHAIN VARIANT: the case's record directory, created
case_dir() {
	local d=$CASES/$1/$2/$3
	mkdir -p "$d"
	echo "$d"
}
# What the report's preamble names: the LSMs, AppArmor and the profiles loaded at boot (before any case loads one
# of its own), systemd, nfs-kernel-server.
{
	echo "lsm=$(cat /sys/kernel/security/lsm 2>/dev/null)"
	echo "apparmor_enabled=$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null)"
	echo "apparmor=$(dpkg-query -W -f '${Version}' apparmor 2>/dev/null)"
	if [ -r /sys/kernel/security/apparmor/profiles ]; then
		echo "apparmor_profiles=$(wc -l </sys/kernel/security/apparmor/profiles)"
		echo "apparmor_enforce=$(grep -c '(enforce)' /sys/kernel/security/apparmor/profiles)"
	fi
	echo "systemd=$(systemctl --version 2>/dev/null | awk 'NR == 1 {print $2}')"
	echo "nfs=$(dpkg-query -W -f '${Version}' nfs-kernel-server 2>/dev/null)"
} >"$GCM_RESULTS/lab-facts.txt"
# The scenarios in the order their lines come; each script once.
mapfile -t scenarios < <(cut -d'|' -f1 "$JOB/cases" | awk '!seen[$0]++')
for s in "${scenarios[@]}"; do
	[ -f "$JOB/$s.sh" ] || {
		echo "no script for scenario $s" >&2
		continue
	}
	# shellcheck disable=SC1090 # one script per scenario, shipped in the job
	. "$JOB/$s.sh"
	mark scenario-start "$s"
	"run_${s//-/_}" < <(awk -F'|' -v s="$s" '$1 == s' "$JOB/cases")
	mark scenario-end "$s"
done
cat /sys/kernel/security/apparmor/profiles >"$GCM_RESULTS/apparmor-profiles.txt" 2>/dev/null
journalctl -k -o short-unix --no-pager >"$GCM_RESULTS/journal-kernel.txt" 2>/dev/null
exit 0
