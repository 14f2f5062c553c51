"""
The demo's one error. An endpoint raises Refused wherever it finds a fault,
however deep in its helpers; the transport turns it into the 400 a real
upstream would send, so no endpoint builds an error response itself.
"""

import httpx


class Refused(Exception):
    """A request a real upstream would refuse: answered 400 in OpenAI's shape."""

    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param

    def response(self) -> httpx.Response:
        error = {
            "message": self.message,
            "type": "invalid_request_error",
            "param": self.param,
            "code": None,
        }
        return httpx.Response(400, json={"error": error})
