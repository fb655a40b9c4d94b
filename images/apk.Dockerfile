# go-cache-matrix cell image, apk family (Alpine).
# A template rendered by runner/images.py from matrix.toml (see apt.Dockerfile).
ARG BASE
FROM ${BASE}
RUN addgroup -g 1000 gopher && adduser -D -u 1000 -G gopher gopher
#% if distro_go
# toolchain = "distro": the release's own Go package (versions not pinned: the release's is measured).
# hadolint ignore=DL3018
RUN set -eu; \
    package="{{ go_package }}"; \
    apk add --no-cache "$package"; \
    mkdir -p /usr/share/go-cache-matrix /tmp/gcm-home; \
    { echo "package=$package"; \
      echo "package_version=$(apk list --installed "$package" 2>/dev/null || true)"; \
      echo "suite="; \
      echo "note="; \
      echo "go_version=$(HOME=/tmp/gcm-home XDG_CONFIG_HOME=/tmp/gcm-home GOTOOLCHAIN=local go env GOVERSION)"; \
      echo "goroot=$(HOME=/tmp/gcm-home XDG_CONFIG_HOME=/tmp/gcm-home GOTOOLCHAIN=local go env GOROOT)"; \
    } > /usr/share/go-cache-matrix/distro-go; \
    rm -rf /tmp/gcm-home
#% endif
