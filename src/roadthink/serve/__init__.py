"""``roadthink serve``: any roadthink model behind an OpenAI-compatible HTTP API."""

from roadthink.serve.app import create_app

__all__ = ["create_app"]
