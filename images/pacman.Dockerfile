# go-cache-matrix cell image, pacman family (Arch Linux).
ARG BASE
FROM ${BASE}
RUN useradd --create-home --uid 1000 --user-group gopher
