"""gunicorn's gthread worker, stopped (``max_requests`` recycling, SIGTERM) without dropping requests.

gunicorn 23's ``ThreadWorker`` leaves its loop the moment ``alive`` turns
False and closes every kept-alive connection, also those whose last response
said ``Connection: keep-alive`` a millisecond earlier and whose client is
sending the next request right now: that request gets no answer (an "empty
reply"; measured: 42 of 720 POSTs while workers recycled every 40 requests).
Upstream: https://github.com/benoitc/gunicorn/issues/3038 (open), and the
graceful loop of later gthread versions still closes those connections.

``DrainingThreadWorker`` turns "stop" into a drain of at most
``DRAIN_SECONDS``: it stops accepting new connections (other workers, or its
replacement, take them from the shared listen socket), keeps serving requests
that arrive on its kept-alive connections but answers each with
``Connection: close``, and leaves when none is left or the drain time is up
(only connections idle for the whole drain are then closed unanswered, as any
keep-alive timeout would).

It also ends the connection after a response when the application asks for
it with ``environ[files_api.uploads.CLOSE_CONNECTION_KEY]`` (PEP 3333 keeps
hop-by-hop headers such as ``Connection`` out of applications, and gunicorn
drops them): after a 408 for a stalled upload body (RFC 9110 section 15.5.9)
or a 400 for a body cut short, the unread rest of the body cannot be skipped.

Use with ``worker_class = "files_api.gunicorn_worker.DrainingThreadWorker"``.
"""

from __future__ import annotations

import time
from typing import Any

from gunicorn.workers.gthread import ThreadWorker

from .uploads import CLOSE_CONNECTION_KEY

#: Longest drain of a stopping worker, in seconds (also bounded by half of ``graceful_timeout``).
DRAIN_SECONDS = 5.0


class DrainingThreadWorker(ThreadWorker):
    """``gthread`` worker whose stop is a bounded drain of its kept-alive connections (see the module doc).

    ``alive`` stays True while draining so that gunicorn's loop keeps serving
    readable connections; ``draining`` tells that the worker is on its way out.
    """

    _running = False
    _drain_until: float | None = None
    _accepting = True

    @property
    def alive(self) -> bool:  # type: ignore[override]
        if self._running:
            return True
        if self._drain_until is None:
            return False
        return self.nr_conns > 0 and time.monotonic() < self._drain_until

    @alive.setter
    def alive(self, value: bool) -> None:
        if value:
            self._running = True
        elif self._running:  # max_requests reached, SIGTERM, or a hook asked to stop: drain
            self._running = False
            self._drain_until = time.monotonic() + min(DRAIN_SECONDS, self.cfg.graceful_timeout / 2)
            self.log.info("Draining kept-alive connections for at most %.1f s", self._drain_until - time.monotonic())

    @property
    def draining(self) -> bool:
        """True from the stop request on: responses then carry ``Connection: close``."""
        return self._drain_until is not None

    def _stop_accepting(self) -> None:
        """Take the listen sockets out of the poller (main thread only)."""
        if not self._accepting:
            return
        self._accepting = False
        with self._lock:
            for sock in self.sockets:
                try:
                    self.poller.unregister(sock)
                except (KeyError, ValueError, OSError):
                    pass

    def accept(self, server: Any, listener: Any) -> None:
        if self.draining:  # leave the connection in the backlog to the other workers
            self._stop_accepting()
            return
        super().accept(server, listener)

    def murder_keepalived(self) -> None:
        # Called by the loop (main thread) on every turn: the place to stop accepting.
        if self.draining:
            self._stop_accepting()
        super().murder_keepalived()

    def load_wsgi(self) -> None:
        super().load_wsgi()
        self.wsgi = self._closing(self.wsgi)

    def _closing(self, app: Any) -> Any:
        """Wrap ``app`` so that a response ends its connection when draining or when the app says so."""
        worker = self

        def served(environ: dict[str, Any], start_response: Any) -> Any:
            response = getattr(start_response, "__self__", None)  # gunicorn.http.wsgi.Response

            def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
                if response is not None and (worker.draining or environ.get(CLOSE_CONNECTION_KEY)):
                    response.force_close()
                return start_response(status, headers, exc_info)

            return app(environ, start)

        return served
