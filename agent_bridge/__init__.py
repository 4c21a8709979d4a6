"""Wire protocol, bridge endpoint and on-host agent for Defender ChatOps. Imports neither bot nor handlers."""

__version__ = "0.1.0"
