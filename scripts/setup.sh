#!/usr/bin/env bash
# One-time host set-up for go-cache-matrix on Debian 12, Debian 13 and Ubuntu 24.04 (apt hosts), as root or
# through sudo. The README's first command and .ci/run both run this script, so they cannot drift apart.
#
#   scripts/setup.sh            what `nox -s matrix` needs: an engine, debootstrap, QEMU user-mode + binfmt, nox
#   scripts/setup.sh --tests    also what only `nox -s tests` needs: a local registry (docker-registry, its
#                               service disabled), QEMU for the SELinux guest VM, chromium for the report test,
#                               uidmap and slirp4netns for the rootless podman test
#   scripts/setup.sh --no-start install packages only: start no engine, register no binfmt entry
#
# An engine that is already there is left alone: docker-ce (Docker's own packages) is never replaced by
# docker.io, which Conflicts with it and would remove it. Engines are started through systemd where systemd runs
# (and manages them), else in the background. A service that cannot start here (e.g. inside an unprivileged
# container) is a warning, not a failure: `go-cache-matrix doctor` then says what is missing and the fix.
# Exit: 0 done (warnings printed last), 1 a package could not be installed, 2 bad arguments or not an apt host.
set -euo pipefail

usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; }

TESTS=0
START=1
for arg in "$@"; do
  case "$arg" in
    --tests) TESTS=1 ;;
    --no-start) START=0 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "setup.sh: unknown argument $arg" >&2; echo "  fix: scripts/setup.sh [--tests] [--no-start]" >&2; exit 2 ;;
  esac
done

if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    exec sudo --preserve-env=DEBIAN_FRONTEND,http_proxy,https_proxy,no_proxy "$0" "$@"
  fi
  echo "setup.sh: installing packages and starting engines needs root, and sudo is not installed" >&2
  echo "  fix: run it as root: su -c '$0 $*'" >&2
  exit 2
fi

export DEBIAN_FRONTEND=noninteractive
WARNINGS=()
warn() { WARNINGS+=("$*"); echo "warning: $*" >&2; }
step() { printf '\n== %s  [+%ss]\n' "$*" "$SECONDS"; }

# --------------------------------------------------------------------------- which host
# shellcheck disable=SC1091  # os-release is the host's own file, read at run time
. /etc/os-release
case " ${ID:-} ${ID_LIKE:-} " in
  *" debian "*|*" ubuntu "*) ;;
  *) echo "setup.sh: ${PRETTY_NAME:-this host} is not an apt host (Debian, Ubuntu); this script handles those only" >&2
     echo "  fix: install podman or docker, debootstrap, qemu-user-static and nox with this host's package manager;" >&2
     echo "       \`go-cache-matrix doctor\` prints the command for each (dnf, pacman, apk)" >&2
     exit 2 ;;
esac
echo "host: ${PRETTY_NAME:-$ID} ($(uname -m))"
if [ "${ID}" = ubuntu ]; then
  echo "note: Ubuntu is handled by its os-release (ID=ubuntu); this repository's CI runs this script on Debian only"
fi

installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }
available() { [ -n "$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ && $2 != "(none)" {print $2}')" ]; }
docker_answers() { command -v docker >/dev/null 2>&1 && timeout 5 docker info >/dev/null 2>&1; }

