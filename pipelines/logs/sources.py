"""Per-source log settings: a line format and clustering parameters for the sources that need them.

The built-in header formats and clustering parameters fit most logs; a source
that does not fit gets its own entry in a YAML file named by
``$GPUWATCH_LOG_SOURCES`` (or passed to :meth:`LogSources.load`). The first
entry whose ``match`` (a glob on the record's source path) fits wins::

    sources:
      - match: /var/log/myapp/*.log
        format: '(?P<ts>\\S+) \\| (?P<level>\\w+) \\| (?P<msg>.*)'   # or a built-in name: slurm, nccl, syslog...
        similarity: 0.8        # drain similarity, 0..1 (default 0.7)
        depth: 5               # drain tree depth (default 4)
        lead_words: 1          # leading unmasked words that must match (default 2)

The node agent can also name a file's format in its own config
(``logfiles.format``); it travels as the record label ``log_format`` and is
used when no entry here matches.

>>> s = LogSources.from_dict({"sources": [{"match": "/var/log/slurm/*", "format": "slurm", "similarity": 0.8}]})
>>> s.profile_for("/var/log/slurm/slurmd.log").similarity, s.profile_for("/var/log/other.log").name
(0.8, 'default')
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pipelines.logs.headers import HeaderFormatError, HeaderParser
from pipelines.logs.miner import DEFAULT_DEPTH, DEFAULT_LEAD_WORDS, DEFAULT_SIM_TH

SOURCES_ENV = "GPUWATCH_LOG_SOURCES"
#: The record label through which the agent names a source's line format.
FORMAT_LABEL = "log_format"


class LogSourcesError(ValueError):
    """A log sources file that cannot be used; the text says which entry and why."""


class SourceProfile(BaseModel):
    """One entry: which sources, their line format and clustering parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    match: str = Field(min_length=1)
    format: str | None = None
    similarity: float = Field(default=DEFAULT_SIM_TH, gt=0, le=1)
    depth: int = Field(default=DEFAULT_DEPTH, ge=3, le=12)
    lead_words: int = Field(default=DEFAULT_LEAD_WORDS, ge=0, le=8)

    @field_validator("format")
    @classmethod
    def _format_compiles(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                HeaderParser(default=v)
            except HeaderFormatError as e:
                raise ValueError(str(e)) from None
        return v

    @property
    def name(self) -> str:
        return self.match

    @property
    def clustering(self) -> tuple[float, int, int]:
        return (self.similarity, self.depth, self.lead_words)


DEFAULT_PROFILE_NAME = "default"


@dataclass
class LogSources:
    profiles: list[SourceProfile] = field(default_factory=list)
    _by_source: dict[str, SourceProfile | None] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, doc: dict | None) -> LogSources:
        items = (doc or {}).get("sources") or []
        if not isinstance(items, list):
            raise LogSourcesError("expected a top-level 'sources:' list")
        profiles = []
        for i, item in enumerate(items):
            try:
                profiles.append(SourceProfile.model_validate(item))
            except ValidationError as e:
                first = e.errors()[0]
                where = ".".join(str(x) for x in first["loc"]) or "entry"
                raise LogSourcesError(f"log source #{i + 1}: {where}: {first['msg']}") from None
        return cls(profiles)

    @classmethod
    def load(cls, path: Path | str | None = None) -> LogSources:
        """From ``path``, else ``$GPUWATCH_LOG_SOURCES``, else no entries (built-in defaults for all)."""
        path = path or os.environ.get(SOURCES_ENV) or None
        if path is None:
            return cls()
        try:
            doc = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError) as e:
            raise LogSourcesError(f"cannot read log sources from {path}: {e}") from None
        try:
            return cls.from_dict(doc)
        except LogSourcesError as e:
            raise LogSourcesError(f"{path}: {e}") from None

    def profile_for(self, source: str) -> SourceProfile | _Default:
        """The entry for a source, or the defaults (``.name == "default"``)."""
        found = self._by_source.get(source, False)
        if found is False:
            found = next((p for p in self.profiles if fnmatch.fnmatchcase(source, p.match)), None)
            if len(self._by_source) < 10_000:
                self._by_source[source] = found
        return found if found is not None else _DEFAULT

    def formats(self) -> dict[str, str]:
        """Glob -> format, for the header parser."""
        return {p.match: p.format for p in self.profiles if p.format}


class _Default:
    name = DEFAULT_PROFILE_NAME
    format = None
    similarity, depth, lead_words = DEFAULT_SIM_TH, DEFAULT_DEPTH, DEFAULT_LEAD_WORDS
    clustering = (DEFAULT_SIM_TH, DEFAULT_DEPTH, DEFAULT_LEAD_WORDS)


_DEFAULT = _Default()

__all__ = ["FORMAT_LABEL", "LogSources", "LogSourcesError", "SOURCES_ENV", "SourceProfile"]
