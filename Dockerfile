# s3seal: a static binary on a minimal, non-root image.
#
#   docker build -t s3seal .
#   docker run -p 8080:8080 -p 9464:9464 -e S3SEAL_UPSTREAM_URL=... s3seal
#
# The build flags are CI's: CGO_ENABLED=0 go build -trimpath -ldflags "-s -w".

FROM golang:1.26 AS build
WORKDIR /src
# Dependencies first, so a source change does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/s3seal ./cmd/s3seal \
 && mkdir -p -m 0700 /out/data

# distroless/static: CA certificates, /etc/passwd with nonroot (65532),
# tzdata, nothing else: no shell, no package manager.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/s3seal /usr/local/bin/s3seal
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
WORKDIR /data
# Inside a container s3seal must listen beyond loopback; the data dir
# (keyring, generated credential, embedded store) is the volume /data.
ENV S3SEAL_ADDR=0.0.0.0:8080 \
    S3SEAL_METRICS_ADDR=0.0.0.0:9464 \
    S3SEAL_DATA_DIR=/data
VOLUME ["/data"]
# 8080: S3 API; 9464: /metrics, /healthz, /readyz.
EXPOSE 8080 9464
ENTRYPOINT ["/usr/local/bin/s3seal"]
CMD ["serve"]
