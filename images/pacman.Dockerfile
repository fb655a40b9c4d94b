# go-cache-matrix cell image, pacman family (Arch Linux).
# A template rendered by runner/images.py from matrix.toml (see apt.Dockerfile).
ARG BASE
FROM ${BASE}
RUN useradd --create-home --uid 1000 --user-group gopher
#% if distro_go
# toolchain = "distro": the release's own Go package. Arch supports no partial upgrades: -Syu.
RUN set -eu; \
    package="{{ go_package }}"; \
    pacman -Syu --noconfirm --needed "$package"; \
    pacman -Scc --noconfirm; \
    mkdir -p /usr/share/go-cache-matrix /tmp/gcm-home; \
    { echo "package=$package"; \
      echo "package_version=$(pacman -Q "$package")"; \
      echo "suite="; \
      echo "note="; \
      echo "go_version=$(HOME=/tmp/gcm-home XDG_CONFIG_HOME=/tmp/gcm-home GOTOOLCHAIN=local go env GOVERSION)"; \
      echo "goroot=$(HOME=/tmp/gcm-home XDG_CONFIG_HOME=/tmp/gcm-home GOTOOLCHAIN=local go env GOROOT)"; \
    } > /usr/share/go-cache-matrix/distro-go; \
    rm -rf /tmp/gcm-home
#% endif
