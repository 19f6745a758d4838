"""Invite codes on SQLite and PostgreSQL: single-use, expiring, linked atomically."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from storage import Database, InvalidInviteError, InviteStore, PeopleStore, UnknownPersonError


def test_redeeming_a_code_links_the_account_once(database: Database) -> None:
    people, invites = PeopleStore(database), InviteStore(database)
    ana = people.add("Ana Diaz", "student")
    invite = invites.issue(ana.id)
    assert len(invite.code) == 10 and invite.code.isalnum()
    person = invites.redeem(
        invite.code, platform="telegram", workspace=None, user_id="1001", chat_id="1001"
    )
    assert person.id == ana.id
    assert people.by_identity("telegram", None, "1001") == person
    with pytest.raises(InvalidInviteError, match="already been used"):
        invites.redeem(
            invite.code, platform="telegram", workspace=None, user_id="2002", chat_id="2002"
        )
    assert people.by_identity("telegram", None, "2002") is None


def test_expired_and_unknown_codes_are_refused(database: Database) -> None:
    people, invites = PeopleStore(database), InviteStore(database)
    ana = people.add("Ana Diaz", "student")
    old = invites.issue(ana.id, ttl=timedelta(seconds=-1))
    with pytest.raises(InvalidInviteError, match="expired"):
        invites.redeem(old.code, platform="telegram", workspace=None, user_id="1", chat_id="1")
    with pytest.raises(InvalidInviteError, match="not one we know"):
        invites.redeem("nope", platform="telegram", workspace=None, user_id="1", chat_id="1")
    assert people.by_identity("telegram", None, "1") is None
    with pytest.raises(UnknownPersonError):
        invites.issue(999_999)


def test_two_accounts_racing_for_one_code_cannot_both_get_in(database: Database) -> None:
    people, invites = PeopleStore(database), InviteStore(database)
    code = invites.issue(people.add("Ana Diaz", "student").id).code
    results: list[str] = []

    def redeem(user_id: str) -> None:
        try:
            invites.redeem(code, platform="slack", workspace="T1", user_id=user_id, chat_id=None)
            results.append("linked")
        except InvalidInviteError:
            results.append("refused")

    threads = [threading.Thread(target=redeem, args=(f"U{n}",)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["linked"] + ["refused"] * 5
    linked = [n for n in range(6) if people.by_identity("slack", "T1", f"U{n}") is not None]
    assert len(linked) == 1