install_missing() {
  local missing=() p
  for p in "$@"; do installed "$p" || missing+=("$p"); done
  if [ "${#missing[@]}" -eq 0 ]; then echo "already installed: $*"; return 0; fi
  echo "installing: ${missing[*]}"
  apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# --------------------------------------------------------------------------- packages
step "apt-get update"
apt-get update -q

step "packages for a run"
PACKAGES=(ca-certificates tar mount iproute2 e2fsprogs xfsprogs btrfs-progs debootstrap
          qemu-user-static binfmt-support python3 python3-venv)
# The engines. docker: keep what answers or what Docker's own packages installed; docker.io otherwise.
if docker_answers; then
  echo "docker: answers already ($(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?')): left as it is"
elif installed docker-ce || installed moby-engine; then
  echo "docker: docker-ce (or moby-engine) is installed: left as it is (docker.io Conflicts with it)"
else
  PACKAGES+=(docker.io)
fi
if command -v podman >/dev/null 2>&1; then echo "podman: $(podman --version): left as it is"; else PACKAGES+=(podman); fi
# nox from the distro (pip into the system Python is refused: PEP 668 externally-managed-environment); pipx
# where the release has no nox package.
NOX_VIA_PIPX=0
if nox --version >/dev/null 2>&1; then  # not `command -v`: a pyenv shim is found even where it cannot run
  echo "nox: $(command -v nox) $(nox --version 2>&1) works: left as it is"
elif available nox; then
  PACKAGES+=(nox)
else
  PACKAGES+=(pipx)
  NOX_VIA_PIPX=1
fi
install_missing "${PACKAGES[@]}"
if [ "$NOX_VIA_PIPX" = 1 ]; then
  PIPX_HOME=/opt/pipx PIPX_BIN_DIR=/usr/local/bin pipx install nox
fi

if [ "$TESTS" = 1 ]; then
  step "packages for the tests (a local registry, QEMU for the SELinux guest VM, chromium for the report test, rootless podman)"
  # uidmap: newuidmap/newgidmap, which rootless podman maps a user's subuid range with; slirp4netns: its network
  install_missing docker-registry qemu-system-x86 qemu-utils chromium uidmap slirp4netns
  # The registry tests start their own docker-registry on 127.0.0.1; the package's service (on :5000) is not wanted.
  if [ -d /run/systemd/system ]; then
    systemctl disable --now docker-registry >/dev/null 2>&1 || warn "could not disable the docker-registry service"
  fi
fi

# --------------------------------------------------------------------------- engines
wait_for() {  # wait_for SECONDS PID COMMAND...: true once COMMAND succeeds; false at the deadline or once PID
  local deadline=$((SECONDS + $1)) pid=$2; shift 2  # (the daemon started for it, or "") has exited
  while [ "$SECONDS" -lt "$deadline" ]; do
    "$@" >/dev/null 2>&1 && return 0
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then return 1; fi
    sleep 1
  done
  return 1
}
podman_answers() { podman --url unix:///run/podman/podman.sock version >/dev/null 2>&1; }

start_docker() {
  local pid=""
  if docker_answers; then echo "docker: answers"; return 0; fi
  if [ -d /run/systemd/system ] && systemctl cat docker.service >/dev/null 2>&1; then
    systemctl enable --now docker || true
  elif command -v dockerd >/dev/null 2>&1; then
    echo "docker: systemd does not manage it here: starting dockerd in the background (log /var/log/gcm-dockerd.log)"
    nohup dockerd >/var/log/gcm-dockerd.log 2>&1 &
    pid=$!
  fi
  if wait_for 60 "$pid" docker_answers; then
    docker version --format 'docker: client {{.Client.Version}}, server {{.Server.Version}}'
  else
    warn "docker does not answer (inside an unprivileged container it cannot); see /var/log/gcm-dockerd.log: $(tail -n 1 /var/log/gcm-dockerd.log 2>/dev/null)"
  fi
}

start_podman() {
  local pid=""
  if podman_answers; then echo "podman: API socket answers"; return 0; fi
  # The tool talks to podman through its Docker-compatible API socket, like to dockerd.
  if [ -d /run/systemd/system ] && systemctl cat podman.socket >/dev/null 2>&1; then
    systemctl enable --now podman.socket || true
  else
    mkdir -p /run/podman
    nohup podman system service --time=0 unix:///run/podman/podman.sock >/var/log/gcm-podman.log 2>&1 &
    pid=$!
  fi
  if wait_for 30 "$pid" podman_answers; then
    echo "podman: API socket answers at unix:///run/podman/podman.sock"
  else
    warn "podman's API socket does not answer; see /var/log/gcm-podman.log"
  fi
}

register_binfmt() {
  local entry
  case "$(uname -m)" in
    x86_64) entry=qemu-aarch64 ;;
    aarch64) entry=qemu-x86_64 ;;
    *) warn "no foreign arch to emulate on $(uname -m)"; return 0 ;;
  esac
  if ! mountpoint -q /proc/sys/fs/binfmt_misc; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null || {
      warn "cannot mount binfmt_misc (needs root on the host, not in a container): the other arch's cells will be unavailable"
      return 0; }
  fi
  if update-binfmts --enable "$entry" 2>/dev/null && [ -e "/proc/sys/fs/binfmt_misc/$entry" ]; then
    echo "binfmt: $entry $(grep -E '^(enabled|disabled)' "/proc/sys/fs/binfmt_misc/$entry"), $(grep '^flags' "/proc/sys/fs/binfmt_misc/$entry")"
  else
    warn "could not register $entry (update-binfmts --enable $entry failed): the other arch's cells will be unavailable"
  fi
}

if [ "$START" = 1 ]; then
  step "engines"
  start_docker
  start_podman
  step "binfmt_misc (QEMU user-mode for the other arch)"
  register_binfmt
fi

step "done"
echo "nox: $(command -v nox || echo 'not on PATH')"
echo "next: nox -s doctor (what this host can run, and the fix for anything missing), then nox -s matrix"
for w in "${WARNINGS[@]}"; do echo "warning: $w"; done
exit 0
