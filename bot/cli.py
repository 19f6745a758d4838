"""The `profilebot` command line (the public contract in product.md).

People run these commands by hand, so each one must answer at once. Nothing heavy is
imported at the top of this module: a command gets the app from `_open_app()` and imports
anything else it needs (an adapter, asyncio) inside its own body, so `--help` loads none of
it and a read-only command no migration tool or chat SDK; the flow files are read only when
a flow is used, unless the command must not start with a broken one (``flows=True``: chat,
run). A new command does the same.
"""

from __future__ import annotations

import gc
import io
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from dialogues import ProfilebotError

if TYPE_CHECKING:
    from datetime import date, datetime

    from storage import Database, FailedInboundRecord, SafetyAlert, ScheduleRecord

    from .app import App
    from .clock import Clock

__all__ = ["app", "main"]

app = typer.Typer(
    name="profilebot",
    help="A chat bot that helps a school know its students.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
flows_app = typer.Typer(help="Check and list interview flows.", no_args_is_help=True)
people_app = typer.Typer(help="Manage the roster.", no_args_is_help=True)
profile_app = typer.Typer(help="Learner profiles.", no_args_is_help=True)
plan_app = typer.Typer(help="Learning plans.", no_args_is_help=True)
db_app = typer.Typer(help="The database.", no_args_is_help=True)
survey_app = typer.Typer(
    help="Surveys: a flow sent to every student of a class.", no_args_is_help=True
)
inbound_app = typer.Typer(
    help="Messages whose turn kept failing, set aside (parked).", no_args_is_help=True
)
schedule_app = typer.Typer(
    help="Flows that start on their own: weekly check-ins, or any RFC 5545 rule.",
    no_args_is_help=True,
)
calendar_app = typer.Typer(help="The school calendar: days without school.", no_args_is_help=True)
roster_app = typer.Typer(help="Rosters as schools export them (OneRoster).", no_args_is_help=True)
safety_app = typer.Typer(
    help="Safety alerts: what students typed that a counselor must see.", no_args_is_help=True
)
consent_app = typer.Typer(
    help="Parents' consent to sensitive (PPRA) questions, and who is under 13.",
    no_args_is_help=True,
)
app.add_typer(flows_app, name="flows")
app.add_typer(people_app, name="people")
app.add_typer(profile_app, name="profile")
app.add_typer(plan_app, name="plan")
app.add_typer(survey_app, name="survey")
app.add_typer(db_app, name="db")
app.add_typer(inbound_app, name="inbound")
app.add_typer(schedule_app, name="schedule")
app.add_typer(calendar_app, name="calendar")
app.add_typer(roster_app, name="roster")
app.add_typer(safety_app, name="safety")
app.add_typer(consent_app, name="consent")


# The databases commands opened in a process `main` runs, which closes them at the end; None
# when the commands are invoked in-process (tests), where they close as usual.
_to_close: list[Database] | None = None


def _open_app(*, upgrade: bool = True, flows: bool = False, clock: Clock | None = None) -> App:
    """The app a command works with: settings, the database (migrated when behind) and the
    flows (read now with ``flows=True``, else when one is first used); ``clock`` as in
    ``App.create``."""
    from .app import App

    bot = App.create(upgrade=upgrade, read_flows=flows, clock=clock)
    if _to_close is not None:
        _to_close.append(bot.db)
    return bot


def _print_json(data: Any) -> None:
    import json

    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def _read_line() -> str | None:
    try:
        line = input("> " if sys.stdin.isatty() else "")
    except EOFError:
        return None
    return line


@app.command()
def chat(
    handle: Annotated[
        str, typer.Option("--as", help="Who is talking (created as a student if new).")
    ] = "me",
    flow_id: Annotated[
        str | None, typer.Option("--flow", help="A built-in or configured flow id.")
    ] = None,
    file: Annotated[Path | None, typer.Option("--file", help="Run any flow file.")] = None,
    restart: Annotated[bool, typer.Option("--restart", help="Start the flow anew.")] = False,
) -> None:
    """Run or resume a conversation in the terminal.

    Without --flow or --file, resumes the open conversation, or starts 'this_is_me'.
    """
    from .adapters.console import ConsoleChat

    if flow_id and file:
        raise typer.BadParameter("use --flow or --file, not both")
    if isinstance(sys.stdin, io.TextIOWrapper):  # bytes that are not UTF-8 become U+FFFD
        sys.stdin.reconfigure(errors="replace")
    bot = _open_app(flows=True)
    flow = bot.load_flow(flow_id, file) if (flow_id or file) else None
    person = bot.people.ensure_student(handle)
    console = ConsoleChat(
        bot.service,
        bot.outbox,
        read_line=_read_line,
        out=sys.stdout,
        interactive=sys.stdin.isatty(),
        app=bot,
    )
    try:
        outcome = console.run(person, flow, default_flow=bot.load_flow(), fresh=restart)
    except KeyboardInterrupt:
        console.say(f"Paused. Run `profilebot chat --as {handle}` to carry on where you stopped.")
        return
    if not outcome.finished and not sys.stdin.isatty():
        console.say(f"(Input ended. Run `profilebot chat --as {handle}` to carry on.)")


@app.command()
def run(
    platforms: Annotated[
        list[str] | None,
        typer.Option(
            "--platform", help="telegram or slack; repeat it to serve both (default: telegram)."
        ),
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", help="Port for webhook / HTTP mode.")
    ] = None,
) -> None:
    """Run the bot itself, configured from .env: inbound, delivery and the scheduler."""
    import asyncio

    from .host import host, run_services

    bot = _open_app(flows=True)
    services = run_services(bot, platforms or ["telegram"], port=port, announce=_announce)
    asyncio.run(host(services))


@app.command()
def worker() -> None:
    """Deliver messages and run the scheduler, with no inbound side: for more processes
    beside `run` on one PostgreSQL database (every configured platform)."""
    import asyncio

    from .host import host, worker_services

    bot = _open_app(flows=True)
    asyncio.run(host(worker_services(bot, announce=_announce)))


def _announce(what: str) -> None:
    typer.echo(f"profilebot: {what}")


@flows_app.command("check")
def flows_check(
    paths: Annotated[list[Path], typer.Argument(help="Flow files to validate.")],
) -> None:
    """Validate flow files: exit 0 when valid, 1 with one line per problem."""
    from dialogues import check_flow_files

    problems = check_flow_files(paths)
    for problem in problems:
        typer.echo(str(problem))
    if problems:
        raise typer.Exit(1)
    typer.echo(f"ok: {len(paths)} file{'s' if len(paths) != 1 else ''} valid")


@flows_app.command("list")
def flows_list() -> None:
    """Show the flows profilebot knows."""
    from dialogues import FlowRegistry

    from .config import load_settings

    registry = FlowRegistry(load_settings().flow_dirs)
    for flow in registry.flows():
        where = (
            "built-in"
            if flow.path and "dialogues/flows" in flow.path.replace("\\", "/")
            else flow.path
        )
        about = f" — {flow.description}" if flow.description else ""
        typer.echo(
            f"{flow.id:<18} v{flow.version:<3} {flow.audience.value:<8} "
            f"{flow.title}{about} [{where}]"
        )


@people_app.command("add")
def people_add(
    name: Annotated[str, typer.Option("--name")],
    role: Annotated[
        str, typer.Option("--role", help="student, advisor, teacher, counselor or admin")
    ],
    handle: Annotated[str | None, typer.Option("--handle")] = None,
    advisor: Annotated[str | None, typer.Option("--advisor", help="The advisor's handle.")] = None,
    group: Annotated[str | None, typer.Option("--group")] = None,
    timezone: Annotated[str | None, typer.Option("--timezone")] = None,
    email: Annotated[
        str | None, typer.Option("--email", help="Slack users with this email join as them.")
    ] = None,
    safety_contact: Annotated[
        bool,
        typer.Option(
            "--safety-contact", help="Also a counselor: gets safety alerts in their chat."
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Add a person to the roster, with a single-use invite code to link their chat account."""
    bot = _open_app()
    person = bot.people.add(
        name,
        role,
        handle=handle,
        advisor=advisor,
        group=group,
        timezone=timezone,
        email=email,
        also=("counselor",) if safety_contact else (),
    )
    invite = bot.invites.issue(person.id)
    link = _telegram_link(bot, invite.code)
    if as_json:
        _print_json(
            {
                **person.to_json(),
                "email": None if email is None else email.strip().lower(),
                "invite_code": invite.code,
                "invite_expires_at": invite.expires_at.isoformat(),
                "telegram_link": link,
            }
        )
    else:
        typer.echo(
            f"added {person.display_name} as {', '.join(person.roles)} (handle: {person.handle}); "
            f"invite code {invite.code}, valid until {invite.expires_at:%Y-%m-%d}"
        )
        if link:
            typer.echo(f"Telegram: {link}")


@people_app.command("import")
def people_import(
    file: Annotated[Path, typer.Argument(metavar="FILE.csv", help="The roster, as CSV.")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Add or update many people at once from a CSV file, all or nothing.

    Columns: name, role (required); handle, group (several separated by ';'), advisor,
    timezone, email, telegram_id, slack_id (optional). Importing a file again changes nothing.
    """
    from .progress import Progress, summary
    from .roster import import_roster

    bot = _open_app()
    with Progress(f"Reading {file.name}") as bar:
        counts = import_roster(bot.roster, file, progress=bar)
    if as_json:
        _print_json(counts.to_json())
    summary(
        f"imported {file.name}: {counts.added} added, {counts.updated} updated, "
        f"{counts.unchanged} unchanged",
        as_json=as_json,
    )


@roster_app.command("import")
def roster_import(
    folder: Annotated[
        Path, typer.Argument(metavar="DIR", help="The folder of a OneRoster 1.1 CSV export.")
    ],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Add, update or deactivate people and their classes from a OneRoster 1.1 CSV export
    (bulk or delta), all or nothing. Importing it again changes nothing (docs/roster.md)."""
    from .oneroster import import_oneroster
    from .progress import summary

    bot = _open_app()
    result = import_oneroster(bot.roster, folder)
    if as_json:
        _print_json(result.to_json())
    ignored = ", ".join(f"{n} {role}" for role, n in sorted(result.ignored.items()))
    counts = result.counts
    summary(
        f"imported {folder.name or folder}: {counts.added} added, {counts.updated} updated, "
        f"{counts.deactivated} deactivated, {counts.unchanged} unchanged"
        + (f" (left out: {ignored})" if ignored else ""),
        as_json=as_json,
    )


@people_app.command("link")
def people_link(
    handle: Annotated[str, typer.Argument(help="The person's handle.")],
    platform: Annotated[str, typer.Option("--platform", help="telegram or slack")],
    account: Annotated[
        str, typer.Option("--account", help="Their user id there (Telegram: digits; Slack: U…).")
    ],
    workspace: Annotated[
        str | None, typer.Option("--workspace", help="The Slack workspace (team) id, if known.")
    ] = None,
) -> None:
    """Link a chat account an administrator already knows (a Slack export, a roster column)."""
    from .roster import link_account

    bot = _open_app()
    person, delivered = link_account(bot, handle, platform, account, workspace=workspace)
    waiting = "; the conversation waiting for them is on its way" if delivered else ""
    typer.echo(
        f"linked {platform} account {account} to {person.display_name} ({person.handle}){waiting}"
    )


def _telegram_link(bot: App, code: str) -> str | None:
    """``https://t.me/<bot>?start=<code>`` when a Telegram token is configured and works."""
    if bot.settings.telegram_bot_token is None:
        return None
    import asyncio

    from .adapters.telegram import bot_username, invite_link
    from .errors import PlatformError

    try:
        username = asyncio.run(bot_username(bot))
    except PlatformError as exc:
        typer.echo(f"profilebot: no Telegram link ({exc})", err=True)
        return None
    return None if username is None else invite_link(username, code)


_AS_HELP = "Act as this person, with their permissions (default: the administrator)."


@profile_app.command("show")
def profile_show(
    handle: str,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    include_private: Annotated[
        bool,
        typer.Option(
            "--include-private",
            help="Also show fields the student keeps private (the student or an admin only).",
        ),
    ] = False,
    actor_handle: Annotated[str | None, typer.Option("--as", help=_AS_HELP)] = None,
) -> None:
    """Show a learner profile (private fields hidden unless asked)."""
    from storage import Viewed

    from .roles import Action, require

    bot = _open_app()
    person = bot.people.get(handle)
    actor = bot.actor(actor_handle)
    require(actor, Action.VIEW_PROFILE, person)
    if include_private:
        require(actor, Action.VIEW_PRIVATE, person)
    seen = bot.audit.viewing(actor, Viewed.PROFILE, private=include_private)
    profile = bot.profiles.current(person.id, include_private=include_private, seen=seen)
    if as_json:
        _print_json({"person": person.to_json(), "profile": profile})
        return
    from .cards import option_labels, profile_card

    private = bot.private_fields() if include_private else set()
    labels = option_labels(bot.registry.flows())
    typer.echo(profile_card(person.display_name, profile, labels=labels, private_fields=private))


@profile_app.command("card")
def profile_card(
    handle: Annotated[str, typer.Argument(help="The student's handle.")],
    output_format: Annotated[str, typer.Option("--format", help="html or pdf.")],
    output: Annotated[Path, typer.Option("--output", help="The file to write.")],
    actor_handle: Annotated[str | None, typer.Option("--as", help=_AS_HELP)] = None,
    paper: Annotated[str, typer.Option("--paper", help="A4 or Letter.")] = "A4",
) -> None:
    """A student's profile and plan on one page, for a student-led conference (private
    answers only on the student's own card: --as them)."""
    from storage import Viewed

    from .conference_card import PAPERS, card_html, card_pdf
    from .errors import InputError

    if output_format not in ("html", "pdf"):
        raise InputError(f"--format {output_format!r}: use html or pdf")
    size = PAPERS.get(paper.strip().lower())
    if size is None:
        raise InputError(f"--paper {paper!r}: use A4 or Letter")
    bot = _open_app()
    student = bot.people.get(handle)
    actor = bot.actor(actor_handle)
    if output_format == "pdf":
        body: str | bytes = card_pdf(bot, student, actor=actor, paper=size)
    else:
        body = card_html(bot, student, actor=actor, paper=size)
    _check_writable(output)  # nothing recorded as shown that could not be written
    bot.audit.record(actor, Viewed.CARD, student)
    _write_output(output, body)
    typer.echo(f"wrote {student.display_name}'s card ({output_format}) to {output}")


@plan_app.command("show")
def plan_show(
    handle: str,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    actor_handle: Annotated[str | None, typer.Option("--as", help=_AS_HELP)] = None,
) -> None:
    """Show a learning plan: goals, action steps, check-ins."""
    from storage import Viewed

    from .roles import Action, require

    bot = _open_app()
    person = bot.people.get(handle)
    actor = bot.actor(actor_handle)
    require(actor, Action.VIEW_PLAN, person)
    seen = bot.audit.viewing(actor, Viewed.PLAN)
    if not as_json:
        typer.echo(bot.plan_card(person, seen=seen))
        return
    goals = bot.plans.plan(person.id, seen=seen)["goals"]
    keys = (
        "title",
        "why",
        "category",
        "status",
        "target_date",
        "support",
        "action_steps",
        "checkins",
    )
    _print_json({"person": person.to_json(), "goals": [{k: g.get(k) for k in keys} for g in goals]})


_MAX_ID = 2**63 - 1


def _id_of(missing: str) -> Any:
    """A callback for an ID argument: an id no SQL integer can hold names no record, said in
    one line (``missing``: what the store says of an id it does not have)."""

    def check(value: int) -> int:
        if not 1 <= value <= _MAX_ID:
            raise ProfilebotError(missing.format(id=value))
        return value

    return check


_SURVEY_ID = _id_of("no survey {id}")
_SCHEDULE_ID = _id_of("no schedule {id}: see `profilebot schedule list`")


@survey_app.command("send")
def survey_send(
    flow_id: Annotated[str, typer.Option("--flow", help="The flow to send.")],
    group: Annotated[str, typer.Option("--group", help="The class or group to send it to.")],
    handle: Annotated[str | None, typer.Option("--as", help=_AS_HELP)] = None,
    again: Annotated[
        bool, typer.Option("--again", help="Send it even though it went to them this week.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Start a flow for every student of a group (a teacher: only groups they teach)."""
    from .progress import Progress, summary
    from .surveys import Surveys

    bot = _open_app()
    surveys = Surveys(bot)
    actor = bot.actor(handle)
    with Progress(f"Sending {flow_id} to {group}") as bar:
        report = surveys.send(flow_id, group, actor=actor, again=again, progress=bar)
    assert report is not None  # only a chat message's redelivery sends nothing
    if as_json:
        _print_json(report.to_json())
    summary(report.line(), as_json=as_json)


@survey_app.command("status")
def survey_status(
    survey_id: Annotated[
        int, typer.Argument(metavar="ID", help="The survey's id.", callback=_SURVEY_ID)
    ],
    handle: Annotated[str | None, typer.Option("--as", help=_AS_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """How far a survey has got: conversations started, completed, expired, under way, and who
    cannot be reached."""
    from .surveys import Surveys

    bot = _open_app()
    status = Surveys(bot).status(survey_id, actor=bot.actor(handle))
    if as_json:
        _print_json(status.to_json())
    else:
        typer.echo(status.text())


@survey_app.command("remind")
def survey_remind(
    survey_id: Annotated[
        int, typer.Argument(metavar="ID", help="The survey's id.", callback=_SURVEY_ID)
    ],
    handle: Annotated[str | None, typer.Option("--as", help=_AS_HELP)] = None,
) -> None:
    """Remind the students who have not finished a survey, now (quiet hours wait for morning)."""
    from .surveys import Surveys

    bot = _open_app()
    typer.echo(Surveys(bot).remind(survey_id, actor=bot.actor(handle)).line())


@survey_app.command("results")
def survey_results(
    survey_id: Annotated[
        int, typer.Argument(metavar="ID", help="The survey's id.", callback=_SURVEY_ID)
    ],
    handle: Annotated[str | None, typer.Option("--as", help=_AS_HELP)] = None,
    output_format: Annotated[
        str, typer.Option("--format", help="text, json or csv (one row per respondent).")
    ] = "text",
    output: Annotated[
        Path | None, typer.Option("--output", help="Write to this file instead of stdout.")
    ] = None,
    group_by: Annotated[
        str | None,
        typer.Option("--group-by", help="Group students by their answer to this step."),
    ] = None,
) -> None:
    """A survey's results: counts per option, free-text answers, completion (anonymous
    surveys: no names)."""
    from storage import Viewed

    from .errors import InputError
    from .survey_results import ANONYMITY_THRESHOLD, survey_results

    if output_format not in ("text", "json", "csv"):
        raise InputError(f"--format {output_format!r}: use text, json or csv")
    bot = _open_app()
    actor = bot.actor(handle)
    results = survey_results(bot, survey_id, actor=actor, group_by=group_by)
    if output is not None:
        _check_writable(output)
    bot.audit.record(actor, Viewed.SURVEY_RESULTS, results.shown, survey=survey_id)
    if output_format == "csv":
        body = results.csv_text()
        if results.withheld:
            typer.echo(
                f"profilebot: survey {survey_id} is anonymous and has {results.responses} "
                f"of the {ANONYMITY_THRESHOLD} responses it needs: the CSV has no rows",
                err=True,
            )
    elif output_format == "json":
        import json

        body = json.dumps(results.to_json(), ensure_ascii=False, indent=2) + "\n"
    else:
        body = results.text() + "\n"
    if output is None:
        typer.echo(body, nl=False)
        return
    _write_output(output, body)
    typer.echo(f"wrote survey {survey_id}'s results ({output_format}) to {output}")


def _write_output(path: Path, body: str | bytes) -> None:
    """Write a command's ``--output`` file; a path that cannot be written is one line."""
    from .errors import InputError

    try:
        if isinstance(body, bytes):
            path.write_bytes(body)
        else:
            with path.open("w", encoding="utf-8", newline="") as f:
                f.write(body)
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from None


@app.command("summary")
def summary_command(
    advisor: Annotated[str, typer.Option("--advisor", help="Whose advisees (a handle).")],
    handle: Annotated[str | None, typer.Option("--as", help=_AS_HELP)] = None,
    week: Annotated[
        str | None,
        typer.Option("--week", help="An ISO week, like 2026-W49 (default: the current one)."),
    ] = None,
    chosen: Annotated[
        str | None,
        typer.Option("--format", help="text (default), md, html or json.", metavar="FORMAT"),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", help="Write it to this file, not the screen.")
    ] = None,
    chart: Annotated[
        Path | None, typer.Option("--chart", help="Also draw the chart into this PNG file.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The same as --format json.")] = False,
) -> None:
    """An advisor's weekly summary: who needs them and why, then everyone else."""
    from storage import Viewed

    from .errors import InputError
    from .summaries import build_summary
    from .summary_render import FORMATS, render_summary

    if as_json and chosen not in (None, "json"):
        raise InputError(f"--json and --format {chosen!r} disagree: give one of them")
    fmt = "json" if as_json else chosen or "text"
    if fmt not in FORMATS:
        raise InputError(f"--format {fmt!r}: use one of {', '.join(FORMATS)}")
    bot = _open_app()
    actor = bot.actor(handle)
    summary = build_summary(bot, advisor, week, actor=actor)
    png = None
    if chart is not None:
        from .charts import summary_chart

        png = summary_chart(summary)
    text = render_summary(summary, fmt, png)
    for path in (chart, output):
        if path is not None:
            _check_writable(path)
    bot.audit.record(
        actor,
        Viewed.SUMMARY,
        [s.person for s in summary.students],
        advisor=summary.advisor.id,
        week=summary.week,
    )
    if chart is not None and png is not None:
        _write_output(chart, png)
    if output is None:
        typer.echo(text)
        return
    _write_output(output, text if text.endswith("\n") else text + "\n")
    also = f" and its chart to {chart}" if chart is not None else ""
    typer.echo(
        f"wrote {summary.advisor.display_name}'s summary of {summary.week} ({fmt}) "
        f"to {output}{also}"
    )


@app.command("audit")
def audit_command(
    handle: Annotated[str, typer.Argument(help="Whose data (a handle).")],
    actor_handle: Annotated[str | None, typer.Option("--as", help=_AS_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Who was shown a person's data, what and when, oldest first (admins only)."""
    from .roles import Action, require

    bot = _open_app()
    person = bot.people.get(handle)
    require(bot.actor(actor_handle), Action.VIEW_AUDIT, person)
    records = bot.audit.views(person)
    if as_json:
        _print_json([r.to_json() for r in records])
        return
    if not records:
        typer.echo(f"nobody else has been shown {person.display_name}'s data")
        return
    for record in records:
        if record.via == "safety":  # a safety alert: the counselor it was sent to
            viewer = record.viewer or "nobody: no counselor or admin could be messaged"
        else:
            viewer = record.viewer or "the command line's administrator"
        via = " (chat)" if record.via == "chat" else ""
        typer.echo(f"{record.at:%Y-%m-%d %H:%M} UTC  {record.action:<22} {viewer}{via}")


def _check_writable(path: Path) -> None:
    """Refuse, in one line, a file that cannot be written, before a command writes any of its
    files (so a failure leaves none half done)."""
    import errno
    import os

    from .errors import InputError

    if path.is_dir():
        code = errno.EISDIR
    elif not path.parent.is_dir():
        code = errno.ENOENT
    elif not os.access(path if path.exists() else path.parent, os.W_OK):
        code = errno.EACCES
    else:
        return
    raise InputError(f"cannot write {path}: {os.strerror(code)}")


@inbound_app.command("failed")
def inbound_failed(
    as_json: Annotated[bool, typer.Option("--json")] = False,
    everything: Annotated[
        bool, typer.Option("--all", help="Also list the messages replayed since.")
    ] = False,
) -> None:
    """List parked messages: when, where from, whose, and the error (never their text)."""
    bot = _open_app()
    records = bot.failed.parked(include_replayed=everything)
    if as_json:
        _print_json([r.to_json() for r in records])
        return
    if not records:
        typer.echo("no parked messages" if not everything else "no messages were ever parked")
        return
    for record in records:
        typer.echo(_failed_line(record))


def _failed_line(record: FailedInboundRecord) -> str:
    who = record.person_handle or "(unknown person)"
    status = "" if record.status == "parked" else f", {record.status}"
    return (
        f"{record.id:>5}  {record.parked_at:%Y-%m-%d %H:%M} UTC  {record.letter.platform:<8} "
        f"{who:<20} {record.error} after {record.attempts} attempts{status}"
        f"  [event {record.letter.event_key or '-'}]"
    )


@safety_app.command("list")
def safety_list(
    handle: Annotated[str | None, typer.Option("--as", help=_AS_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, help="The newest this many.")] = 100,
) -> None:
    """Safety alerts, newest first: the student, when, whom the notice went to and whether it
    reached them (never what the student wrote: that went to the counselors' chat only)."""
    from storage import SafetyStore

    from .roles import Action, require

    bot = _open_app()
    actor = bot.actor(handle)
    if actor is not None:
        require(actor, Action.VIEW_SAFETY_ALERTS, actor.person)
    alerts = SafetyStore(bot.db).alerts(limit=limit)
    if as_json:
        _print_json([alert.to_json() for alert in alerts])
        return
    if not alerts:
        typer.echo("no safety alerts")
    for alert in alerts:
        typer.echo(_alert_line(alert))


def _alert_line(alert: SafetyAlert) -> str:
    reached = (
        ", ".join(f"{n.handle} ({n.status})" for n in alert.notified)
        if alert.notified
        else "NOBODY: no counselor or admin can be messaged"
    )
    where = f"{alert.flow}/{alert.step}" if alert.flow else "-"
    return (
        f"{alert.id:>5}  {alert.at:%Y-%m-%d %H:%M} UTC  {alert.student:<20} "
        f"{', '.join(alert.categories):<20} {where:<28} -> {reached}"
    )


@inbound_app.command("retry")
def inbound_retry(
    failed_id: Annotated[
        int,
        typer.Argument(
            metavar="ID",
            help="The id `inbound failed` shows.",
            callback=_id_of("no parked message with id {id}"),
        ),
    ],
) -> None:
    """Replay a parked message once (after the cause is fixed); its replies are queued."""
    from .adapters.console import PLATFORM as CONSOLE
    from .adapters.console import replay_console
    from .frontdesk import desk_for

    bot = _open_app()
    platform = bot.failed.get(failed_id).letter.platform
    if platform == CONSOLE:
        replay_console(bot, failed_id)
        stale = False
    else:
        _, desk_outcome = desk_for(bot, platform).replay(failed_id)
        stale = desk_outcome.stale
    if stale:
        typer.echo(
            f"replayed message {failed_id}: it answered a question that is closed now, "
            "so nothing changed"
        )
        return
    typer.echo(
        f"replayed message {failed_id}: its turn went through; replies are queued for {platform}"
    )


@schedule_app.command("add")
def schedule_add(
    flow_id: Annotated[
        str,
        typer.Option(
            "--flow",
            help="The flow to start, e.g. weekly_checkin; advisor_summary: advisors' summaries.",
        ),
    ],
    everyone: Annotated[bool, typer.Option("--everyone", help="Every student.")] = False,
    groups: Annotated[
        list[str] | None, typer.Option("--group", help="The students of a group (repeatable).")
    ] = None,
    people: Annotated[
        list[str] | None, typer.Option("--person", help="A person, by handle (repeatable).")
    ] = None,
    on: Annotated[
        str | None, typer.Option("--on", help="Days, comma-separated: mon,tue,...,sun.")
    ] = None,
    at: Annotated[str | None, typer.Option("--at", help="HH:MM, local to each student.")] = None,
    rrule: Annotated[
        str | None,
        typer.Option(
            "--rrule", help="An RFC 5545 rule, e.g. FREQ=WEEKLY;INTERVAL=2;BYDAY=WE;BYHOUR=10"
        ),
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="A name to know it by.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Start a flow on a schedule, at each student's own local time."""
    from storage import ADVISOR_SUMMARY, Audience, Recurrence, weekly_rule

    from .errors import InputError

    audience = _audience(everyone, groups or [], people or [])
    if rrule is not None and (on is not None or at is not None):
        raise InputError("give --on and --at, or --rrule, not both")
    if rrule is None:
        if on is None or at is None:
            raise InputError(
                "say when: --on DAYS --at HH:MM (like --on wed --at 10:00), or --rrule"
            )
        rule = weekly_rule(on, at)
    else:
        rule = Recurrence.normalise(rrule)
    bot = _open_app()
    _seed_summaries(bot)
    flow_id = flow_id if flow_id == ADVISOR_SUMMARY else bot.registry.get(flow_id).id
    record = bot.schedules.add(
        flow_id,
        rule,
        Audience(audience[0], tuple(audience[1]), tuple(audience[2])),
        now=bot.clock.now(),
        default_zone=bot.settings.default_timezone,
        name=name,
    )
    if as_json:
        _print_json({"id": record.id})
        return
    count = bot.schedules.recipients(record.id)
    following = bot.schedules.next_occurrences().get(record.id)
    first = f"; first: {following.replace('T', ' ')} local time" if following else ""
    typer.echo(
        f"added schedule {record.id}: {record.flow_id} for {_audience_text(record)}, "
        f"{record.rule} ({count} {'person' if count == 1 else 'people'}{first})"
    )


def _audience(
    everyone: bool, groups: list[str], people: list[str]
) -> tuple[bool, list[str], list[str]]:
    from .errors import InputError

    if everyone and (groups or people):
        raise InputError("--everyone already means every student: leave out --group and --person")
    if not (everyone or groups or people):
        raise InputError("say for whom: --everyone, --group G or --person HANDLE")
    cleaned = [" ".join(g.split()) for g in groups]
    return everyone, [g for g in cleaned if g], [h.strip() for h in people if h.strip()]


@schedule_app.command("list")
def schedule_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Show every schedule: its flow, audience, rule and next occurrence."""
    bot = _open_app()
    _seed_summaries(bot)
    records = bot.schedules.schedules()
    following = bot.schedules.next_occurrences()
    if as_json:
        _print_json([{**r.to_json(), "next": following.get(r.id)} for r in records])
        return
    if not records:
        typer.echo("no schedules yet: add one with `profilebot schedule add`")
        return
    for record in records:
        typer.echo(_schedule_line(record, following.get(record.id)))


def _seed_summaries(bot: App) -> None:
    """The default advisor-summary schedule, added once there is an advisor (as the
    running scheduler does), so that it is listed and can be changed before the bot runs."""
    bot.schedules.seed_summary_default(
        now=bot.clock.now(), default_zone=bot.settings.default_timezone
    )


def _audience_text(record: ScheduleRecord) -> str:
    from storage import ADVISOR_SUMMARY

    if record.flow_id == ADVISOR_SUMMARY and record.audience.everyone:
        return "every advisor"
    return str(record.audience)


def _schedule_line(record: ScheduleRecord, following: str | None) -> str:
    named = f"  [{record.name}]" if record.name else ""
    upcoming = f"next {following.replace('T', ' ')}" if following else "nothing upcoming"
    return (
        f"{record.id:>4}  {record.status:<6}  {record.flow_id:<16} {_audience_text(record)}  "
        f"{record.rule}  ({upcoming}){named}"
    )


@schedule_app.command("remove")
def schedule_remove(
    schedule_id: Annotated[int, typer.Argument(metavar="ID", callback=_SCHEDULE_ID)],
) -> None:
    """Delete a schedule (conversations it started go on)."""
    record = _open_app().schedules.remove(schedule_id)
    typer.echo(f"removed schedule {record.id} ({record.flow_id} for {record.audience})")


@schedule_app.command("pause")
def schedule_pause(
    schedule_id: Annotated[int, typer.Argument(metavar="ID", callback=_SCHEDULE_ID)],
) -> None:
    """Start nothing of a schedule until it is resumed."""
    record = _open_app().schedules.pause(schedule_id)
    typer.echo(f"paused schedule {record.id} ({record.flow_id} for {record.audience})")


@schedule_app.command("resume")
def schedule_resume(
    schedule_id: Annotated[int, typer.Argument(metavar="ID", callback=_SCHEDULE_ID)],
) -> None:
    """Run a paused schedule again, from its next occurrence (nothing missed is caught up)."""
    bot = _open_app()
    record = bot.schedules.resume(
        schedule_id, now=bot.clock.now(), default_zone=bot.settings.default_timezone
    )
    typer.echo(f"resumed schedule {record.id} ({record.flow_id} for {record.audience})")


@schedule_app.command("run-due")
def schedule_run_due(
    now: Annotated[
        str | None,
        typer.Option(
            "--now",
            help="Act as if it were this instant (ISO 8601; without an offset, in "
            "DEFAULT_TIMEZONE). Default: now.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Do what the running bot does at this instant: start, remind, expire (once)."""
    from .clock import FrozenClock
    from .config import load_settings
    from .progress import Progress, summary
    from .scheduler import Scheduler

    clock = None if now is None else FrozenClock(_instant(now, load_settings().default_timezone))
    bot = _open_app(flows=True, clock=clock)
    with Progress("Running what is due") as bar:
        report = Scheduler(bot).tick(bot.clock.now(), progress=bar.completed)
    if as_json:
        _print_json(report.to_json())
    summary(f"{report.now.isoformat()}: {report.summary()}", as_json=as_json)


def _instant(text: str, default_zone: str) -> datetime:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from .errors import InputError

    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InputError(
            f"--now {text!r} is not an ISO 8601 time: use like 2026-12-09T10:05 or "
            "2026-12-09T10:05:00+01:00"
        ) from None
    return moment.replace(tzinfo=ZoneInfo(default_zone)) if moment.tzinfo is None else moment


@calendar_app.command("add-break")
def calendar_add_break(
    first: Annotated[str, typer.Option("--from", help="First day without school (YYYY-MM-DD).")],
    last: Annotated[str, typer.Option("--to", help="Last day without school, inclusive.")],
    name: Annotated[str, typer.Option("--name", help="What it is called.")] = "Break",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Add days without school: nothing scheduled starts on them; reminders wait."""
    from storage import SchoolBreak

    record = _open_app().schedules.add_break(
        SchoolBreak(name, _day("--from", first), _day("--to", last))
    )
    if as_json:
        _print_json(record.to_json())
        return
    typer.echo(f"added break {record.name!r}: {record.starts_on} to {record.ends_on}")


def _day(option: str, text: str) -> Any:
    from datetime import date

    from .errors import InputError

    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InputError(f"{option} {text!r} is not a date: use YYYY-MM-DD") from None


@calendar_app.command("import")
def calendar_import(
    file: Annotated[Path, typer.Argument(metavar="FILE.ics", help="The school's calendar.")],
) -> None:
    """Import a school's iCalendar file: its all-day events become breaks (again: no change)."""
    from .school_calendar import read_breaks

    found = read_breaks(file)
    result = _open_app().schedules.import_breaks(found.breaks)
    left_out = []
    if found.timed:
        left_out.append(f"{found.timed} timed event{'s' if found.timed != 1 else ''}")
    if found.recurring:
        left_out.append(f"{found.recurring} recurring event{'s' if found.recurring != 1 else ''}")
    note = f"; left out {' and '.join(left_out)}" if left_out else ""
    total = len(found.breaks)
    typer.echo(
        f"imported {file.name}: {total} break{'s' if total != 1 else ''} ({result.added} new, "
        f"{result.updated} updated, {result.unchanged} unchanged){note}"
    )


@calendar_app.command("list")
def calendar_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Show the days without school."""
    breaks = _open_app().schedules.breaks()
    if as_json:
        _print_json([b.to_json() for b in breaks])
        return
    if not breaks:
        typer.echo("no breaks yet: add them with `profilebot calendar add-break` or `import`")
        return
    for record in breaks:
        typer.echo(f"{record.starts_on} – {record.ends_on}  {record.name}")


_BY_HELP = "The parent's or guardian's name, as they gave it."


@consent_app.command("grant")
def consent_grant(
    handle: Annotated[str, typer.Argument(help="The student's handle.")],
    by: Annotated[str, typer.Option("--by", help=_BY_HELP)],
    note: Annotated[
        str | None, typer.Option("--note", help="How it was given, a form's id...")
    ] = None,
    actor_handle: Annotated[str | None, typer.Option("--as", help=_AS_HELP)] = None,
) -> None:
    """Record a parent's consent: the student's sensitive questions are asked from now on."""
    _record_consent(handle, granted=True, by=by, note=note, actor_handle=actor_handle)


@consent_app.command("revoke")
def consent_revoke(
    handle: Annotated[str, typer.Argument(help="The student's handle.")],
    by: Annotated[str, typer.Option("--by", help=_BY_HELP)],
    note: Annotated[
        str | None, typer.Option("--note", help="How it was given, a form's id...")
    ] = None,
    actor_handle: Annotated[str | None, typer.Option("--as", help=_AS_HELP)] = None,
) -> None:
    """Record that a parent withdrew consent: sensitive questions are skipped from now on (the
    grant stays in the history)."""
    _record_consent(handle, granted=False, by=by, note=note, actor_handle=actor_handle)


def _record_consent(
    handle: str, *, granted: bool, by: str, note: str | None, actor_handle: str | None
) -> None:
    from .roles import Action, require

    bot = _open_app()
    student = bot.people.get(handle)
    require(bot.actor(actor_handle), Action.MANAGE_CONSENT, student)
    event = bot.consent.record(student.handle, granted=granted, by=by, note=note)
    what = "granted" if granted else "revoked"
    then = "will be asked" if granted else "will be skipped"
    typer.echo(
        f"recorded: {event.by} {what} consent for {student.handle} at {event.at:%Y-%m-%d %H:%M} "
        f"UTC; {student.display_name}'s sensitive questions {then}"
    )


@consent_app.command("list")
def consent_list(
    actor_handle: Annotated[str | None, typer.Option("--as", help=_AS_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Every student's consent as it stands (granted, revoked or none), and who is under 13."""
    from .roles import Action, require

    bot = _open_app()
    actor = bot.actor(actor_handle)
    if actor is not None:
        require(actor, Action.MANAGE_CONSENT, actor.person)
    statuses = bot.consent.statuses(today=_today(bot))
    if as_json:
        _print_json([s.to_json() for s in statuses])
        return
    if not statuses:
        typer.echo("no students yet")
        return
    for status in statuses:
        decided = (
            f"by {status.by}, {status.at:%Y-%m-%d %H:%M} UTC" if status.at is not None else "—"
        )
        under_13 = {True: "yes", False: "no", None: "unknown"}[status.under_13]
        typer.echo(f"{status.handle:<20} {status.consent:<8} {decided}  under 13: {under_13}")


@consent_app.command("under-13")
def consent_under_13(
    handle: Annotated[str, typer.Argument(help="The student's handle.")],
    yes: Annotated[bool, typer.Option("--yes", help="The student is under 13.")] = False,
    no: Annotated[bool, typer.Option("--no", help="The student is 13 or older.")] = False,
    unset: Annotated[
        bool, typer.Option("--unset", help="Forget the hand-set flag (a birth date decides).")
    ] = False,
    actor_handle: Annotated[str | None, typer.Option("--as", help=_AS_HELP)] = None,
) -> None:
    """Set by hand whether a student is under 13 (it overrides a birth date)."""
    from .errors import InputError
    from .roles import Action, require

    if yes + no + unset != 1:
        raise InputError("say one of --yes (under 13), --no (13 or older) or --unset")
    bot = _open_app()
    student = bot.people.get(handle)
    require(bot.actor(actor_handle), Action.MANAGE_CONSENT, student)
    bot.consent.set_under_13(student.handle, None if unset else yes)
    status = bot.consent.status(student.handle, today=_today(bot))
    shown = {True: "under 13", False: "13 or older", None: "unknown (no birth date)"}
    typer.echo(f"{student.handle} is now {shown[status.under_13]}")


def _today(bot: App) -> date:
    """Today in the school's time zone (DEFAULT_TIMEZONE): what an age is counted on."""
    from zoneinfo import ZoneInfo

    return bot.clock.now().astimezone(ZoneInfo(bot.settings.default_timezone)).date()


_NOT_SCRUBBED = (
    "profilebot: done, but another process was reading the database, so its WAL file may "
    "still hold deleted text: run `profilebot db prune` again when the bot is idle"
)


@app.command("export")
def export_command(
    handle: Annotated[str, typer.Argument(help="The person's handle.")],
    output: Annotated[
        Path, typer.Option("--output", help="The JSON file; the page goes beside it (.html).")
    ],
    actor_handle: Annotated[str | None, typer.Option("--as", help=_AS_HELP)] = None,
) -> None:
    """Everything held about a person, private answers included, as JSON and a readable page
    (their right of access: see docs/data-rights.md)."""
    from .data_rights import export_person

    bot = _open_app()
    files = export_person(bot, handle, output, actor=bot.actor(actor_handle))
    typer.echo(
        f"wrote everything held about {files.person.display_name} ({files.rows} records) "
        f"to {files.json_path} and {files.html_path}"
    )


@app.command("erase")
def erase_command(
    handle: Annotated[str, typer.Argument(help="The person's handle.")],
    yes: Annotated[bool, typer.Option("--yes", help="Really erase: there is no undo.")] = False,
    actor_handle: Annotated[str | None, typer.Option("--as", help=_AS_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Delete everything held about a person, for good; a receipt without content stays
    (counts per table, when, by whom)."""
    from .data_rights import erase_person
    from .errors import InputError

    if not yes:
        raise InputError(f"erasing {handle} deletes all of their data for good: add --yes to do it")
    bot = _open_app()
    receipt = erase_person(bot, handle, actor=bot.actor(actor_handle))
    if not receipt.scrubbed:
        typer.echo(_NOT_SCRUBBED, err=True)
    if as_json:
        _print_json(receipt.to_json())
        return
    total = sum(receipt.counts.values())
    typer.echo(
        f"erased {receipt.person}: {total} records deleted at {receipt.erased_at:%Y-%m-%d %H:%M} "
        f"UTC by {receipt.by}; the receipt keeps only these counts"
    )


@db_app.command("prune")
def db_prune(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Delete transcripts and sent messages older than RETENTION_DAYS (profiles and plans
    stay); the running bot does it once a day."""
    bot = _open_app()
    report = bot.person_data.prune(bot.clock.now(), keep=bot.settings.retention)
    if not report.scrubbed:
        typer.echo(_NOT_SCRUBBED, err=True)
    if as_json:
        _print_json(report.to_json())
        return
    details = ", ".join(f"{n} {table}" for table, n in report.counts.items() if n)
    typer.echo(
        f"pruned {report.total} records older than {report.cutoff:%Y-%m-%d} "
        f"({bot.settings.retention_days} days){': ' + details if details else ''}"
    )


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the database schema."""
    bot = _open_app(upgrade=False)
    bot.db.upgrade()
    typer.echo(f"database is up to date ({bot.db.safe_url})")


def main() -> None:
    """Entry point: one clear line and a non-zero exit for every expected failure."""
    global _to_close
    _to_close = []
    try:
        app()
    except ProfilebotError as exc:
        typer.echo(f"profilebot: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    finally:
        _finish()


def _finish() -> None:
    """Close the databases commands opened (a SQLite file's WAL goes back into it), then
    leave the process's objects to the operating system (`gc.freeze`): collecting all that
    was imported, one by one at exit, would take longer than most commands."""
    for database in _to_close or ():
        database.dispose()
    gc.freeze()


if __name__ == "__main__":
    main()
