"""Bastion: a self-hosted, Parse-compatible Backend-as-a-Service."""

from bastion.errors import Code, ParseError

__version__ = "0.1.0"

__all__ = ["Code", "ParseError", "__version__"]
