"""Command-line tools of the project: offline preview, chart rendering, preview diff, local platform."""
