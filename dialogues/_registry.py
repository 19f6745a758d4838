"""The flows profilebot knows: the built-in ones, extra directories, and pinned versions."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path

from ._engine import Engine
from ._loader import check_flow_files, load_flow_file, load_flow_text
from ._schema import Flow
from .errors import FlowLoadError, UnknownFlowError

__all__ = ["BUILTIN_FLOWS_DIR", "FlowRegistry"]

BUILTIN_FLOWS_DIR = Path(__file__).parent / "flows"


class FlowRegistry:
    """Loads every flow once, refusing the whole set if any file is invalid.

    A conversation is pinned to the content it started with, so `engine_for_source` compiles
    an older stored version on demand (once per content hash).
    """

    def __init__(self, extra_dirs: Iterable[Path] = (), *, include_builtin: bool = True) -> None:
        builtin = _flow_files([BUILTIN_FLOWS_DIR]) if include_builtin else []
        extra = _flow_files(Path(d) for d in extra_dirs)
        # Checked apart so a school's own file may replace a built-in flow of the same id.
        problems = check_flow_files(builtin) + check_flow_files(extra)
        if problems:
            raise FlowLoadError(problems)
        self._by_id: dict[str, Flow] = {}
        self._engines: dict[str, Engine] = {}
        self._lock = threading.Lock()
        for path in [*builtin, *extra]:
            self.add(load_flow_file(path))

    def add(self, flow: Flow) -> Engine:
        """Make ``flow`` known by id (a later one with the same id replaces it)."""
        self._by_id[flow.id] = flow
        return self.engine(flow)

    def get(self, flow_id: str) -> Flow:
        try:
            return self._by_id[flow_id]
        except KeyError:
            known = ", ".join(sorted(self._by_id)) or "none"
            raise UnknownFlowError(f"unknown flow '{flow_id}' (known flows: {known})") from None

    def find(self, flow_id: str) -> Flow | None:
        """The flow with this id, or None."""
        return self._by_id.get(flow_id)

    def flows(self) -> list[Flow]:
        return sorted(self._by_id.values(), key=lambda f: f.id)

    def engine(self, flow: Flow) -> Engine:
        engine = self._engines.get(flow.content_hash)
        if engine is None:
            with self._lock:
                engine = self._engines.setdefault(flow.content_hash, Engine(flow))
        return engine

    def cached_engine(self, content_hash: str) -> Engine | None:
        """The engine of a content hash already compiled in this process, if any."""
        return self._engines.get(content_hash)

    def engine_for_source(self, content_hash: str, source: str, *, name: str) -> Engine:
        """The engine for a stored flow version (the one a conversation is pinned to)."""
        engine = self._engines.get(content_hash)
        if engine is None:
            engine = self.engine(load_flow_text(source, filename=name))
            self._engines.setdefault(content_hash, engine)
        return engine

    @staticmethod
    def load_file(path: str | Path) -> Flow:
        return load_flow_file(path)


def _flow_files(dirs: Iterable[Path]) -> list[Path]:
    paths: list[Path] = []
    for directory in dirs:
        if directory.is_dir():
            paths.extend(sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]))
    return paths
