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
# Every step that fails stops the build with one line `gcm-distro-go: <unavailable|fail>: <apt's own words>`,
# which the runner turns into the cell's status and reason (runner/images.py, DISTRO_GO_STOP): a failed
# `apt-get update` must not silently skip the install (under `set -e` a failing `a && b` list does not stop).
# Testing and unstable (os-release without VERSION_ID) are snapshots whose Release file can be past its
# Valid-Until on a mirror: only there `apt-get update` is retried once without that check, and the note says so.
# Versions are not pinned: what the release ships today is what is measured.
# hadolint ignore=DL3008
RUN set -eu; \
    package="{{ go_package }}"; suite="{{ go_suite }}"; note=""; log=/tmp/gcm-apt.log; \
    export DEBIAN_FRONTEND=noninteractive; \
    stop() { echo "gcm-distro-go: $1: $2"; exit 1; }; \
    says() { awk '/^(E|Err):/{printf "%s%s", s, $0; s=" | "; if (++n == 3) exit} END{if (!n) printf "(no E: line)"}' "$log"; }; \
    addnote() { note="${note:+$note; }$1"; }; \
    update() { \
      apt-get update -q > "$log" 2>&1 && return 0; \
      if grep -q '^VERSION_ID=' /etc/os-release || ! grep -q 'is expired' "$log"; then return 1; fi; \
      addnote "Release file expired, updated with Acquire::Check-Valid-Until=false (testing/unstable only): $(says)"; \
      apt-get update -q -o Acquire::Check-Valid-Until=false > "$log" 2>&1; \
    }; \
    if [ -n "$suite" ]; then \
      mirror="$(awk '/^deb /{sub(/\[[^]]*\] /, ""); print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)"; \
      [ -n "$mirror" ] || mirror="$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)"; \
      echo "deb $mirror $suite main" > /etc/apt/sources.list.d/gcm-go.list; \
      if update && apt-get install -y -q --no-install-recommends -t "$suite" "$package" >> "$log" 2>&1; then \
        addnote "$suite from $mirror"; \
      else \
        addnote "$suite from $mirror could not be used: $(says)"; \
        rm -f /etc/apt/sources.list.d/gcm-go.list; suite=""; \
      fi; \
    fi; \
    if [ -z "$suite" ]; then \
      update || stop unavailable "apt-get update failed: $(says)"; \
      apt-get install -y -q --no-install-recommends "$package" >> "$log" 2>&1 \
        || stop unavailable "apt-get install $package failed: $(says)"; \
    fi; \
    rm -rf /var/lib/apt/lists/* "$log"; \
    version="$(dpkg-query -W -f='${Version}' "$package" 2>&1)" || stop fail "$package is not installed: $version"; \
    mkdir -p /usr/share/go-cache-matrix /tmp/gcm-home; \
    command -v go > /dev/null || stop fail "$package $version installed no go on PATH"; \
    go_version="$(HOME=/tmp/gcm-home XDG_CONFIG_HOME=/tmp/gcm-home GOTOOLCHAIN=local go env GOVERSION 2>&1)" \
      || stop fail "$package $version: go env GOVERSION failed: $go_version"; \
    goroot="$(HOME=/tmp/gcm-home XDG_CONFIG_HOME=/tmp/gcm-home GOTOOLCHAIN=local go env GOROOT 2>&1)" \
      || stop fail "$package $version: go env GOROOT failed: $goroot"; \
    { echo "package=$package"; \
      echo "package_version=$version"; \
      echo "suite=$suite"; \
      echo "note=$note"; \
      echo "go_version=$go_version"; \
      echo "goroot=$goroot"; \
    } > /usr/share/go-cache-matrix/distro-go; \
    rm -rf /tmp/gcm-home
#% endif
