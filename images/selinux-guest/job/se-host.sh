# shellcheck shell=bash
# The `se-host` cases: Go builds outside any container under SELinux enforcing, by root and by users mapped to
# confined SELinux users who log in for real; sourced by job.sh (mark, now, case_dir, GOHOST: the toolchain mounts
# labelled bin_t).
#
# Lines: se-host|toolchain|variant|budget
#   root             root's own build in this login session (the serial console's autologin: unconfined_t)
#   user_u, staff_u  a user mapped with `semanage login -a -s <seuser>` who logs in on a second serial line
#                    (serial-getty@ttyS1 with --autologin: getty, login, PAM with pam_selinux, as on a console);
#                    their ~/.bash_profile runs the build in that session
#   user_u-fcontext  a user_u user with `semanage fcontext -a -t <the type the policy gives ~/.cache> \
#                    '/home/<user>/\.cache/go-build(/.*)?'`; after the first build, restorecon applies the rule,
#                    then the rebuild runs
# Records: out.txt (id_z=..., then goprobe.sh's key=value lines: env, build, rebuild), ls1.txt and ls2.txt (`ls -Zd`
# of ~/.cache and ~/.cache/go-build after the build and after the rebuild), restorecon.log, home-label.txt.
LAB=/opt/gcm-lab
declare -A SEH_USER=([user_u]=gcmuser [staff_u]=gcmstaff [user_u-fcontext]=gcmfc)
declare -A SEH_SEUSER=([gcmuser]=user_u [gcmstaff]=staff_u [gcmfc]=user_u)

sehost_setup() {
	local u
	mkdir -p "$LAB"
	cp -r "$JOB/ro/src" "$JOB/goprobe.sh" "$LAB/"
	chmod -R a+rX "$LAB"
	restorecon -R "$LAB"
	{
		for u in "${!SEH_SEUSER[@]}"; do
			id "$u" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$u"
		done
		# the rule such tables recommend, with the type this policy gives ~/.cache itself
		t=$(matchpathcon -n /home/gcmfc/.cache | cut -d: -f3)
		echo "fcontext type: $t (matchpathcon before the rule: $(matchpathcon -n /home/gcmfc/.cache/go-build))"
		# `semanage login -a -s <seuser> <user>` for each user and the fcontext rule, in one transaction (each
		# semanage command alone rebuilds the policy: minutes under TCG). semanage runs in semanage_t: its input
		# is a file in /etc/selinux (which it may read) and its output goes through a pipe (it may not write the
		# results directory, var_lib_t).
		imp=/etc/selinux/gcm-semanage
		for u in "${!SEH_SEUSER[@]}"; do echo "login -a -s ${SEH_SEUSER[$u]} $u"; done >"$imp"
		echo "fcontext -a -t $t '/home/gcmfc/\.cache/go-build(/.*)?'" >>"$imp"
		cat "$imp"
		semanage import -f "$imp" 2>&1 | cat
		echo "semanage import: exit ${PIPESTATUS[0]}"
		for u in "${!SEH_SEUSER[@]}"; do restorecon -RF "/home/$u" 2>&1 | cat; done
		cat /etc/selinux/default/seusers
		semanage fcontext -l -C 2>&1 | cat
	} >"$GCM_RESULTS/se-host-setup.log" 2>&1
	mark se-host-users "$(grep -c "^semanage import: exit 0" "$GCM_RESULTS/se-host-setup.log") $(grep -c gcm /etc/selinux/default/seusers)"
	mkdir -p /etc/systemd/system/serial-getty@ttyS1.service.d
}

# The login session's script: build, wait for the host's go-ahead (after restorecon in the fcontext case), rebuild.
sehost_profile() { # GOROOT
	cat <<PROFILE
if [ -e ~/gcm-run ]; then
	rm -f ~/gcm-run
	{ echo "id_z=\$(id -Z)"; sh $LAB/goprobe.sh $1 $LAB/src env build:build; } >~/gcm-out.txt 2>~/gcm-err.txt
	ls -Zd ~/.cache ~/.cache/go-build >~/gcm-ls1.txt 2>&1
	touch ~/gcm-phase1
	for i in \$(seq 240); do [ -e ~/gcm-phase2 ] && break; sleep 0.5; done
	sh $LAB/goprobe.sh $1 $LAB/src build:rebuild >>~/gcm-out.txt 2>>~/gcm-err.txt
	ls -Zd ~/.cache ~/.cache/go-build >~/gcm-ls2.txt 2>&1
	touch ~/gcm-done
fi
exec sleep 900
PROFILE
}

