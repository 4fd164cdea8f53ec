"""`extract-metadata` console script (placeholder until the extraction library lands)."""


def main() -> int:
    raise SystemExit("extract-metadata: not implemented yet")
