"""One module per command; each has `register(app)`. Keep imports here light."""

from __future__ import annotations

from types import ModuleType

from installer.commands import status

COMMAND_MODULES: tuple[ModuleType, ...] = (status,)
