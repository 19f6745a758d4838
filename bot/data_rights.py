"""A person's rights over their data: a full export (JSON and a readable page) and erasure.

The export is everything ``storage.PersonDataStore`` holds about the person, private answers
included: it is their own data, asked for by an administrator on their behalf (or by them,
``--as`` themself). The page is Jinja2 with autoescaping, so whatever a student typed is shown
as text, never run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from storage import ABOUT_THEM, ErasureReceipt, PersonRecord, Viewed

from .pages import page_template
from .roles import Action, Actor, require

if TYPE_CHECKING:
    from .app import App

__all__ = ["COMMAND_LINE", "ExportFiles", "erase_person", "export_person", "operator_name"]

COMMAND_LINE: Final = "command line"
"""Who an erasure was done by when the command line ran it without ``--as``."""

_TITLES: Final = {
    "profile_fact": "Profile history (every value of every field)",
    "goal": "Goals",
    "action_step": "Action steps",
    "checkin": "Check-ins",
    "checkin_goal_update": "Goal updates in check-ins",
    "reflection": "Reflections",
    "artifact": "Artifacts (work samples)",
    "conversation": "Conversations",
    "answer": "Answers, as typed",
    "conversation_answer": "Older answers of long conversations",
    "conversation_frame": "Questions asked (older /back history)",
    "outbox": "Messages sent",
    ABOUT_THEM: "Messages about them sent to staff (to whom and when, not what)",
    "failed_inbound": "Messages received that could not be processed",
    "due_start": "Scheduled and survey conversations due",
    "channel_identity": "Chat accounts",
    "invite_code": "Invite codes",
    "consent": "Parental consent to sensitive questions (every grant and revoke)",
    "group_member": "Group memberships",
    "advisor_link": "Advisor links",
    "person_role": "Roles",
    "audit_log": "Audit log entries about them",
    "person": "The person record",
}


@dataclass(frozen=True, slots=True)
class ExportFiles:
    """Where an export was written, and how many rows it holds."""

    person: PersonRecord
    json_path: Path
    html_path: Path
    rows: int


def export_person(
    app: App, handle: str, output: Path, *, actor: Actor | None = None
) -> ExportFiles:
    """Write everything held about the person to ``output`` (JSON) and the same with an
    ``.html`` suffix (the page); nothing is written when the person may not be exported."""
    person = app.people.get(handle)
    require(actor, Action.EXPORT_DATA, person)
    data = app.person_data.export(person.handle)
    document = {"exported_at": app.clock.now().isoformat(), **data}
    html_path = output.with_suffix(".html")
    body = json.dumps(document, ensure_ascii=False, indent=2, default=str) + "\n"
    written = _written(output, body, _page(document))
    app.audit.record(actor, Viewed.EXPORT, person)
    return ExportFiles(
        person, written, html_path, sum(len(rows) for rows in data["tables"].values())
    )


def _written(output: Path, body: str, page: str) -> Path:
    """Both files, or neither: a page that cannot be written takes the JSON away again."""
    from .errors import InputError

    html_path = output.with_suffix(".html")
    if html_path == output:
        raise InputError(
            f"--output {output}: name the JSON file (FILE.json); the page goes beside it"
        )
    written: list[Path] = []
    for path, text in ((output, body), (html_path, page)):
        try:
            with path.open("w", encoding="utf-8", newline="") as f:
                f.write(text)
        except OSError as exc:
            for done in written:
                done.unlink(missing_ok=True)
            raise InputError(f"cannot write {path}: {exc.strerror or exc}") from None
        written.append(path)
    return output


def _page(document: dict[str, Any]) -> str:
    sections = []
    for name, rows in document["tables"].items():
        columns = list(rows[0]) if rows else []
        sections.append(
            {
                "title": _TITLES.get(name, name),
                "columns": columns,
                "rows": [[_cell(row[c]) for c in columns] for row in rows],
            }
        )
    return page_template("export.html.j2").render(
        person=document["person"],
        exported_at=document["exported_at"],
        groups=document["groups"],
        advisors=document["advisors"],
        advisees=document["advisees"],
        sections=sections,
    )


def _cell(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, indent=1)
    return value


def erase_person(app: App, handle: str, *, actor: Actor | None = None) -> ErasureReceipt:
    """Erase the person (an admin only); the receipt says who did it: ``operator_name``."""
    person = app.people.get(handle)
    require(actor, Action.ERASE_DATA, person)
    return app.person_data.erase(person.handle, by=operator_name(actor), at=app.clock.now())


def operator_name(actor: Actor | None) -> str:
    """Who acts: the ``--as`` person's handle, else "command line (USER)" with the account
    that ran the command (the operating system's record, not the environment)."""
    if actor is not None:
        return actor.person.handle
    try:
        import os
        import pwd

        return f"{COMMAND_LINE} ({pwd.getpwuid(os.getuid()).pw_name})"
    except (ImportError, KeyError):  # no pwd (Windows), or a uid without a name
        return COMMAND_LINE
