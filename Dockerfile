# kemi in a container. Build:  docker build --build-arg VERSION=$(git describe --always --dirty) -t kemi .
# Run:    docker run --rm -p 5060:5060/udp -p 5060:5060/tcp -v $PWD/etc:/etc/kemi:ro kemi
# With no configuration mounted, kemi runs its embedded default (it answers
# OPTIONS). Logs go to stderr (log_stderror=yes; a container has no syslog).

# Build stage: cgo is needed by the SQLite driver (mqueue's db_url).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=""
RUN CGO_ENABLED=1 go build -trimpath \
      -ldflags "-s -w -X kemi/engine.buildVersion=${VERSION}" \
      -o /out/kemi ./cmd/kemi

# Final stage: glibc (for cgo), a non-root user, the binary.
FROM debian:bookworm-slim
RUN useradd --system --no-create-home --shell /usr/sbin/nologin kemi \
 && mkdir -p /etc/kemi /var/lib/kemi /run/kamailio \
 && chown kemi:kemi /var/lib/kemi /run/kamailio
COPY --from=build /out/kemi /usr/local/bin/kemi
USER kemi
WORKDIR /etc/kemi
EXPOSE 5060/udp 5060/tcp
ENTRYPOINT ["/usr/local/bin/kemi"]
# Use the mounted /etc/kemi/kemi.cfg when there is one (kemi run -f kemi.cfg):
#   docker run ... kemi run -f /etc/kemi/kemi.cfg
CMD ["run"]
