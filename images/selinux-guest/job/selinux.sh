# shellcheck shell=bash
# The `selinux` cases (containers under SELinux enforcing): one podman run (or build) per line, on the case's
# cache; sourced by job.sh, which gives mark, now, case_dir, IMAGE and GODIR (toolchain -> its mount).
#
# Lines: selinux|toolchain|variant|budget|run|mount|relabel|security opts|steps
#   mount: bind | volume | build; relabel: "" | z | Z; security opts and steps: space-separated
# Each run's records go to <case dir>/<run>/: case.sh's files, the engine's output and exit code, the cache
# directory's label before and after, start and end times.
HOME_CACHE=/home/gopher/.cache # a user's ~/.cache: user_home_t, like ~/.cache/go-build

selinux_setup() {
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
}

# The case's first run decides where its cache is: a directory in the user's home, a named volume, or the
# build's cache mount (found under /var/tmp once a build made it; its id names the toolchain and the case).
selinux_start_case() { # NAME MOUNT
	cache_id=gcm-$1
	case $2 in
	bind)
		cache=$HOME_CACHE/gcm-$1
		mkdir -p "$cache"
		;;
	volume)
		runcon -l s0 podman volume create "gcm-$1" >/dev/null
		cache=$(runcon -l s0 podman volume inspect --format '{{.Mountpoint}}' "gcm-$1")
		;;
	build) cache= ;;
	esac
}
selinux_dir_label() {
	if [ -n "$cache" ]; then
		stat -c %C "$cache"
		return
	fi
	local d found=
	for d in /var/tmp/buildah-cache-*/*; do
		case $d in *"$cache_id"*) found=$d ;; esac
	done
	if [ -n "$found" ]; then stat -c %C "$found"; else stat -c %C /var/tmp/buildah-cache-*/*; fi
}

run_selinux() {
	local line s tc v budget run mount relabel secopts steps current='' out name go volume containerfile
	local -a step_args opts sec
	selinux_setup
	while IFS= read -r line; do
		IFS='|' read -r s tc v budget run mount relabel secopts steps <<<"$line"
		name=$tc-$v
		if [ "$tc/$v" != "$current" ]; then
			if [ -n "$current" ]; then mark case-end "selinux/$current"; fi
			current=$tc/$v
			mark case-start "selinux/$current"
			selinux_start_case "$name" "$mount"
		fi
		go=${GODIR[$tc]}
		out=$(case_dir "$s" "$tc" "$v")/$run
		read -ra step_args <<<"$steps"
		mark run-start "$current" "$run"
		mkdir -p "$out"
		chcon system_u:object_r:container_file_t:s0 "$out"
		now >"$out/t_start"
		selinux_dir_label >"$out/dir_label_before" 2>&1
		if [ "$mount" = build ]; then
			# the cache mount's id names the toolchain and the case: one cache per toolchain in this boot
			containerfile=$JOB/Containerfile-$name
			sed "s/id=gcm-selinux-gocache/id=$cache_id/" "$JOB/ro/Containerfile" >"$containerfile"
			timeout -k 10 "$budget" runcon -l s0 podman build --pull=never --network=none \
				--build-arg "GCM_IMAGE=$IMAGE" --build-arg "GCM_RUN=$run" --build-arg "GCM_STEPS=$steps" \
				-v "$JOB/ro:/opt/gcm:ro" -v "$go:/usr/local/go:ro" -v "$out:/out" \
				-f "$containerfile" -t "localhost/gcm-build:$name-$run" "$JOB/ro/ctx" >"$out/engine.log" 2>&1
		else
			if [ "$mount" = bind ]; then volume=$cache:/cache${relabel:+:$relabel}; else volume=gcm-$name:/cache; fi
			opts=()
			read -ra sec <<<"$secopts"
			for o in "${sec[@]}"; do opts+=(--security-opt "$o"); done
			timeout -k 10 "$budget" runcon -l s0 podman run --rm --network=none --name "gcm-$name-$run" \
				"${opts[@]}" -v "$volume" -v "$JOB/ro:/opt/gcm:ro" -v "$go:/usr/local/go:ro" -v "$out:/out" "$IMAGE" \
				/bin/sh /opt/gcm/case.sh "$run" "${step_args[@]}" >"$out/engine.log" 2>&1
		fi
		echo $? >"$out/engine.rc"
		selinux_dir_label >"$out/dir_label_after" 2>&1
		now >"$out/t_end"
		mark run-end "$current" "$run" "rc=$(cat "$out/engine.rc")"
	done
	if [ -n "$current" ]; then mark case-end "selinux/$current"; fi
}
