# The guest exists to run one job: on the serial console, with a job disk attached, run it (it powers off).
if [ "$(tty)" = /dev/ttyS0 ] && [ -b /dev/vdc ]; then
	exec /usr/local/sbin/gcm-guest-job
fi
