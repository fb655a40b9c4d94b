# shellcheck shell=bash
# The `nfs` cases: GOCACHE and GOMODCACHE on NFS mounts of an export this guest serves itself over loopback;
# sourced by job.sh (mark, now, case_dir, GOHOST). Go runs as the user gopher (uid 1000) in a copy of the `lib`
# workload on the local disk; only the caches are on NFS. The export keeps root_squash, as servers do by default.
#
# Lines: nfs|toolchain|variant|budget     variant: v4.2 | v3 | v3-nolock (the mount's vers= and nolock)
# Each case mounts its own directory of the export twice (the second with nosharecache: a separate client view of
# the same files, as a second machine would have) and records, as files in its directory:
#   mount-a.rc, mount-b.rc, mounts.txt   mount's exit codes and the options the kernel shows
#   flock.txt            cross=<rc> same=<rc>: `flock -n` through mount b (cross) and a (same) while a process holds
#                        an exclusive flock through mount a (1: excluded, 0: acquired: no exclusion)
#   go-a.out             go mod download, a cold build and a warm build through mount a (goprobe.sh records)
#   go-b.out             a build through mount b on the cache mount a filled (does the other view hit?)
#   conc-a.out, conc-b.out  go mod download + a cold build at the same time through a and b, on fresh caches
#   clean.out            go clean -cache through a, then a build
LAB=/opt/gcm-lab
NFS_EXPORT=/srv/gcm-nfs
NFS_USER=gopher

nfs_setup() {
	mkdir -p "$LAB" "$NFS_EXPORT"
	cp -r "$JOB/goprobe.sh" "$JOB/ro/lib" "$JOB/ro/proxy" "$LAB/"
	chmod -R a+rX "$LAB"
	echo "$NFS_EXPORT 127.0.0.1(rw,sync,no_subtree_check)" >/etc/exports
	{
		modprobe nfsd
		systemctl start rpcbind.socket rpcbind.service nfs-server.service
		echo "nfs-server: $(systemctl is-active nfs-server.service)"
		exportfs -v
		echo "nfsd versions: $(cat /proc/fs/nfsd/versions 2>&1)"
	} >"$GCM_RESULTS/nfs-setup.log" 2>&1
	mark nfs-up "$(systemctl is-active nfs-server.service)"
}

# nfs_go MOUNT CACHE-SUFFIX GOROOT SRC STEP...: goprobe.sh as gopher, GOCACHE and GOMODCACHE below MOUNT
nfs_go() {
	local mnt=$1 sfx=$2 go=$3 src=$4
	shift 4
	runuser -u "$NFS_USER" -- env -i PATH=/usr/bin:/bin HOME=/home/$NFS_USER GOCACHE="$mnt/gocache$sfx" \
		GOMODCACHE="$mnt/mod$sfx" GOPROXY=file://$LAB/proxy GOSUMDB=off GOFLAGS=-mod=mod GOTOOLCHAIN=local \
		sh "$LAB/goprobe.sh" "$go" "$src" "$@"
}

run_nfs() {
	local line s tc v budget d go opts a b sub src t
	nfs_setup
	while IFS= read -r line; do
		IFS='|' read -r s tc v budget <<<"$line"
		d=$(case_dir "$s" "$tc" "$v")
		go=${GOHOST[$tc]}
		mark case-start "nfs/$tc/$v"
		now >"$d/t_start"
		case $v in
		v4.2) opts=vers=4.2 ;;
		v3) opts=vers=3 ;;
		v3-nolock) opts=vers=3,nolock ;;
		*)
			echo "unknown variant $v" >"$d/error"
			continue
			;;
		esac
		sub=$tc-$v a=/mnt/gcm-$tc-$v-a b=/mnt/gcm-$tc-$v-b src=/home/$NFS_USER/gcm-nfs-$tc-$v
		mkdir -p "$NFS_EXPORT/$sub" "$a" "$b"
		chown "$NFS_USER:" "$NFS_EXPORT/$sub"
		timeout -k 5 120 mount -t nfs -o "$opts" "127.0.0.1:$NFS_EXPORT/$sub" "$a" >"$d/mount-a.log" 2>&1
		echo $? >"$d/mount-a.rc"
		timeout -k 5 120 mount -t nfs -o "$opts,nosharecache" "127.0.0.1:$NFS_EXPORT/$sub" "$b" >"$d/mount-b.log" 2>&1
		echo $? >"$d/mount-b.rc"
		grep -F " /mnt/gcm-$tc-$v-" /proc/mounts >"$d/mounts.txt"
		rm -rf "$src"
		cp -r "$LAB/lib" "$src"
		chown -R "$NFS_USER:" "$src"
		t=$((budget / 4))
		# flock: one process holds an exclusive lock through a; others try, without waiting, through b and a
		runuser -u "$NFS_USER" -- timeout 60 flock -x "$a/gcm-lock" sleep 4 >"$d/flock-holder.log" 2>&1 &
		sleep 1.5
		runuser -u "$NFS_USER" -- timeout 30 flock -x -n "$b/gcm-lock" true >"$d/flock-cross.log" 2>&1
		echo "cross=$?" >"$d/flock.txt"
		runuser -u "$NFS_USER" -- timeout 30 flock -x -n "$a/gcm-lock" true >"$d/flock-same.log" 2>&1
		echo "same=$?" >>"$d/flock.txt"
		wait
		timeout -k 10 "$t" bash -c "$(declare -f nfs_go); NFS_USER=$NFS_USER LAB=$LAB nfs_go \"\$@\"" _ \
			"$a" "" "$go" "$src" modd:modd build:cold build:warm >"$d/go-a.out" 2>"$d/go-a.err"
		timeout -k 10 "$t" bash -c "$(declare -f nfs_go); NFS_USER=$NFS_USER LAB=$LAB nfs_go \"\$@\"" _ \
			"$b" "" "$go" "$src" build:other >"$d/go-b.out" 2>"$d/go-b.err"
		# two at once, through the two views, on fresh caches
		timeout -k 10 "$t" bash -c "$(declare -f nfs_go); NFS_USER=$NFS_USER LAB=$LAB nfs_go \"\$@\"" _ \
			"$a" -conc "$go" "$src" modd:modd build:build >"$d/conc-a.out" 2>"$d/conc-a.err" &
		timeout -k 10 "$t" bash -c "$(declare -f nfs_go); NFS_USER=$NFS_USER LAB=$LAB nfs_go \"\$@\"" _ \
			"$b" -conc "$go" "$src" modd:modd build:build >"$d/conc-b.out" 2>"$d/conc-b.err" &
		wait
		timeout -k 10 "$t" bash -c "$(declare -f nfs_go); NFS_USER=$NFS_USER LAB=$LAB nfs_go \"\$@\"" _ \
			"$a" "" "$go" "$src" clean:clean build:after >"$d/clean.out" 2>"$d/clean.err"
		umount "$b" "$a" >"$d/umount.log" 2>&1
		now >"$d/t_end"
		mark case-end "nfs/$tc/$v"
	done
}
