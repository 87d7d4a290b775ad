# gscrape in a container: the scheduler (Kubernetes CronJob, systemd, cron) is the engine,
# gscrape the job. Build: docker build -t gscrape .
# Run:   docker run --rm --user "$(id -u):$(id -g)" -v "$PWD:/work" \
#          -v "$HOME/.config/gcloud/application_default_credentials.json:/creds/adc.json:ro" \
#          -e GOOGLE_APPLICATION_CREDENTIALS=/creds/adc.json gscrape run --resume

# Build stage: the release binary, from the locked dependencies (rustls on ring: no OpenSSL).
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
RUN cargo build --release --locked --bin gscrape

# Run stage: no shell, no package manager, a non-root user; CA certificates for Google
# (gscrape also carries Mozilla's roots, and honours SSL_CERT_FILE for a private CA).
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/gscrape /usr/local/bin/gscrape
WORKDIR /work
USER nonroot
ENTRYPOINT ["/usr/local/bin/gscrape"]
CMD ["run"]
