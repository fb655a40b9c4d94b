#!/bin/bash
# The `selinux` cases of one run, in the SELinux-enforcing guest: one podman run (or build) per run of each
# case, on the cache under test. Started by gcm-guest-job in the unpacked job directory.
#
#   env GCM_RESULTS: the results directory (goes back to the host); fd 3: the serial console (GCM-MARK lines)
#   ./params   IMAGE=<the containers' image tag>  (KEY=value lines, written by the host)
#   ./cases    one line per container run, in order, fields separated by "|":
#              variant|run|mount|relabel|security opts|budget|steps
#              mount: bind | volume | build; relabel: "" | z | Z; security opts and steps: space-separated;
#              budget: seconds the run may take (a hang guard, already scaled for the accelerator)
#   ./make-image.sh, ./ro/ (case.sh, the workload, Containerfile, an empty build context)
#
# Each run's records go to $GCM_RESULTS/cases/<variant>/<run>/: case.sh's files, the engine's output and exit
# code, the cache directory's label before and after, start and end times.
set -u
mark() { echo "GCM-MARK $*" >&3; }
JOB=$PWD
CASES="$GCM_RESULTS/cases"
GO=/opt/gcm-go                  # where the toolchain disk is mounted
HOME_CACHE=/home/gopher/.cache  # a user's ~/.cache: user_home_t, like ~/.cache/go-build
IMAGE=
while IFS='=' read -r key value; do
	case $key in
	IMAGE) IMAGE=$value ;;
	esac
done <"$JOB/params"
[ -n "$IMAGE" ] || exit 12
mkdir -p "$CASES"
# the Go toolchain disk, read-only, labelled like an image layer (containers may read and execute it)
mkdir -p "$GO"
mount -o ro,context=system_u:object_r:container_ro_file_t:s0 /dev/vdd "$GO" || exit 10
# the containers' image: baked into the base disk; made here only if it is missing
mark image-start
mkdir -p /var/lib/containers/storage/volumes
if podman image exists "$IMAGE"; then echo baked >"$GCM_RESULTS/image-source"; else
	bash "$JOB/make-image.sh" "$IMAGE" "$GCM_RESULTS/image.log" || exit 11
	echo boot >"$GCM_RESULTS/image-source"
fi
# podman is bin_t here and runs unconfined, so its storage gets no engine type transitions: give it the
# labels the refpolicy container module's engine domain would (its file contexts; volumes/ container_file_t)
restorecon -R /var/lib/containers
chcon system_u:object_r:container_file_t:s0 /var/lib/containers/storage/volumes
ls -Zd /var/lib/containers/storage/* >"$GCM_RESULTS/storage-labels" 2>&1
semodule -lfull 2>/dev/null | awk '$2 == "container" || $2 == "gcmstdio" {print $2 " (priority " $1 ")"}' |
	paste -sd, >"$GCM_RESULTS/modules"
mark image-done
mkdir -p "$HOME_CACHE"
# the job's read-only inputs (case.sh, the workload) are readable by every container
chcon -R system_u:object_r:container_file_t:s0 "$JOB/ro"
now() { date +%s.%N; }
# -l s0: podman at level s0 (with the gcmstdio policy module) keeps container stdio working
engine() { runcon -l s0 podman "$@"; }

# The case's first run decides where its cache is: a directory in the user's home, a named volume, or the
# build's cache mount (found under /var/tmp once a build made it).
start_case() { # VARIANT MOUNT
	mark case-start "$1"
	cache=$HOME_CACHE/gcm-$1
	case $2 in
	bind) mkdir -p "$cache" ;;
	volume)
		engine volume create "gcm-$1" >/dev/null
		cache=$(engine volume inspect --format '{{.Mountpoint}}' "gcm-$1")
		;;
	build) cache= ;;
	esac
}
dir_label() {
	if [ -n "$cache" ]; then stat -c %C "$cache"; else stat -c %C /var/tmp/buildah-cache-*/*; fi
}

mapfile -t runs <"$JOB/cases"
variant=
for line in "${runs[@]}"; do
	IFS='|' read -r v run mount relabel secopts budget steps <<<"$line"
	if [ "$v" != "$variant" ]; then
		if [ -n "$variant" ]; then mark case-end "$variant"; fi
		variant=$v
		start_case "$variant" "$mount"
	fi
	out=$CASES/$variant/$run
	read -ra step_args <<<"$steps"
	mark run-start "$variant" "$run"
	mkdir -p "$out"
	chcon system_u:object_r:container_file_t:s0 "$out"
	now >"$out/t_start"
	dir_label >"$out/dir_label_before" 2>&1
	if [ "$mount" = build ]; then
		timeout -k 10 "$budget" runcon -l s0 podman build --pull=never --network=none \
			--build-arg "GCM_IMAGE=$IMAGE" --build-arg "GCM_RUN=$run" --build-arg "GCM_STEPS=$steps" \
			-v "$JOB/ro:/opt/gcm:ro" -v "$GO:/usr/local/go:ro" -v "$out:/out" \
			-f "$JOB/ro/Containerfile" -t "localhost/gcm-build:$run" "$JOB/ro/ctx" >"$out/engine.log" 2>&1
	else
		if [ "$mount" = bind ]; then volume=$cache:/cache${relabel:+:$relabel}; else volume=gcm-$variant:/cache; fi
		opts=()
		read -ra sec <<<"$secopts"
		for o in "${sec[@]}"; do opts+=(--security-opt "$o"); done
		timeout -k 10 "$budget" runcon -l s0 podman run --rm --network=none --name "gcm-$variant-$run" \
			"${opts[@]}" -v "$volume" -v "$JOB/ro:/opt/gcm:ro" -v "$GO:/usr/local/go:ro" -v "$out:/out" "$IMAGE" \
			/bin/sh /opt/gcm/case.sh "$run" "${step_args[@]}" >"$out/engine.log" 2>&1
	fi
	echo $? >"$out/engine.rc"
	dir_label >"$out/dir_label_after" 2>&1
	now >"$out/t_end"
	mark run-end "$variant" "$run" "rc=$(cat "$out/engine.rc")"
done
if [ -n "$variant" ]; then mark case-end "$variant"; fi
