#!/bin/sh
# One container run of a `selinux` case, inside the guest (busybox sh). Shipped per job, not baked.
#
#   case.sh RUN STEP...     RUN: the run's name (first, second); STEP: label | write | reuse | build
#
# Every record goes to a file in /out (a directory the guest labelled container_file_t), never to
# stdout: a confined container's stdio can be lost (../README.md: container output), and a missing
# record must read as lost output, not as an outcome. GOCACHE (/cache) is the mount under test.
out=/out
run=$1
shift
up() {
	read -r u _ </proc/uptime
	echo "$u"
}
# ok FILE CMD...: "ok" or "denied" into FILE, the command's stderr appended to FILE.err
ok() {
	f=$1
	shift
	if "$@" >/dev/null 2>>"$f.err"; then echo ok >"$f"; else echo denied >"$f"; fi
}
for s in "$@"; do
	case "$s" in
	label)
		cat /proc/self/attr/current >"$out/label" 2>"$out/label.err"
		;;
	write) # a new file in the cache directory
		ok "$out/write" touch "/cache/gcm-write-$run"
		;;
	reuse) # the file the first run's container created: read it, then write it
		ok "$out/reuse-read" cat /cache/gcm-write-first
		ok "$out/reuse-write" touch /cache/gcm-write-first
		;;
	build)
		rm -rf /tmp/gcm/src
		mkdir -p /tmp/gcm
		cp -r /opt/gcm/src /tmp/gcm/src
		cd /tmp/gcm/src || exit 3
		t0=$(up)
		go build -v . >"$out/build.out" 2>"$out/build.err"
		echo $? >"$out/build.rc"
		t1=$(up)
		echo "$t0 $t1" >"$out/build.time"
		cd / || exit 3
		;;
	*)
		echo "unknown step $s" >>"$out/errors"
		;;
	esac
	echo "$s" >>"$out/done"
done
