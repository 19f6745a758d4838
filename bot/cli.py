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
    from storage import Database, FailedInboundRecord

    from .app import App

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
inbound_app = typer.Typer(
    help="Messages whose turn kept failing, set aside (parked).", no_args_is_help=True
)
app.add_typer(flows_app, name="flows")
app.add_typer(people_app, name="people")
app.add_typer(profile_app, name="profile")
app.add_typer(plan_app, name="plan")
app.add_typer(db_app, name="db")
app.add_typer(inbound_app, name="inbound")


# The databases commands opened in a process `main` runs, which closes them at the end; None
# when the commands are invoked in-process (tests), where they close as usual.
_to_close: list[Database] | None = None


def _open_app(*, upgrade: bool = True, flows: bool = False) -> App:
    """The app a command works with: settings, the database (migrated when behind) and the
    flows (read now with ``flows=True``, else when one is first used)."""
    from .app import App

    bot = App.create(upgrade=upgrade, read_flows=flows)
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
    role: Annotated[str, typer.Option("--role", help="student, advisor, teacher or admin")],
    handle: Annotated[str | None, typer.Option("--handle")] = None,
    advisor: Annotated[str | None, typer.Option("--advisor", help="The advisor's handle.")] = None,
    group: Annotated[str | None, typer.Option("--group")] = None,
    timezone: Annotated[str | None, typer.Option("--timezone")] = None,
    email: Annotated[
        str | None, typer.Option("--email", help="Slack users with this email join as them.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Add a person to the roster, with a single-use invite code to link their chat account."""
    bot = _open_app()
    person = bot.people.add(
        name, role, handle=handle, advisor=advisor, group=group, timezone=timezone, email=email
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


@profile_app.command("show")
def profile_show(
    handle: str,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    include_private: Annotated[
        bool, typer.Option("--include-private", help="Also show fields the student keeps private.")
    ] = False,
) -> None:
    """Show a learner profile (private fields hidden unless asked)."""
    bot = _open_app()
    person = bot.people.get(handle)
    profile = bot.profiles.current(person.id, include_private=include_private)
    if as_json:
        _print_json({"person": person.to_json(), "profile": profile})
        return
    from .cards import option_labels, profile_card

    private = bot.private_fields() if include_private else set()
    labels = option_labels(bot.registry.flows())
    typer.echo(profile_card(person.display_name, profile, labels=labels, private_fields=private))


@plan_app.command("show")
def plan_show(handle: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Show a learning plan: goals, action steps, check-ins."""
    bot = _open_app()
    person = bot.people.get(handle)
    goals = bot.plans.plan(person.id)["goals"]
    if as_json:
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
        _print_json(
            {"person": person.to_json(), "goals": [{k: g.get(k) for k in keys} for g in goals]}
        )
        return
    typer.echo(bot.plan_card(person))


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


@inbound_app.command("retry")
def inbound_retry(
    failed_id: Annotated[int, typer.Argument(metavar="ID", help="The id `inbound failed` shows.")],
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
