"""One module per command; each has `register(app)`. Keep imports here light."""

from __future__ import annotations

from types import ModuleType

from installer.commands import disable, enable, export, profiles_cmd, render, rollback, status, validate

COMMAND_MODULES: tuple[ModuleType, ...] = (status, profiles_cmd, render, validate, enable, disable, rollback, export)
