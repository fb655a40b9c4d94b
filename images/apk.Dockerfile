# go-cache-matrix cell image, apk family (Alpine).
ARG BASE
FROM ${BASE}
RUN addgroup -g 1000 gopher && adduser -D -u 1000 -G gopher gopher
