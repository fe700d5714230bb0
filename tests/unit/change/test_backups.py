"""What each backup brings back, for `kaudit backups` and `kaudit rollback` (issue 24 item 10)."""

from __future__ import annotations

from installer.change.history import Backup
from installer.change.plans import restores_text


def test_two_backups_say_what_each_restores() -> None:
    off = Backup("20261205T070000Z-enable-aaaa", {"auditOn": False, "profile": None, "summary": "enable"})
    on = Backup("20261205T073912Z-switch-de7b", {"auditOn": True, "profile": "recommended", "summary": "switch",
                                                 "policy": "/etc/kubernetes/audit/policy-1.yaml"})
    assert off.restores() == "auditing off"
    assert on.restores() == "auditing on, profile recommended, policy /etc/kubernetes/audit/policy-1.yaml"
    assert on.to_json()["policy"] == "/etc/kubernetes/audit/policy-1.yaml"
    assert on.to_json()["webhookConfig"] is None


def test_a_backup_from_before_the_meta_recorded_its_policy_names_the_files_it_holds() -> None:
    old = Backup("b", {"auditOn": True, "profile": "cis"},
                 files=("/etc/kubernetes/audit/policy-2.yaml", "/etc/kubernetes/audit/webhook-3.kubeconfig"))
    assert old.policy == "/etc/kubernetes/audit/policy-2.yaml"
    assert old.webhook == "/etc/kubernetes/audit/webhook-3.kubeconfig"
    assert "webhook /etc/kubernetes/audit/webhook-3.kubeconfig" in old.restores()


def test_restores_text_for_a_hand_made_policy_and_unknown_meta() -> None:
    assert restores_text(True, None, "/etc/p.yaml") == ("auditing on, no kaudit profile (a policy set up by hand), "
                                                        "policy /etc/p.yaml")
    assert restores_text(None, None, None) == "(not recorded)"
