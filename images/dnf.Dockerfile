# go-cache-matrix cell image, dnf family (Rocky Linux / RHEL).
# A template rendered by runner/images.py from matrix.toml (see apt.Dockerfile).
ARG BASE
FROM ${BASE}
RUN useradd --create-home --uid 1000 --user-group gopher
#% if distro_go
# toolchain = "distro": the release's own Go package (versions not pinned: the release's is measured).
# A failing step stops the build with `gcm-distro-go: <unavailable|fail>: <the package manager's words>` (see
# apt.Dockerfile): the runner reports it as the cell's status and reason.
# hadolint ignore=DL3041
RUN set -eu; \
    package="{{ go_package }}"; log=/tmp/gcm-pm.log; \
    stop() { echo "gcm-distro-go: $1: $2"; exit 1; }; \
    says() { awk '/^(Error|error|No match|Unable)/{printf "%s%s", s, $0; s=" | "; if (++n == 3) exit} END{if (!n) printf "(no error line)"}' "$log"; }; \
    dnf install -y --setopt=install_weak_deps=False "$package" > "$log" 2>&1 \
      || stop unavailable "dnf install $package failed: $(says)"; \
    dnf clean all > /dev/null; rm -f "$log"; \
    version="$(rpm -q --qf '%{VERSION}-%{RELEASE}' "$package" 2>&1)" || stop fail "$package is not installed: $version"; \
    mkdir -p /usr/share/go-cache-matrix /tmp/gcm-home; \
    command -v go > /dev/null || stop fail "$package $version installed no go on PATH"; \
    go_version="$(HOME=/tmp/gcm-home XDG_CONFIG_HOME=/tmp/gcm-home GOTOOLCHAIN=local go env GOVERSION 2>&1)" \
      || stop fail "$package $version: go env GOVERSION failed: $go_version"; \
    goroot="$(HOME=/tmp/gcm-home XDG_CONFIG_HOME=/tmp/gcm-home GOTOOLCHAIN=local go env GOROOT 2>&1)" \
      || stop fail "$package $version: go env GOROOT failed: $goroot"; \
    { echo "package=$package"; \
      echo "package_version=$version"; \
      echo "suite="; \
      echo "note="; \
      echo "go_version=$go_version"; \
      echo "goroot=$goroot"; \
    } > /usr/share/go-cache-matrix/distro-go; \
    rm -rf /tmp/gcm-home
#% endif
