"""What every local server of the test bed shares: start, stop, and `with`."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class LocalService:
    """A server on loopback that a test starts and always stops (`with` does both)."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
