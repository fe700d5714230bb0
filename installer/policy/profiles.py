"""Policy profiles: definitions (profiles/*.yaml) rendered from Jinja2 templates (templates/*.yaml.j2).

A profile definition names its template, its variables (type, default, help) and the default
log rotation flags. Rendering is a pure function of the profile and the variable values;
`StrictUndefined` makes a variable missing from the context an error, and every value reaches
the YAML through the `q` filter (a JSON string, which is a YAML double-quoted scalar), so a
value cannot change the document's structure.

Both folders are top-level in the repository and ship inside the wheel as package data of
`installer` (pyproject's force-include); `_data_dir` finds them either way.
"""

from __future__ import annotations

import json
import re
import sys
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from installer.errors import InputError, did_you_mean

if TYPE_CHECKING:  # importlib.resources costs ~8 ms to import: only for an install that is not plain files
    if sys.version_info >= (3, 11):
        from importlib.resources.abc import Traversable
    else:
        from importlib.abc import Traversable

VariableType = Literal["bool", "int", "str", "list"]
_TYPES: tuple[str, ...] = ("bool", "int", "str", "list")
_TRUE = {"true", "yes", "on", "1", "y"}
_FALSE = {"false", "no", "off", "0", "n"}


@dataclass(frozen=True)
class Variable:
    name: str
    type: VariableType
    default: object
    help: str
    pattern: str | None = None  # every value (every item of a list) must match it in full

    def describe_default(self) -> str:
        return format_value(self.default)


@dataclass(frozen=True)
class LogDefaults:
    maxage: int
    maxbackup: int
    maxsize: int


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    template: str
    variables: tuple[Variable, ...]
    log: LogDefaults

    def variable(self, name: str) -> Variable | None:
        return next((v for v in self.variables if v.name == name), None)


@dataclass(frozen=True)
class RenderedPolicy:
    profile: Profile
    variables: dict[str, object]
    text: str


def format_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


# --------------------------------------------------------------------------- locating data


def _data_dir(name: str) -> Traversable:
    """`installer/<name>` inside an installed wheel, else the repository's top-level folder (an install that
    is not plain files, e.g. a zip: importlib.resources)."""
    package = Path(__file__).resolve().parents[1]
    packaged = package / name
    if packaged.is_dir():
        return packaged
    repository = package.parent / name
    if repository.is_dir():
        return repository
    from importlib.resources import files

    return files("installer") / name


def templates_dir() -> Traversable:
    return _data_dir("templates")


def profiles_dir() -> Traversable:
    return _data_dir("profiles")


# --------------------------------------------------------------------------- definitions


def _definition_error(source: str, message: str) -> InputError:
    return InputError(f"profile definition {source}: {message}")