# sehost_wait FILE SECONDS: 0 when FILE appears; 1 after SECONDS or as soon as the getty unit has failed
sehost_wait() {
	local i
	for ((i = 0; i < $2 * 2; i++)); do
		[ -e "$1" ] && return 0
		systemctl is-failed -q serial-getty@ttyS1.service && return 1
		sleep 0.5
	done
	return 1
}

run_se_host() {
	local line s tc v budget d go u home f
	sehost_setup
	while IFS= read -r line; do
		IFS='|' read -r s tc v budget <<<"$line"
		d=$(case_dir "$s" "$tc" "$v")
		go=${GOHOST[$tc]}
		mark case-start "se-host/$tc/$v"
		now >"$d/t_start"
		if [ "$v" = root ]; then
			{
				echo "id_z=$(id -Z)"
				HOME=/root sh "$LAB/goprobe.sh" "$go" "$LAB/src" env build:build
			} >"$d/out.txt" 2>"$d/err.txt"
			ls -Zd /root/.cache /root/.cache/go-build >"$d/ls1.txt" 2>&1
			HOME=/root sh "$LAB/goprobe.sh" "$go" "$LAB/src" build:rebuild >>"$d/out.txt" 2>>"$d/err.txt"
			ls -Zd /root/.cache /root/.cache/go-build >"$d/ls2.txt" 2>&1
		elif [ -n "${SEH_USER[$v]:-}" ]; then
			u=${SEH_USER[$v]} home=/home/${SEH_USER[$v]}
			rm -f "$home"/gcm-*
			sehost_profile "$go" >"$home/.bash_profile"
			touch "$home/gcm-run"
			chown "$u:" "$home/.bash_profile" "$home/gcm-run"
			restorecon -F "$home/.bash_profile" "$home/gcm-run"
			ls -Zd "$home" >"$d/home-label.txt" 2>&1
			printf '[Service]\nExecStart=\nExecStart=-/sbin/agetty --autologin %s --noclear --keep-baud 115200 %%I linux\n' \
				"$u" >/etc/systemd/system/serial-getty@ttyS1.service.d/gcm.conf
			systemctl daemon-reload
			systemctl restart serial-getty@ttyS1.service >"$d/getty.log" 2>&1
			# a console login under TCG takes seconds: a session that has not built within 120 s never will
			if sehost_wait "$home/gcm-phase1" $((budget < 120 ? budget : 120)); then
				if [ "$v" = user_u-fcontext ]; then restorecon -RFv "$home/.cache" >"$d/restorecon.log" 2>&1; fi
				# the session's go-ahead: a file of the user's, labelled like the rest of the home (UBAC: a confined
				# user's domain may not even stat a file whose SELinux user is unconfined_u)
				touch "$home/gcm-phase2"
				chown "$u:" "$home/gcm-phase2"
				restorecon -F "$home/gcm-phase2"
				sehost_wait "$home/gcm-done" 150 || echo "no rebuild within 150s" >"$d/timeout"
			else
				echo "no login session within 120s (getty: $(systemctl is-active serial-getty@ttyS1.service))" >"$d/timeout"
			fi
			{
				systemctl status serial-getty@ttyS1.service --no-pager
				journalctl -b --no-pager -o short-monotonic _COMM=login _COMM=agetty | tail -n 20
				ps -eZ -o label,pid,comm | grep -E 'login|agetty|bash|sleep' | grep -v grep
			} >"$d/session.log" 2>&1
			systemctl stop serial-getty@ttyS1.service >>"$d/getty.log" 2>&1
			systemctl reset-failed serial-getty@ttyS1.service >>"$d/getty.log" 2>&1
			# login relabelled the line for the session's user (user_tty_device_t): give it back its type, or the
			# next getty cannot open it (init_t may not use a user's tty: exit 208/STDIN)
			restorecon -F /dev/ttyS1 >>"$d/getty.log" 2>&1
			for f in out err ls1 ls2; do cp "$home/gcm-$f.txt" "$d/$f.txt" 2>/dev/null; done
		else
			echo "unknown variant $v" >"$d/error"
		fi
		now >"$d/t_end"
		mark case-end "se-host/$tc/$v"
	done
}
