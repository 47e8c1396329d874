"""The base of both processes' settings (settings.py for the operator, runtime/config.py for
the model server): pydantic-settings models whose fields name their environment variable
(validation_alias), carry the default as one would type it and a help text, and render the
Markdown table their docs show (a test keeps each table in step).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any, ClassVar, Self

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

# set while from_env(mapping) runs: then the mapping is the whole environment
_GIVEN_ONLY: ContextVar[bool] = ContextVar("settings_given_only", default=False)


def var(name: str, default: str, help: str) -> Any:
    """A setting read from `name`. The default is written as the variable would be, and
    parsed like it, so the docs show exactly what to type."""
    return Field(default=default, validation_alias=name, description=help)


class EnvSettings(BaseSettings):
    model_config = SettingsConfigDict(
        frozen=True, case_sensitive=True, extra="ignore", validate_default=True
    )
    error: ClassVar[type[ValueError]] = ValueError  # what from_env raises, one line

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # the environment only: no .env file or secrets directory is read behind one's back
        return (init_settings,) if _GIVEN_ONLY.get() else (init_settings, env_settings)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Self:
        """From the process environment (pydantic-settings), or from `env` alone."""
        token = _GIVEN_ONLY.set(env is not None)
        try:
            return cls() if env is None else cls.model_validate(dict(env))
        except ValidationError as e:
            err = e.errors()[0]
            cause = (err.get("ctx") or {}).get("error")
            raise cls.error(str(cause) if cause else err["msg"]) from None
        finally:
            _GIVEN_ONLY.reset(token)

    @classmethod
    def env_name(cls, field: str) -> str:
        return str(cls.model_fields[field].validation_alias)

    @classmethod
    def documented(cls) -> dict[str, tuple[str, str]]:
        """variable -> (default as typed, help), in declaration order."""
        return {
            str(f.validation_alias): (str(f.default), f.description or "")
            for f in cls.model_fields.values()
            if f.validation_alias
        }

    @classmethod
    def table(cls) -> str:
        rows = [
            f"| `{name}` | {f'`{default}`' if default else '(empty)'} | {help} |"
            for name, (default, help) in cls.documented().items()
        ]
        return "\n".join(["| Variable | Default | Effect |", "|---|---|---|", *rows]) + "\n"

    @classmethod
    def render(cls, text: str, start: str, end: str) -> str:
        """`text` with what lies between the markers `start` and `end` replaced by table()."""
        head, found, tail = text.partition(start)
        if not found or end not in tail:
            raise ValueError(f"no {start.strip()!r} ... {end.strip()!r} markers")
        return head + start + cls.table() + end + tail.split(end, 1)[1]


def sync_docs(path: Path, render: Callable[[str], str], check: bool) -> int:
    """Regenerate the table in `path` (make docs), or with `check` only say it is stale."""
    old = path.read_text()
    new = render(old)
    if new == old:
        return 0
    if check:
        print(f"{path} is stale: run `make docs`", file=sys.stderr)
        return 1
    path.write_text(new)
    print(f"wrote {path}")
    return 0
