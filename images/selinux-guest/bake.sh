#!/usr/bin/env bash
# Bake the SELinux-enforcing Debian guest's base disk (run by runner/guest/image.py, as root, under its lock).
# What it relies on, and why: README.md beside it.
#
#   bake.sh RECIPE_DIR WORK_DIR OUT_DIR SUITE [MIRROR] [IMAGE]
#
# debootstrap (packages.txt) -> the refpolicy `container` module and the local stdio module built and
# installed -> config (enforcing, fstab, cgroupfs podman, serial autologin, the job runner) -> the
# containers' image IMAGE made by make-image.sh with podman in the chroot -> labels
# written with setfiles (the host needs no SELinux) -> an ext4 image made with `mkfs.ext4 -d`, which
# keeps the labels. OUT_DIR gets base.img, vmlinuz and initrd.img.
# Lines starting with GCM-BAKE are progress for the host.
set -euo pipefail
recipe=$1 work=$2 out=$3 suite=$4 mirror=${5:-} image=${6:-}
root=$work/root
step() { echo "GCM-BAKE $* [+${SECONDS}s]"; }
unmount_all() {
	for m in run dev/pts dev proc sys; do
		if mountpoint -q "$root/$m" 2>/dev/null; then umount -l "$root/$m" || true; fi
	done
}
trap unmount_all EXIT
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C "$@"; }

step "debootstrap: download"
pkgs=$(grep -v '^[[:space:]]*#' "$recipe/packages.txt" | tr -s '[:space:]' ',' | sed 's/^,//; s/,$//')
args=(--foreign --variant=minbase --arch=amd64 "--include=$pkgs" "$suite" "$root")
if [ -n "$mirror" ]; then args+=("$mirror"); fi
debootstrap "${args[@]}"
step "debootstrap: install"
# dpkg without an fsync per file: the tree is written once, then packed into the image by mkfs.
echo force-unsafe-io >"$root/etc/dpkg/dpkg.cfg.d/gcm-unsafe-io"
# No documentation, manual pages or translations: less to unpack, label and pack (the guest reads none).
printf '%s\n' 'path-exclude=/usr/share/doc/*' 'path-include=/usr/share/doc/*/copyright' 'path-exclude=/usr/share/man/*' \
	'path-exclude=/usr/share/locale/*' 'path-exclude=/usr/share/info/*' >"$root/etc/dpkg/dpkg.cfg.d/gcm-nodoc"
# A small initramfs from the start (the guest's disks are virtio): the kernel's postinst then builds it once, with
# only the modules listed, instead of once with most modules and again after the configuration step.
mkdir -p "$root/etc/initramfs-tools/conf.d" "$root/usr/share/initramfs-tools/modules.d"
echo MODULES=list >"$root/etc/initramfs-tools/conf.d/gcm-modules"
printf '%s\n' virtio_pci virtio_blk ext4 crc32c_generic >"$root/usr/share/initramfs-tools/modules.d/gcm"
if ! in_root /debootstrap/debootstrap --second-stage; then
	# Seen with podman's virtual container-network-stack: everything unpacked, configure stopped.
	[ -x "$root/usr/bin/dpkg" ] || exit 1
	echo "debootstrap stopped early: finishing with dpkg --configure -a"
fi
mountpoint -q "$root/proc" || mount -t proc proc "$root/proc"
mount --bind /dev "$root/dev"
in_root dpkg --configure -a
rm "$root/etc/dpkg/dpkg.cfg.d/gcm-unsafe-io"

