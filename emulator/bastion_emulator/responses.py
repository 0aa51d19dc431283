"""ARM-shaped answers shared by the emulator's handlers."""
from __future__ import annotations

import json

from aiohttp import web


def json_response(body, status: int = 200, headers: dict | None = None) -> web.Response:
    return web.Response(status=status, text=json.dumps(body), content_type="application/json", headers=headers)


def arm_error(status: int, code: str, message: str, headers: dict | None = None) -> web.Response:
    """``{"error": {"code", "message"}}``, the body ARM uses for every failure."""
    return json_response({"error": {"code": code, "message": message}}, status=status, headers=headers)


class ArmError(Exception):
    """Raised by handlers; the server turns it into an ARM error answer."""

    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.headers = status, code, message, headers

    def response(self) -> web.Response:
        return arm_error(self.status, self.code, self.message, self.headers)
