"""The HMAC keys that sign continue tokens: where they come from, and the rotation list.

A key list is ordered: the first key signs new tokens, every key verifies (rotation: add the new
key, sign with it, drop the old one after the token TTL of one hour). Sources, first match wins:

1. ``--token-key-file PATH`` (the query commands' flag);
2. ``ACTIVITY_TOKEN_KEY_FILE=PATH`` or ``ACTIVITY_TOKEN_KEYS=new,old`` (not both);
3. the caller's default file (the CLI: ``token-keys`` in the data directory, created with mode
   0600 and one random key on first use, so ``--continue`` works across invocations);
4. otherwise a random key generated once per process (tokens then only work in that process).

A key file holds one key per line (first line signs); blank lines and ``#`` comments are
ignored. A key is the line's text (UTF-8), at least :data:`MIN_KEY_BYTES` bytes long.
"""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from processor.query.errors import QueryError

MIN_KEY_BYTES = 16
ENV_KEYS = "ACTIVITY_TOKEN_KEYS"
ENV_KEY_FILE = "ACTIVITY_TOKEN_KEY_FILE"
DEFAULT_FILE_NAME = "token-keys"


class TokenKeyError(QueryError):
    """The token keys are misconfigured (unreadable file, no key, a key too short)."""


@dataclass(frozen=True)
class TokenKeys:
    """HMAC-SHA256 keys for continue tokens: ``keys[0]`` signs, all of them verify."""

    keys: tuple[bytes, ...] = field(repr=False)

    def __post_init__(self) -> None:
        if not self.keys:
            raise TokenKeyError("no continue-token key configured")
        for number, key in enumerate(self.keys, 1):
            if len(key) < MIN_KEY_BYTES:
                raise TokenKeyError(
                    f"continue-token key {number} is shorter than {MIN_KEY_BYTES} bytes"
                )

    @property
    def signing(self) -> bytes:
        """The key new tokens are signed with."""
        return self.keys[0]

    @classmethod
    def generate(cls) -> TokenKeys:
        """One fresh random 32-byte key."""
        return cls((secrets.token_bytes(32),))

    @classmethod
    def parse(cls, text: str, separator: str = "\n", source: str = "") -> TokenKeys:
        """Keys from ``text`` split at ``separator``; blanks and ``#`` lines are skipped.

        Raises:
            TokenKeyError: no key, or a key shorter than :data:`MIN_KEY_BYTES` (``source``,
                e.g. the file name, is named in the message; the key itself never is).
        """
        items = [item.strip() for item in text.split(separator)]
        keys = tuple(item.encode() for item in items if item and not item.startswith("#"))
        try:
            return cls(keys)
        except TokenKeyError as exc:
            raise TokenKeyError(f"{exc} ({source})" if source else str(exc)) from None


@functools.cache
def process_keys() -> TokenKeys:
    """The random key of this process, used when nothing is configured (library callers)."""
    return TokenKeys.generate()


def read_key_file(path: Path) -> TokenKeys:
    """The keys in ``path`` (one per line, first signs).

    Raises:
        TokenKeyError: the file cannot be read, holds no key, or a key is too short.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TokenKeyError(f"cannot read the continue-token key file {path}: {exc}") from None
    return TokenKeys.parse(text, "\n", str(path))


def ensure_key_file(path: Path) -> TokenKeys:
    """Read ``path``, or create it (mode 0600, one random key) if it does not exist.

    The key is written to a private temporary file that is then hard-linked into place, so two
    processes starting at once end up with the same key and nobody reads a half-written file.

    Raises:
        TokenKeyError: the file cannot be read or created.
    """
    if path.exists():
        return read_key_file(path)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(
                    "# continue-token signing keys, one per line; the first signs (docs/query.md)\n"
                    f"{secrets.token_urlsafe(32)}\n"
                )
            with contextlib.suppress(FileExistsError):  # another process won: use its key
                os.link(tmp, path)
        finally:
            os.unlink(tmp)
    except OSError as exc:
        raise TokenKeyError(f"cannot create the continue-token key file {path}: {exc}") from None
    return read_key_file(path)


def load_keys(
    key_file: str | None = None,
    environ: Mapping[str, str] | None = None,
    default_file: Path | None = None,
) -> TokenKeys:
    """The configured keys (see the module docstring for the order of the sources).

    Args:
        key_file: the ``--token-key-file`` flag (``None`` or ``""`` = not given).
        environ: the environment (``os.environ`` if ``None``).
        default_file: the file to use, created if missing, when nothing is configured;
            ``None`` falls back to :func:`process_keys`.

    Raises:
        TokenKeyError: both variables are set, or the chosen source is unusable.
    """
    env = os.environ if environ is None else environ
    if key_file:
        return read_key_file(Path(key_file))
    env_file, env_keys = env.get(ENV_KEY_FILE, ""), env.get(ENV_KEYS, "")
    if env_file and env_keys:
        raise TokenKeyError(f"set either {ENV_KEY_FILE} or {ENV_KEYS}, not both")
    if env_file:
        return read_key_file(Path(env_file))
    if env_keys:
        return TokenKeys.parse(env_keys, ",", ENV_KEYS)
    if default_file is not None:
        return ensure_key_file(default_file)
    return process_keys()
