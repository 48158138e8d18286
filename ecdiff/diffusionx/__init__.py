"""DiffusionX sessions: multi-round prompt history (transport-free)."""

from .store import Round, SessionNotFound, SessionStore, StoreConfig

__all__ = ["Round", "SessionNotFound", "SessionStore", "StoreConfig"]
