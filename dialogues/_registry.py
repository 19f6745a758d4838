"""The flows profilebot knows: the built-in ones, extra directories, and pinned versions."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from ._schema import Flow
from .errors import FlowLoadError, UnknownFlowError

if TYPE_CHECKING:
    from ._engine import Engine

__all__ = ["BUILTIN_FLOWS_DIR", "FlowRegistry"]

BUILTIN_FLOWS_DIR = Path(__file__).parent / "flows"


class FlowRegistry:
    """Loads every flow once, refusing the whole set if any file is invalid.

    The files are read when the registry is made, or with ``defer=True`` on its first use
    (a command that needs no flow then reads none; problems are raised at that first use).
    A flow's engine is compiled when first asked for. A conversation is pinned to the
    content it started with, so `engine_for_source` compiles an older stored version on
    demand (once per content hash).
    """

    def __init__(
        self,
        extra_dirs: Iterable[Path] = (),
        *,
        include_builtin: bool = True,
        defer: bool = False,
    ) -> None:
        self._extra_dirs = [Path(d) for d in extra_dirs]
        self._include_builtin = include_builtin
        self._by_id: dict[str, Flow] = {}
        self._by_hash: dict[str, Flow] = {}
        self._engines: dict[str, Engine] = {}
        self._lock = threading.Lock()
        self._loading = threading.Lock()
        self._loaded = False
        if not defer:
            self._load()

    def _load(self) -> None:
        from ._loader import load_flow_files  # with PyYAML and Jinja2: only once flows are read

        with self._loading:
            if self._loaded:
                return
            builtin = _flow_files([BUILTIN_FLOWS_DIR]) if self._include_builtin else []
            extra = _flow_files(self._extra_dirs)
            # Checked apart so a school's own file may replace a built-in flow of the same id.
            builtin_flows, builtin_problems = load_flow_files(builtin)
            extra_flows, extra_problems = load_flow_files(extra)
            if builtin_problems or extra_problems:
                raise FlowLoadError(builtin_problems + extra_problems)
            for flow in [*builtin_flows, *extra_flows]:
                self._know(flow)
            self._loaded = True

    def add(self, flow: Flow) -> Engine:
        """Make ``flow`` known by id (a later one with the same id replaces it)."""
        if not self._loaded:
            self._load()
        self._know(flow)
        return self.engine(flow)

    def _know(self, flow: Flow) -> None:
        self._by_id[flow.id] = flow
        self._by_hash[flow.content_hash] = flow

    def get(self, flow_id: str) -> Flow:
        if not self._loaded:
            self._load()
        try:
            return self._by_id[flow_id]
        except KeyError:
            known = ", ".join(sorted(self._by_id)) or "none"
            raise UnknownFlowError(f"unknown flow '{flow_id}' (known flows: {known})") from None

    def find(self, flow_id: str) -> Flow | None:
        """The flow with this id, or None."""
        if not self._loaded:
            self._load()
        return self._by_id.get(flow_id)

    def flows(self) -> list[Flow]:
        if not self._loaded:
            self._load()
        return sorted(self._by_id.values(), key=lambda f: f.id)

    def engine(self, flow: Flow) -> Engine:
        engine = self._engines.get(flow.content_hash)
        if engine is None:
            from ._engine import Engine

            with self._lock:
                engine = self._engines.setdefault(flow.content_hash, Engine(flow))
        return engine

    def cached_engine(self, content_hash: str) -> Engine | None:
        """The engine of a content hash this registry knows without reading it anew: one
        of its flows, or a version compiled before in this process; None otherwise."""
        engine = self._engines.get(content_hash)
        if engine is None:
            if not self._loaded:
                self._load()
            if content_hash in self._by_hash:
                engine = self.engine(self._by_hash[content_hash])
        return engine

    def engine_for_source(self, content_hash: str, source: str, *, name: str) -> Engine:
        """The engine for a stored flow version (the one a conversation is pinned to)."""
        engine = self.cached_engine(content_hash)
        if engine is None:
            from ._loader import load_flow_text

            engine = self.engine(load_flow_text(source, filename=name))
            self._engines.setdefault(content_hash, engine)
        return engine

    @staticmethod
    def load_file(path: str | Path) -> Flow:
        from ._loader import load_flow_file

        return load_flow_file(path)


def _flow_files(dirs: Iterable[Path]) -> list[Path]:
    paths: list[Path] = []
    for directory in dirs:
        if directory.is_dir():
            paths.extend(sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]))
    return paths
