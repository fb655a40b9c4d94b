# go-cache-matrix cell image, apt family (Debian, Ubuntu).
# BASE is the provisioned base image (registry pull or debootstrap rootfs), tagged locally.
# No `# syntax=` line: that would pull a frontend image; the builder's own parser is enough.
ARG BASE
FROM ${BASE}
# A fixed non-root user for scenarios that build as someone other than root (uid/gid 1000).
RUN useradd --create-home --uid 1000 --user-group gopher
