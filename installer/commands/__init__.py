"""One module per command; each has `register(app)`. Keep imports here light."""

from __future__ import annotations

from types import ModuleType

from installer.commands import profiles_cmd, render, status, validate

COMMAND_MODULES: tuple[ModuleType, ...] = (status, profiles_cmd, render, validate)
