"""The values a change hands around: what the user asked (`Options`, the plan's `Desired`), what the phases
hand on to each other (`RunData`, after kubeadm's workflow.RunData), and what the run reports (`NodeResult`).

`RunData` is frozen: each phase reads the parts it needs through the accessors below (which name the phase
that should have set a missing part) and returns the next value with `dataclasses.replace`. Imports nothing
of `change`'s.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from installer.node import facts as nodefacts

if TYPE_CHECKING:
    from installer.manifest.read import Manifest

T = TypeVar("T")


@dataclass
class Desired:
    """What a node should look like after the operation."""

    op: str  # enable, switch, disable, rollback (repair: the manifest is as wanted, a file it names is not)
    after: Manifest  # the manifest the node should have, parsed
    summary: str  # one line for people: "enable profile cis", "switch minimal -> cis"
    profile: str | None = None
    policy: tuple[str, bytes] | None = None  # (node path, content)
    webhook: tuple[str, bytes] | None = None
    policy_text: str | None = None  # shown by --dry-run
    notes: list[str] = field(default_factory=list)  # facts worth a line: the log's disk budget
    warnings: tuple[str, ...] = ()  # the policy lint's, printed once per run (not in the JSON result)
    export_args: str | None = None  # `kaudit export` arguments for the same policy, when known

    @property
    def manifest(self) -> bytes:
        return self.after.data

    @property
    def policy_sha256(self) -> str | None:
        """The sha256 of the policy's content (the change result's `policy_sha256`), None without a policy."""
        return hashlib.sha256(self.policy[1]).hexdigest() if self.policy else None


@dataclass
class Options:
    timeout: float = 120.0
    guard_grace: float = 30.0
    dry_run: bool = False
    break_lock: bool = False
    verify: bool = True
    settle: float = 0.5  # seconds a ready new instance must stay up: one that crashes right away is no success

    @property
    def guard_secs(self) -> int:
        """How long a guard waits for the confirmation before it restores the backup."""
        return int(self.timeout + self.guard_grace)


@dataclass
class NodeResult:
    node: str
    ok: bool
    exit_code: int
    action: str  # enabled, switched, disabled, rolled-back, unchanged, dry-run, refused, failed-restored, ...
    message: str
    changed: bool = False
    backup: str | None = None
    profile: str | None = None
    diff: str | None = None
    policy_file: str | None = None
    policy_sha256: str | None = None  # the sha256 of policy_file's content (Desired.policy_sha256)
    ready_seconds: float | None = None
    new_instance_pid: int | None = None
    verify: dict[str, Any] | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    log_lines: list[str] = field(default_factory=list)
    cluster: str | None = None
    flavor: str | None = None
    caveat: str | None = None  # what will undo this change later, and how to make it permanent
    notes: list[str] = field(default_factory=list)
    # The node at which its cluster's rollout stopped, on each node left as it was after others changed.
    stopped_at: str | None = None
    warnings: tuple[str, ...] = ()  # the plan's policy warnings: stderr only, not part of the JSON schema
    permanent: str | None = None  # the `kaudit export` command of the caveat, for the text's short note (not JSON)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        del out["warnings"], out["permanent"]
        return out


Planner = Callable[[nodefacts.NodeFacts, "Manifest", Any], Desired]  # (facts, the manifest parsed, input)
Confirm = Callable[[str, str], bool]  # (node, diff) -> go ahead?
Progress = Callable[[str, str], None]  # (node, message)

DONE = {"enable": "enabled", "switch": "switched", "disable": "disabled", "rollback": "rolled-back"}


class PhaseOrderError(AssertionError):
    """A phase read a part of RunData that no earlier phase set: the phase list is wrong, not the node."""


@dataclass(frozen=True)
class Found:
    """The node as preflight (or a re-read after a take-over) found it: its facts and its manifest, parsed."""

    facts: nodefacts.NodeFacts
    manifest: bytes  # facts.manifest, known present
    before: Manifest


@dataclass(frozen=True)
class Pending:
    """An earlier run's unconfirmed change (its guard waits), and what this run makes of it."""

    ident: str  # its backup id
    op: str
    what: str  # its summary, for people
    desired: Desired | None  # what this run wants of the node as that change left it; None: it cannot plan
    why: str  # why it is not wanted (restore it); "" when it is what this run asks for (confirm it)


