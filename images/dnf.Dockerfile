# go-cache-matrix cell image, dnf family (Rocky Linux / RHEL).
ARG BASE
FROM ${BASE}
RUN useradd --create-home --uid 1000 --user-group gopher