def _parse_definition(source: str, text: str) -> Profile:
    from installer.yamlio import reader

    data = reader("safe").load(text)
    if not isinstance(data, dict):
        raise _definition_error(source, "expected a mapping")
    try:
        log = data["log"]
        variables = []
        for item in data.get("variables") or []:
            vtype = item["type"]
            if vtype not in _TYPES:
                raise _definition_error(source, f"variable {item['name']}: unknown type {vtype!r}")
            default = item["default"]
            if vtype == "list":
                default = tuple(str(v) for v in default or ())
            variables.append(Variable(str(item["name"]), vtype, default, str(item["help"]), item.get("pattern")))
        return Profile(
            name=str(data["name"]),
            description=str(data["description"]),
            template=str(data["template"]),
            variables=tuple(variables),
            log=LogDefaults(int(log["maxage"]), int(log["maxbackup"]), int(log["maxsize"])),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise _definition_error(source, f"missing or malformed field: {exc}") from exc


@cache
def _all_profiles() -> tuple[Profile, ...]:
    folder = profiles_dir()
    out = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml") and not entry.name.startswith(("_", ".")):
            profile = _parse_definition(entry.name, entry.read_text(encoding="utf-8"))
            if profile.name != entry.name.removesuffix(".yaml"):
                raise _definition_error(entry.name, f"name {profile.name!r} does not match the file name")
            out.append(profile)
    order = {name: i for i, name in enumerate(PROFILE_ORDER)}
    return tuple(sorted(out, key=lambda p: (order.get(p.name, len(order)), p.name)))


PROFILE_ORDER = ("minimal", "recommended", "cis", "security", "write-bodies", "all-bodies")


def list_profiles() -> list[Profile]:
    """Every profile shipped with kaudit, least recording first."""
    return list(_all_profiles())


@cache
def _one_profile(name: str) -> Profile | None:
    """Just the named profile's definition: reading all of them costs a YAML parse each."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", name):
        return None
    entry = profiles_dir() / f"{name}.yaml"
    if not entry.is_file():
        return None
    profile = _parse_definition(entry.name, entry.read_text(encoding="utf-8"))
    return profile if profile.name == name else None


def load_profile(name: str) -> Profile:
    if (profile := _one_profile(name)) is not None:
        return profile
    for profile in _all_profiles():
        if profile.name == name:
            return profile
    names = [p.name for p in _all_profiles()]
    raise InputError(f"unknown profile {name!r}{did_you_mean(name, names)}; known profiles: {', '.join(names)}")


# --------------------------------------------------------------------------- variables


def parse_sets(pairs: list[str]) -> dict[str, str]:
    """`["name=value", ...]` -> {name: value}; the last of repeated names wins."""
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip()
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", name):
            raise InputError(f"--set {pair!r}: expected name=value (lists comma-separated: name=a,b)")
        out[name.replace("-", "_")] = value
    return out


def _valid_list(profile: Profile) -> str:
    return "; ".join(f"{v.name} ({v.type}, default {v.describe_default() or '(empty)'})" for v in profile.variables)


def convert(variable: Variable, raw: str) -> object:
    """A `--set` string as the variable's type; InputError saying what was expected."""
    text = raw.strip()
    value: object
    if variable.type == "bool":
        if text.lower() in _TRUE:
            value = True
        elif text.lower() in _FALSE:
            value = False
        else:
            raise InputError(f"{variable.name}={raw!r}: expected a boolean (true or false)")
    elif variable.type == "int":
        try:
            value = int(text)
        except ValueError:
            raise InputError(f"{variable.name}={raw!r}: expected a whole number") from None
    elif variable.type == "list":
        items: list[str] = []
        for item in (part.strip() for part in text.split(",")):
            if item and item not in items:
                items.append(item)
        value = tuple(items)
    else:
        value = text
    _check_pattern(variable, value)
    return value


def _check_pattern(variable: Variable, value: object) -> None:
    if variable.pattern is None:
        return
    items = value if isinstance(value, tuple) else (value,)
    for item in items:
        if not isinstance(item, str) or not re.fullmatch(variable.pattern, item):
            raise InputError(f"{variable.name}: {item!r} is not allowed here ({variable.help})")


def resolve_variables(profile: Profile, sets: Mapping[str, str] | None) -> dict[str, object]:
    """Defaults overridden by `sets`; InputError for an unknown name or a wrong value."""
    values: dict[str, object] = {v.name: v.default for v in profile.variables}
    for name, raw in (sets or {}).items():
        variable = profile.variable(name)
        if variable is None:
            hint = did_you_mean(name, [v.name for v in profile.variables])
            raise InputError(
                f"profile {profile.name!r} has no variable {name!r}{hint}; valid variables: {_valid_list(profile)}"
            )
        try:
            values[name] = convert(variable, raw)
        except InputError as exc:
            raise InputError(f"{exc.message}; valid variables: {_valid_list(profile)}") from None
    return values


def split_resource(spec: str) -> tuple[str, str]:
    """kubectl-style `resource[.group][/subresource]` -> (group, resource[/subresource])."""
    base, _, sub = spec.partition("/")
    resource, _, group = base.partition(".")
    return group, f"{resource}/{sub}" if sub else resource


def _grouped(specs: tuple[str, ...]) -> list[tuple[str, list[str]]]:
    groups: dict[str, list[str]] = {}
    for spec in specs:
        group, resource = split_resource(spec)
        groups.setdefault(group, [])
        if resource not in groups[group]:
            groups[group].append(resource)
    return sorted(groups.items())


# --------------------------------------------------------------------------- rendering


def _quote(value: object) -> str:
    return json.dumps(str(value), ensure_ascii=True)


def _flow_list(values: Any) -> str:
    return "[" + ", ".join(_quote(v) for v in values) + "]"


@cache
def _environment() -> Any:
    import jinja2

    folder = templates_dir()

    def load(name: str) -> str:
        entry = folder / name
        if not entry.is_file():
            raise jinja2.TemplateNotFound(name)
        return str(entry.read_text(encoding="utf-8"))

    # YAML, not HTML: autoescape is off, and every value goes through the `q` (JSON string) filter.
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(load),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701
    )
    env.filters["q"] = _quote
    env.filters["flow"] = _flow_list
    return env


def _header(profile: Profile, values: Mapping[str, object]) -> str:
    from installer.policy.model import LATEST_KNOWN_VERSION
    from installer.policy.validate import log_budget

    lines = [
        f"# Audit policy rendered by kaudit from profile {profile.name!r}.",
        *textwrap.wrap(profile.description, 96, initial_indent="# ", subsequent_indent="# "),
        "# Variables:",
    ]
    for variable in profile.variables:
        value = values[variable.name]
        shown = format_value(value).encode("ascii", "backslashreplace").decode("ascii") or "(empty)"
        marker = "" if value == variable.default else "   (set)"
        lines.append(f"#   {variable.name} = {shown}{marker}")
    log = profile.log
    lines.append(
        f"# Log rotation defaults: --audit-log-maxage={log.maxage} --audit-log-maxbackup={log.maxbackup} "
        f"--audit-log-maxsize={log.maxsize}"
    )
    lines.append(f"#   {log_budget(log.maxsize, log.maxbackup, LATEST_KNOWN_VERSION)}")
    lines.append("# Rules apply in order: a request gets the level of the FIRST rule it matches.")
    return "\n".join(lines) + "\n\n"


def render(name: str, sets: Mapping[str, str] | None = None) -> RenderedPolicy:
    """Render a profile with its defaults overridden by `sets` (strings, as from `--set`)."""
    import jinja2

    profile = load_profile(name)
    values = resolve_variables(profile, sets)
    context: dict[str, object] = dict(values)
    context["profile"] = profile
    if "extra_metadata_resources" in values:
        extra = values["extra_metadata_resources"]
        assert isinstance(extra, tuple)
        context["extra_metadata"] = _grouped(extra)
    try:
        body = _environment().get_template(profile.template).render(context)
    except jinja2.TemplateError as exc:
        raise InputError(f"profile {profile.name!r}: template {profile.template} failed: {exc}") from exc
    text = _header(profile, values) + _tidy(body)
    return RenderedPolicy(profile, values, text)


def _tidy(text: str) -> str:
    """Blank lines only between commented groups of rules; exactly one trailing newline."""
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    out: list[str] = []
    for line in lines:
        is_comment = line.lstrip().startswith("#")
        if is_comment and out and not out[-1].lstrip().startswith("#") and out[-1] != "rules:":
            out.append("")
        out.append(line)
    return "\n".join(out) + "\n"