@dataclass(frozen=True)
class TakenOver:
    """The take-over script's answer: the guard is re-armed for this run."""

    applied_at: float  # node clock, epoch: when that change's manifest was written
    applied_uptime: float  # the same, seconds since boot
    earlier: bytes  # the manifest of its backup


@dataclass(frozen=True)
class Ready:
    """A new kube-apiserver with the expected flags answered its probe and stayed up (await.sh's `ready=`)."""

    pid: int
    ready_at: float  # node clock, epoch
    verify: str  # found / missing / "" (no verification request)


@dataclass(frozen=True)
class TimedOut:
    """No such instance within the time: await.sh's `timeout=` state, then the API server's last log lines."""

    state: str
    log_lines: list[str]


@dataclass(frozen=True)
class Written:
    """The apply phase wrote the change: its backup, and when the manifest was renamed into place."""

    backup: str
    applied_at: float  # node clock, epoch
    applied_uptime: float  # node clock, seconds since boot


@dataclass(frozen=True)
class RunData:
    """What the phases hand on to each other; None (or empty) until the phase that sets it has run."""

    found: Found | None = None  # preflight; replaced by "read the node again" after a take-over
    pending: Pending | None = None  # plan the take-over
    taken: TakenOver | None = None  # take over
    taken_ready: Ready | None = None  # await the taken-over change
    reread: bool = False  # the take-over is over: read the node again before planning
    desired: Desired | None = None  # plan
    stale: tuple[str, ...] = ()  # plan: content-addressed files to re-upload (the manifest is as wanted)
    plan_notes: tuple[str, ...] = ()  # plan: its notes (the log's disk budget), true only of a change that stands
    shown: bytes | None = None  # the manifest whose diff the user already said yes to
    written: Written | None = None  # apply
    ready: Ready | None = None  # await
    would: str = ""  # what a dry run would do, for the result's message
    done: bool = False  # the change is complete: no later phase runs

    def node(self) -> Found:
        return _need(self.found, "preflight")

    def plan(self) -> Desired:
        return _need(self.desired, "plan")

    def write(self) -> Written:
        return _need(self.written, "apply")

    def take_over(self) -> Pending:
        return _need(self.pending, "plan the take-over")

    def taken_over(self) -> TakenOver:
        return _need(self.taken, "take over")


def _need(value: T | None, phase: str) -> T:
    if value is None:
        raise PhaseOrderError(f"the {phase} phase has not run")
    return value


def stale_files(facts: nodefacts.NodeFacts, desired: Desired) -> list[str]:
    """The desired content-addressed files that the node lacks or holds with other content."""
    out = []
    for item in (desired.policy, desired.webhook):
        if item is not None:
            path, data = item
            have = facts.audit_files.get(path)
            if have is None or have[0] != hashlib.sha256(data).hexdigest():
                out.append(path)
    return out


def load(manifest: bytes | Manifest) -> Manifest:
    from installer.manifest.read import Manifest, load

    return manifest if isinstance(manifest, Manifest) else load(manifest)


def same_pod(a: Manifest, b: Manifest) -> bool:
    """Whether two manifests declare the same pod (comments and layout aside): no restart follows."""
    from installer.manifest.parse import to_python

    return a is b or bool(to_python(a.located.root) == to_python(b.located.root))


def same_pod_bytes(a: bytes, b: Manifest) -> bool:
    """same_pod for a manifest read back from the node as bytes: one that does not parse is never the same."""
    from installer.manifest.parse import ManifestError

    try:
        return same_pod(load(a), b)
    except ManifestError:
        return False
