"""A real S3 API on 127.0.0.1 for tests and benchmarks: moto's server mode, with a request counter.

The server runs in a thread of this process and serves any process (dask
workers included) over HTTP. Clients find it through the standard
environment (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ...), exactly as
they would find a real S3 service.
"""

from __future__ import annotations

import threading


class S3Server:
    """moto's ``ThreadedMotoServer`` on 127.0.0.1 (a free port), counting the requests it serves.

    Attributes
    ----------
    endpoint : str
        ``http://127.0.0.1:<port>``.
    requests : list of (method, path, query)
        Every request served since :meth:`reset_requests`.
    """

    def __init__(self):
        import logging

        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request on stderr

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        self.requests: list = []
        self._lock = threading.Lock()
        wsgi = self._server._server  # werkzeug's server: count requests in front of moto's application
        app = wsgi.app

        def counting(environ, start_response):
            with self._lock:
                self.requests.append((environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""),
                                      environ.get("QUERY_STRING", "")))
            return app(environ, start_response)

        wsgi.app = counting

    def environment(self) -> dict:
        """The standard S3 client environment pointing at this server (test credentials)."""
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}

    def reset_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    def stop(self) -> None:
        self._server.stop()