step "policy modules: refpolicy container + gcmstdio"
mkdir -p "$root/tmp/gcm-policy"
cp "$recipe"/policy/*.te "$root/tmp/gcm-policy/"
in_root sh -euc '
	cd /tmp/gcm-policy
	tar --zstd -xf /usr/src/selinux-policy-src.tar.zst --strip-components=4 \
		selinux-policy-src/policy/modules/services/container.te \
		selinux-policy-src/policy/modules/services/container.fc \
		selinux-policy-src/policy/modules/services/container.if
	make -s -f /usr/share/selinux/devel/Makefile container.pp gcmstdio.pp
	# a plain -i fails on a file-context conflict with the spamassassin module
	semodule -n -d spamassassin -i container.pp -i gcmstdio.pp
	semodule -l | grep -qx container
	semodule -l | grep -qx gcmstdio
'
rm -rf "$root/tmp/gcm-policy"

step configuration
cp -a "$recipe/rootfs/." "$root/"
sed -i 's/^SELINUX=.*/SELINUX=enforcing/' "$root/etc/selinux/config"
grep -q '^SELINUX=enforcing' "$root/etc/selinux/config"
echo "/dev/vda / ext4 rw,relatime 0 0" >"$root/etc/fstab"
echo gcm-selinux-guest >"$root/etc/hostname"
# A user whose home holds the bind-mounted caches: labelled user_home_t, like ~/.cache/go-build.
in_root useradd --create-home --uid 1000 gopher
# The initramfs was built small by the kernel's postinst (conf.d and modules.d above); build it again only if the
# virtio block driver is missing from it. No units a one-job guest does not need: less to start under TCG.
if ! in_root sh -c 'lsinitramfs /boot/initrd.img-* | grep -q virtio_blk'; then
	echo "the initramfs lacks virtio_blk: building it again"
	in_root update-initramfs -u -k all
fi
in_root systemctl mask podman.service podman.socket podman-restart.service podman-auto-update.service \
	podman-auto-update.timer getty@tty1.service e2scrub_reap.service e2scrub_all.timer systemd-pstore.service \
	apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer fstrim.timer getty-static.service
# The NFS server and rpcbind start only in the `nfs` mode, by its job (job/nfs.sh); not in every boot.
in_root systemctl disable nfs-server.service rpcbind.service rpcbind.socket nfs-client.target
in_root apt-get clean
rm -rf "$root/var/lib/apt/lists/"* "$root/var/log/"*.log

if [ -n "$image" ]; then
	step "containers' image: podman import in the chroot"
	# podman unpacks a layer in a chroot of its own and remounts "/" there, which fails unless the root is a
	# mount point: bind the tree onto itself, with /proc, /sys, /dev and a /run of its own on top. All in a
	# private mount namespace, so these mounts end with it, however it ends (the host's /dev bound into a
	# tree that is later deleted must never outlive the step). Its storage lands in /var/lib/containers.
	cp "$recipe/make-image.sh" "$root/tmp/gcm-make-image.sh"
	# shellcheck disable=SC2016 # the inner script gets $root and $image as its $1 and $2
	unshare --mount --propagation private /bin/bash -euc '
		root=$1 image=$2
		mount --bind "$root" "$root"
		mount -t proc proc "$root/proc"
		mount -t sysfs sysfs "$root/sys"
		mount --bind /dev "$root/dev"
		mount -t tmpfs tmpfs "$root/run"
		chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C \
			bash /tmp/gcm-make-image.sh "$image" /dev/stderr
	' image-step "$root" "$image"
	rm -f "$root/tmp/gcm-make-image.sh"
fi

step "labels: setfiles"
kernel=$(find "$root/boot" -maxdepth 1 -name "vmlinuz-*" | sort -V | tail -n 1)
cp "$kernel" "$out/vmlinuz"
cp "$root/boot/initrd.img-${kernel##*/vmlinuz-}" "$out/initrd.img"
# The chroot's own setfiles writes the security.selinux xattrs (libselinux needs /proc; never the host's /dev).
umount -l "$root/dev"
policy=$(find "$root/etc/selinux/default/policy" -maxdepth 1 -name "policy.*" | sort -V | tail -n 1)
in_root setfiles -e /proc -c "${policy#"$root"}" /etc/selinux/default/contexts/files/file_contexts /
unmount_all

step "disk: mkfs.ext4 -d"
used_mb=$(du -sm "$root" | cut -f1)
size_mb=$((used_mb + 4096))
mkfs.ext4 -q -F -L gcm-root -d "$root" "$out/base.img" "${size_mb}M"
step "bake done"
