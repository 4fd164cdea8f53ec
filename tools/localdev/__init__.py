"""The whole platform on this machine: ``make dev``, ``make demo``, ``make dev-reset``.

Mirrors the ``dev`` stack without a cloud account: real PostgreSQL, the
official Pub/Sub emulator and fake-gcs-server (launchers in
``tools.devstack``), with the stack's bucket, topic, subscription and database
names and Pub/Sub settings taken from ``infra.settings``, and files-api and
the extractor under gunicorn with the images' config files. A supervisor (``supervisor``, on honcho's pieces) runs the
``Procfile`` processes; everything binds 127.0.0.1; state lives in one folder
(``.local/``).

Modules: ``config`` (ports, data folder, names, environments), ``ports``
(busy-port check), ``stages`` (bootstrap stage markers), ``bootstrap`` (the
one-shot setup process), ``runner`` (preflight + supervisor), ``supervisor`` (restart policy), ``status`` (make dev-status), ``faults`` (kill -9 batches), ``demo`` (upload the
samples and tabulate the results), ``client`` (the small files-api client the
demo and the end-to-end test share). See docs/local.md.
"""
