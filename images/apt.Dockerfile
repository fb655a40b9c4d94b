# go-cache-matrix cell image, apt family (Debian, Ubuntu).
# A template: runner/images.py renders it from matrix.toml (`#% if NAME` ... `#% endif` blocks and
# double-brace values) before each build; `python -m runner.images DIR` writes every rendering of the
# matrix, which the lint session checks with hadolint.
# BASE is the provisioned base image (registry pull or debootstrap rootfs), tagged locally.
# No `# syntax=` line: that would pull a frontend image; the builder's own parser is enough.
ARG BASE
FROM ${BASE}
# A fixed non-root user for scenarios that build as someone other than root (uid/gid 1000).
RUN useradd --create-home --uid 1000 --user-group gopher
#% if distro_go
# toolchain = "distro": the release's own Go package from the image's own mirror. With a suite (e.g.
# bookworm-backports) that suite is tried first; when it cannot be had, the release's own package is
# installed and the reason goes into the facts file, which the runner reads (and reports).
# Versions are not pinned: what the release ships today is what is measured.
# hadolint ignore=DL3008
RUN set -eu; \
    package="{{ go_package }}"; suite="{{ go_suite }}"; note=""; \
    export DEBIAN_FRONTEND=noninteractive; \
    if [ -n "$suite" ]; then \
      mirror="$(awk '/^deb /{sub(/\[[^]]*\] /, ""); print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)"; \
      [ -n "$mirror" ] || mirror="$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)"; \
      echo "deb $mirror $suite main" > /etc/apt/sources.list.d/gcm-go.list; \
      if apt-get update -q > /tmp/gcm-apt.log 2>&1 \
         && apt-get install -y -q --no-install-recommends -t "$suite" "$package" >> /tmp/gcm-apt.log 2>&1; then \
        note="$suite from $mirror"; \
      else \
        note="$suite from $mirror could not be used: $(awk '/^(E|W|Err):/{printf "%s ", $0; if (++n == 2) exit}' /tmp/gcm-apt.log)"; \
        rm -f /etc/apt/sources.list.d/gcm-go.list; suite=""; \
      fi; \
    fi; \
    if [ -z "$suite" ]; then \
      apt-get update -q && apt-get install -y -q --no-install-recommends "$package"; \
    fi; \
    rm -rf /var/lib/apt/lists/* /tmp/gcm-apt.log; \
    mkdir -p /usr/share/go-cache-matrix /tmp/gcm-home; \
    { echo "package=$package"; \
      echo "package_version=$(dpkg-query -W -f='${Version}' "$package")"; \
      echo "suite=$suite"; \
      echo "note=$note"; \
      echo "go_version=$(HOME=/tmp/gcm-home XDG_CONFIG_HOME=/tmp/gcm-home GOTOOLCHAIN=local go env GOVERSION)"; \
      echo "goroot=$(HOME=/tmp/gcm-home XDG_CONFIG_HOME=/tmp/gcm-home GOTOOLCHAIN=local go env GOROOT)"; \
    } > /usr/share/go-cache-matrix/distro-go; \
    rm -rf /tmp/gcm-home
#% endif
