"""One module per command; each has `register(app)`. Keep imports here light: a command module imports
what it needs (any subpackage) inside its function, so that `kaudit --help` stays fast."""

from __future__ import annotations

from types import ModuleType

from installer.commands import (
    disable,
    enable,
    export,
    inventory,
    logs,
    render,
    rollback,
    simulate,
    status,
    tune,
    validate,
)
from installer.commands import profiles as profiles_cmd

COMMAND_MODULES: tuple[ModuleType, ...] = (
    status, profiles_cmd, render, validate, enable, disable, rollback, export, simulate, tune, logs, inventory,
)
