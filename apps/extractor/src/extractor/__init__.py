"""The extractor service: Pub/Sub pull worker (``worker``), its health app, and the metadata library (``metadata``)."""
