#!/bin/bash
# Make the containers' image from the guest's busybox-static: a few MB, with the Go settings of every
# container in its environment (the toolchain is mounted at /usr/local/go by each run, not imported).
#
#   make-image.sh IMAGE LOG     IMAGE: the tag to create; LOG: where podman's output goes
#
# Run by bake.sh in the guest's root filesystem (so no boot pays for it), and by job.sh in a boot only if
# the baked image is missing. Part of the base disk's content key.
set -euo pipefail
image=$1 log=$2
root=$(mktemp -d)
mkdir -p "$root"/bin "$root"/etc "$root"/root "$root"/tmp "$root"/usr/local/go "$root"/opt/gcm "$root"/out "$root"/cache
chmod 1777 "$root"/tmp
cp /bin/busybox "$root"/bin/busybox
for a in sh cat touch ls mkdir cp rm id echo stat find wc env sleep head tail date mv chmod true false test '['; do
	ln -s busybox "$root/bin/$a"
done
echo 'root:x:0:0:root:/root:/bin/sh' >"$root"/etc/passwd
echo 'root:x:0:' >"$root"/etc/group
# GOCACHE on the mount under test; no module downloads (the workload needs none), no toolchain switch.
env=(PATH=/usr/local/go/bin:/bin HOME=/root GOCACHE=/cache GOMODCACHE=/tmp/gcm/mod GOPROXY=off GOSUMDB=off
	GOTOOLCHAIN=local GOFLAGS=-mod=readonly CGO_ENABLED=0)
changes=()
for e in "${env[@]}"; do changes+=(--change "ENV $e"); done
tar -C "$root" -c . | podman import "${changes[@]}" - "$image" >"$log" 2>&1
rm -rf "$root"
podman image exists "$image"
