"""The bootstrap ("stage 0") Pulumi program: state bucket, KMS keys, GitHub Actions workload
identity federation and the per-stack CI service accounts (docs/infra.md "Running it for real")."""
