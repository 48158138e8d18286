"""The bearer tokens a server accepts and what each may call.

One token a line, `NAME SECRET [RIGHT ...]`; `#` starts a comment; in an environment variable `;`
also separates lines. A right is `*` (everything), a service (`ecdiff.v1.EdgeDenoiser`) or one
method (`ecdiff.v1.EdgeDenoiser/Generate`). The name is what logs and refusals show; the secret
is kept only as its SHA-256, and a presented token is compared against every entry in constant
time, so neither the timing nor a message reveals which secret came close.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Optional

MIN_SECRET_CHARS = 16  # shorter secrets are guessable; `make certs` writes 43-character ones


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


@dataclass(frozen=True)
class Token:
    name: str
    digest: bytes
    rights: tuple[str, ...]

    def may_call(self, method: str) -> bool:
        """`method` as gRPC names it: /package.Service/Method."""
        service = method.lstrip("/").split("/", 1)[0]
        return any(right in ("*", service, method.lstrip("/")) for right in self.rights)


class TokenTable:
    def __init__(self, tokens: tuple[Token, ...]) -> None:
        self.tokens = tokens

    @classmethod
    def parse(cls, text: str, source: str) -> "TokenTable":
        """`source` names where the text came from, for errors (never the text itself)."""
        tokens, names = [], set()
        for number, line in enumerate(text.replace(";", "\n").splitlines(), 1):
            words = line.split("#", 1)[0].split()
            if not words:
                continue
            if len(words) < 2:
                raise ValueError(f"{source} entry {number}: expected NAME SECRET [RIGHT ...]")
            name, secret, rights = words[0], words[1], tuple(words[2:])
            if name in names:
                raise ValueError(f"{source} entry {number}: token name {name!r} given twice")
            if len(secret) < MIN_SECRET_CHARS or not (secret.isascii() and secret.isprintable()):
                raise ValueError(f"{source} entry {number} ({name}): the secret must be at least "
                                 f"{MIN_SECRET_CHARS} printable ASCII characters")
            names.add(name)
            tokens.append(Token(name, _digest(secret), rights))
        if not tokens:
            raise ValueError(f"{source}: no tokens")
        return cls(tuple(tokens))

    def find(self, presented: str) -> Optional[Token]:
        """The entry whose secret is `presented`, or None; always compares against every entry."""
        digest, found = _digest(presented), None
        for token in self.tokens:
            if hmac.compare_digest(digest, token.digest):
                found = token
        return found
