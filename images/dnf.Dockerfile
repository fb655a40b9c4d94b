# go-cache-matrix cell image, dnf family (Rocky Linux / RHEL).
# A template rendered by runner/images.py from matrix.toml (see apt.Dockerfile).
ARG BASE
FROM ${BASE}
RUN useradd --create-home --uid 1000 --user-group gopher
#% if distro_go
# toolchain = "distro": the release's own Go package (versions not pinned: the release's is measured).
# hadolint ignore=DL3041
RUN set -eu; \
    package="{{ go_package }}"; \
    dnf install -y --setopt=install_weak_deps=False "$package"; \
    dnf clean all; \
    mkdir -p /usr/share/go-cache-matrix /tmp/gcm-home; \
    { echo "package=$package"; \
      echo "package_version=$(rpm -q --qf '%{VERSION}-%{RELEASE}' "$package")"; \
      echo "suite="; \
      echo "note="; \
      echo "go_version=$(HOME=/tmp/gcm-home XDG_CONFIG_HOME=/tmp/gcm-home GOTOOLCHAIN=local go env GOVERSION)"; \
      echo "goroot=$(HOME=/tmp/gcm-home XDG_CONFIG_HOME=/tmp/gcm-home GOTOOLCHAIN=local go env GOROOT)"; \
    } > /usr/share/go-cache-matrix/distro-go; \
    rm -rf /tmp/gcm-home
#% endif
