"""Run an ASGI app with uvicorn on a loopback port in a background thread."""

import socket
import threading
import time
from typing import Any

import uvicorn

STARTUP_TIMEOUT = 10.0


class ThreadedServer:
    def __init__(self, app, *, host: str = "127.0.0.1", port: int = 0, **config: Any):
        self.app = app
        self.host = host
        self.port = port
        self.config = config
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def bind(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        return sock

    def uvicorn_config(self, **overrides: Any) -> uvicorn.Config:
        options: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "lifespan": "off",
            "log_level": "warning",
            "access_log": False,
            "server_header": False,
            # Bound shutdown so a test leaving a slow stream open cannot hang.
            "timeout_graceful_shutdown": 1,
            **self.config,
        }
        options.update(overrides)
        return uvicorn.Config(self.app, **options)

    def start(self) -> "ThreadedServer":
        """Serve in a daemon thread and return once connections are accepted."""
        if self._server is not None:
            raise RuntimeError("already started")
        sock = self.bind()
        # log_config=None leaves the host process's logging untouched.
        server = uvicorn.Server(self.uvicorn_config(log_config=None))
        thread = threading.Thread(
            target=server.run,
            kwargs={"sockets": [sock]},
            name=f"server-{self.port}",
            daemon=True,
        )
        self._server, self._thread = server, thread
        thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not server.started:
            if not thread.is_alive() or time.monotonic() >= deadline:
                server.should_exit = True
                self._server = self._thread = None
                sock.close()
                raise RuntimeError("server failed to start")
            time.sleep(0.001)
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(timeout=5)
        self._server = self._thread = None

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted."""
        uvicorn.Server(self.uvicorn_config()).run(sockets=[self.bind()])


class LoopbackFake:
    """
    The lifecycle of a fake provider that is its own ASGI app: `start()`
    serves it on loopback in a thread, `stop()` ends it, `with` does both.
    Subclasses set `host`, `port` and `_server = None` in `__init__`.
    """

    host: str
    port: int
    _server: ThreadedServer | None
    uvicorn_options: dict[str, Any] = {}

    def start(self):
        """Serve in a daemon thread and return once connections are accepted."""
        if self._server is not None:
            raise RuntimeError(f"{type(self).__name__} is already started")
        self._server = ThreadedServer(
            self, host=self.host, port=self.port, **self.uvicorn_options
        ).start()
        self.port = self._server.port
        return self

    def stop(self) -> None:
        """Shut the server down and wait for its thread to finish."""
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
