"""Shared pieces of the print-file services: settings, schema + migrations, JSON logging, file formats.

See docs/services.md.
"""
