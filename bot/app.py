"""The composition root: settings → database → flows → services, built once per process."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from dialogues import Flow, FlowRegistry, SaveKind, Step
from storage import (
    AuditStore,
    ConsentStore,
    Database,
    FailedInboundStore,
    InviteStore,
    OutboxStore,
    PeopleStore,
    PersonDataStore,
    PersonRecord,
    PlanStore,
    ProfileStore,
    RosterStore,
    ScheduleStore,
    Viewing,
)

from .audit import Audit
from .cards import option_labels, plan_card, profile_card
from .clock import Clock, SystemClock
from .config import Settings, load_settings
from .roles import Actor
from .safety import SafetyWatch
from .service import ConversationService

__all__ = ["App"]


@dataclass(frozen=True, slots=True)
class App:
    """Everything a command or an adapter needs, wired together."""

    settings: Settings
    clock: Clock
    db: Database
    registry: FlowRegistry
    service: ConversationService
    people: PeopleStore
    profiles: ProfileStore
    plans: PlanStore
    outbox: OutboxStore
    invites: InviteStore
    failed: FailedInboundStore
    roster: RosterStore
    schedules: ScheduleStore
    audit: Audit
    person_data: PersonDataStore
    consent: ConsentStore

    @classmethod
    def create(
        cls,
        settings: Settings | None = None,
        *,
        upgrade: bool = True,
        read_flows: bool = True,
        clock: Clock | None = None,
    ) -> App:
        """Build the app; configuration and connection errors surface here, not later.

        ``read_flows=False`` leaves the flow files until something uses a flow: a command
        that needs none (the roster, a profile as JSON) then reads none, and a problem in
        them surfaces where a flow is first used. ``clock`` is the one every part asks the
        time (the machine's by default).
        """
        clock = clock or SystemClock()
        settings = settings or load_settings()
        logging.basicConfig(level=settings.log_level, format="%(levelname)s %(name)s: %(message)s")
        registry = FlowRegistry(settings.flow_dirs, defer=not read_flows)
        db = Database(settings.database_url)
        db.check()
        if upgrade:
            db.ensure_schema()
        return cls(
            settings=settings,
            clock=clock,
            db=db,
            registry=registry,
            service=ConversationService(
                db,
                registry,
                default_timezone=settings.default_timezone,
                clock=clock,
                safety=SafetyWatch(settings.safety_phrases_file, settings.safety_message),
            ),
            people=PeopleStore(db),
            profiles=ProfileStore(db),
            plans=PlanStore(db),
            outbox=OutboxStore(db),
            invites=InviteStore(db),
            failed=FailedInboundStore(db),
            roster=RosterStore(db),
            schedules=ScheduleStore(db),
            audit=Audit(AuditStore(db), clock),
            person_data=PersonDataStore(db),
            consent=ConsentStore(db, now=clock.now),
        )

    def load_flow(self, flow_id: str | None = None, path: Path | None = None) -> Flow:
        """A flow by id or from a file (which then becomes known by its id)."""
        if path is not None:
            flow = self.registry.load_file(path)
            self.registry.add(flow)
            return flow
        return self.registry.get(flow_id or "this_is_me")

    def actor(self, handle: str | None) -> Actor | None:
        """Who acts, for ``bot.roles``: the person ``handle`` (``--as``, or whoever sent a chat
        command), or None for the command line's administrator."""
        return None if handle is None else self.actor_of(self.people.get(handle))

    def actor_of(self, person: PersonRecord) -> Actor:
        pupils = self.roster.pupils_of(person.id) if person.has_role("teacher") else frozenset()
        return Actor(
            person,
            self.roster.groups_of(person.id),
            self.roster.advisees_of(person.id),
            pupils,
        )

    def profile_card(self, person: PersonRecord) -> str:
        profile = self.profiles.current(person.id, include_private=True)
        return profile_card(
            str(profile.get("preferred_name") or person.display_name),
            profile,
            labels=option_labels(self.registry.flows()),
            private_fields=self.private_fields(),
        )

    def plan_card(
        self,
        person: PersonRecord,
        *,
        no_goals_hint: str | None = None,
        seen: Viewing | None = None,
    ) -> str:
        """The learning plan card; ``no_goals_hint`` is added when there are no goals yet;
        ``seen``: the view to audit."""
        goals = self.plans.plan(person.id, seen=seen)["goals"]
        card = plan_card(person.display_name, goals, labels=option_labels(self.registry.flows()))
        return f"{card}\n\n{no_goals_hint}" if no_goals_hint and not goals else card

    def card_after(self, flow: Flow, person: PersonRecord) -> str | None:
        """The card a student sees when ``flow`` ends: what that flow filled in."""
        kinds = {n.save.kind for n in flow.iter_steps() if isinstance(n, Step) and n.save}
        if SaveKind.PROFILE in kinds:
            return self.profile_card(person)
        if kinds & {
            SaveKind.GOAL_NEW,
            SaveKind.GOAL,
            SaveKind.CHECKIN_GOAL,
            SaveKind.GOAL_ACTION_STEPS,
        }:
            return self.plan_card(person)
        return None

    def private_fields(self) -> set[str]:
        """Profile fields some flow marks private (hidden from everyone but the student)."""
        return {
            ".".join(n.save.path)
            for f in self.registry.flows()
            for n in f.iter_steps()
            if isinstance(n, Step) and n.private and n.save is not None
        }
