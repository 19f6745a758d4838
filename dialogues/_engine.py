"""The dialogue engine: one inbound message in, replies + effects + the next state out.

The engine is pure: it reads the conversation state it is given, asks `TurnContext` for the
profile or plan only when a template needs them, and returns a `TurnResult` that storage
persists in the turn's transaction. It never keeps a conversation in memory.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import date
from typing import Any

from ._answers import (
    Accepted,
    ListProgress,
    Rejected,
    display_answer,
    parse_answer,
    parse_command,
)
from ._context import WELCOME_BACK, TurnContext
from ._effects import (
    AddActionSteps,
    AnswerRecord,
    Effect,
    ExistingGoal,
    FlagStep,
    GoalRef,
    NewGoal,
    SaveArtifact,
    SetCheckin,
    SetCheckinGoal,
    SetGoal,
    SetOptOut,
    SetProfile,
    SetReflection,
    TurnResult,
    Withdraw,
)
from ._machine import START, CompiledFlow, compile_flow
from ._messages import Attachment, Command, Inbound, InboundKind, Option, Reply, ReplyKind, Scale
from ._schema import END, Flow, Loop, SaveKind, Step, StepType
from ._state import ConversationState, ConversationStatus, Frame, LoopState
from ._templates import LazyMapping

__all__ = ["Engine", "TurnContext"]

log = logging.getLogger("profilebot.dialogues")

_UNKNOWN_COMMAND = re.compile(r"^\s*(/[A-Za-z][\w-]{0,30})(?:@\w+)?\s*$")
_MAX_HOPS = 1000  # steps passed without asking before a flow is judged to loop forever

_KIND = {
    StepType.CHOICE: ReplyKind.CHOICE,
    StepType.MULTI_CHOICE: ReplyKind.MULTI_CHOICE,
    StepType.SCALE: ReplyKind.SCALE,
    StepType.YES_NO: ReplyKind.YES_NO,
    StepType.LIST: ReplyKind.LIST,
    StepType.FILE: ReplyKind.FILE,
}

HELP_TEXT = (
    "Answer each question by tapping a button or typing. You can also type:\n"
    "/back — change your previous answer\n"
    "/skip — skip a question marked optional\n"
    "/pause — stop for now and carry on later\n"
    "/restart — start this conversation again\n"
    "/stop — no more messages until you write again\n"
    "/help — this message"
)


class Engine:
    """Runs one flow. Cheap to create: the compiled machine is shared per flow content."""

    __slots__ = ("_compiled",)

    def __init__(self, flow: Flow) -> None:
        self._compiled = compile_flow(flow)

    @property
    def flow(self) -> Flow:
        return self._compiled.flow

    def start(self, ctx: TurnContext) -> TurnResult:
        """A new conversation: the intro, then everything up to the first question."""
        turn = _Turn(self._compiled, ConversationState(step=START), ctx)
        turn.begin()
        return turn.result

    def resume(
        self, state: ConversationState, ctx: TurnContext, greeting: str = WELCOME_BACK
    ) -> TurnResult:
        """Ask the waiting question again (a new session, or a reminder), after ``greeting``."""
        turn = _Turn(self._compiled, state, ctx)
        turn.resume(greeting)
        return turn.result

    def handle(self, state: ConversationState, inbound: Inbound, ctx: TurnContext) -> TurnResult:
        """Apply one inbound message to ``state`` (which is updated in place and returned)."""
        turn = _Turn(self._compiled, state, ctx)
        turn.handle(inbound)
        return turn.result


class _Turn:
    """The work of one turn; lives only as long as the call."""

    def __init__(self, compiled: CompiledFlow, state: ConversationState, ctx: TurnContext) -> None:
        self.c = compiled
        self.state = state
        self.ctx = ctx
        self.result = TurnResult(state=state)
        self._profile = LazyMapping(ctx.load_profile)
        self._plan = LazyMapping(ctx.load_plan)
        self._consent: bool | None = None
        self._sensitive_now: frozenset[str] | None = None

    # -- entry points -------------------------------------------------------------------

    def begin(self) -> None:
        self.say("flow.intro")
        self.advance("answered", None)

    def resume(self, greeting: str) -> None:
        if self.state.finished and self.state.status is not ConversationStatus.STOPPED:
            return
        self._reopen()
        if self.state.step == START:
            self.begin()
        elif self._current_step() is None:
            self._recover()
        else:
            self.ask(greeting)

    def handle(self, inbound: Inbound) -> None:
        state = self.state
        if not state.status.is_open:
            self.reply("This conversation has ended. Thanks!")
            return
        command = parse_command(inbound, self.ctx.language)
        if state.status is not ConversationStatus.ACTIVE:
            woke_by_text = inbound.kind is InboundKind.TEXT and command is None
            self._reopen()
            if woke_by_text or command in (Command.PAUSE, Command.STOP):
                self.ask(WELCOME_BACK)
                return
        if state.step == START:
            self.begin()
            return
        step = self._current_step()
        if step is None:
            self._recover()
            return
        if not self.permitted(step):  # consent was revoked while the question waited
            self.bypass(step)
            return
        if command is not None and not (command is Command.DONE and step.type is StepType.LIST):
            self.command(command, step)
            return
        unknown = _UNKNOWN_COMMAND.match(inbound.text) if inbound.kind is InboundKind.TEXT else None
        if unknown:
            self.ask(f"Sorry, I don't know {unknown.group(1)}. Type /help to see what you can do.")
            return
        self.answer(step, inbound)

    # -- answering ---------------------------------------------------------------------

    def answer(self, step: Step, inbound: Inbound) -> None:
        parsed = parse_answer(
            step,
            inbound,
            options=self.options(step),
            today=self.ctx.today,
            language=self.ctx.language,
            collected=self.state.pending,
        )
        if isinstance(parsed, Accepted):
            self.accept(step, parsed, _raw(inbound))
        elif isinstance(parsed, ListProgress):
            self.state.pending = list(parsed.items)
            count = len(parsed.items)
            self.reply(f"Got it ({count} so far). Add another, or type done.", kind=ReplyKind.LIST)
        else:
            self.reject(step, parsed)

    def accept(self, step: Step, parsed: Accepted, raw: str) -> None:
        state = self.state
        origin = self.origin(step.id)
        self.result.answers.append(
            AnswerRecord(step.id, self.iteration(step.id), parsed.value, raw, "answered")
        )
        self.result.effects.extend(self.save_effects(step, parsed.value, origin))
        self.result.accepted = (step.id, parsed.display)
        state.answers[step.id] = parsed.value
        state.retries = 0
        state.pending = []
        self.advance("answered", parsed.value)

    def reject(self, step: Step, rejected: Rejected) -> None:
        self.state.retries += 1
        limit = step.max_retries or self.c.flow.settings.max_retries
        if self.state.retries >= limit:
            self.skip(
                step, "flagged", "Let's move on for now — you can come back to this one later."
            )
            return
        hint = self.render(f"{step.id}.hint") if step.hint else rejected.hint
        self.ask(hint)

    def skip(self, step: Step, status: str, note: str | None = None) -> None:
        if self.state.revisiting:  # skipping a question /back returned to takes its answer back
            self.withdraw(self.state.history.top)
        origin = self.origin(step.id)
        self.result.answers.append(AnswerRecord(step.id, self.iteration(step.id), None, "", status))
        if status == "flagged":
            self.result.effects.append(FlagStep(step.id, "max_retries", origin))
        if note:
            self.reply(note)
        if step.save is not None and step.save.kind is SaveKind.GOAL_NEW:
            self.state.goal_key = origin  # later goal.* answers start this goal, not the last one
        self.state.answers.pop(step.id, None)
        self.state.retries = 0
        self.state.pending = []
        self.advance("answered", None)

    # -- commands ----------------------------------------------------------------------

    def command(self, command: Command, step: Step) -> None:
        state = self.state
        if command is Command.BACK:
            self.back()
        elif command is Command.SKIP:
            if step.optional:
                self.skip(step, "skipped")
            else:
                self.ask("This question can't be skipped, but you can /pause and come back later.")
        elif command is Command.PAUSE:
            state.status = ConversationStatus.PAUSED
            self.reply(
                "Paused ⏸ Your answers are saved. Send any message when you want to carry on."
            )
        elif command is Command.STOP:
            state.status = ConversationStatus.STOPPED
            self.result.effects.append(SetOptOut(True))
            self.reply(
                "OK — I won't send you messages until you write to me again. "
                "Your answers are saved."
            )
        elif command is Command.RESTART:
            self.restart()
        elif command is Command.HELP:
            self.reply(HELP_TEXT)
            self.ask()
        else:  # DONE outside a list step: nothing to finish
            self.ask("There's nothing to finish here yet.")

    def back(self) -> None:
        """Return to the previous question; an answer that leaves the path is withdrawn."""
        state = self.state
        if len(state.history) < 2:
            self.ask("This is the first question, so there's nothing to go back to.")
            return
        left = state.history.pop()
        if state.revisiting:  # the question left behind had been answered: undo that answer
            self.withdraw(left)
        while len(state.history) > 1 and not self.permitted(
            self.c.nodes.get(state.history.top.step_id)
        ):
            state.history.pop()  # asked with a consent since revoked: off the path now
        frame = state.history.top
        state.step = frame.step_id
        state.goal_key = frame.goal_key
        state.retries = 0
        state.pending = []
        state.revisiting = True
        loop_id = self.c.parent.get(frame.step_id)
        if loop_id is not None and frame.iteration is not None and loop_id in state.loops:
            state.loops[loop_id].index = frame.iteration
        self.ask(f"Let's change that.{self.previous_answer(frame.step_id)}")

    def previous_answer(self, step_id: str) -> str:
        """The answer `/back` returns to, as the student saw it (option labels); "" if none."""
        previous = self.state.answers.get(step_id)
        step = self.c.nodes.get(step_id)
        if previous is None or not isinstance(step, Step):
            return ""
        return f" Your answer was: {display_answer(step, previous, self.options(step))}"

    def withdraw(self, frame: Frame) -> None:
        """``frame``'s answer is off the path now: forget it and undo what it saved.

        Runs before the loops move back, so the loop item is still the frame's own.
        """
        self.state.answers.pop(frame.step_id, None)
        step = self.c.nodes.get(frame.step_id)
        if isinstance(step, Step) and (step.save is not None or step.type is StepType.FILE):
            self.result.effects.append(self.withdrawal(step, frame))

    def withdrawal(self, step: Step, frame: Frame) -> Withdraw:
        origin = frame.step_id if frame.iteration is None else f"{frame.step_id}#{frame.iteration}"
        target = step.save
        if target is not None and target.kind is SaveKind.GOAL_NEW:
            return Withdraw(origin, target, NewGoal(origin))
        goal = self.loop_goal(step.id)
        if goal is not None:
            previous = goal.get(target.field) if target else None
            return Withdraw(origin, target, ExistingGoal(int(goal["id"])), previous)
        return Withdraw(origin, target, NewGoal(frame.goal_key) if frame.goal_key else None)

    def restart(self) -> None:
        state = self.state
        state.step = START
        state.status = ConversationStatus.ACTIVE
        state.answers.clear()
        state.history.clear()
        state.loops = {}
        state.goal_key = None
        state.retries = 0
        state.pending = []
        state.revisiting = False
        self.reply("Starting over from the beginning.")
        self.begin()

    # -- moving through the flow ---------------------------------------------------------

    def advance(self, event: str, answer: Any) -> None:
        """Leave the current step and walk until a question is asked or the flow ends."""
        self.state.revisiting = False
        source = self.state.step
        target = self.c.fire(event, source, scope=self.scope(answer, with_answer=True))
        for _ in range(_MAX_HOPS):
            if target == END:
                self.finish()
                return
            node = self.c.nodes[target]
            self.state.step = target
            if isinstance(node, Loop):
                source, target = target, self.enter_loop(node, source)
            elif not (self.condition(f"{target}.when", default=True) and self.permitted(node)):
                source, target = target, self.c.fire("bypassed", target)
            elif node.type is StepType.MESSAGE:
                self.say(f"{target}.ask")
                source, target = (
                    target,
                    self.c.fire("answered", target, scope=self.scope(None, with_answer=True)),
                )
            else:
                self.arrive(node)
                return
        log.error(
            "flow %s passed %d steps without a question; ending it", self.c.flow.id, _MAX_HOPS
        )
        self.finish()

    def permitted(self, node: Step | Loop | None) -> bool:
        """A sensitive step may be asked only while consent is on record (asked once a turn,
        and only when such a step is reached). A step is sensitive when the conversation's
        pinned content says so or the flow's current file does: a step marked sensitive after
        a conversation began is not asked without consent either."""
        if not isinstance(node, Step):
            return True
        if node.sensitive is None:
            if self._sensitive_now is None:
                self._sensitive_now = self.ctx.sensitive_steps(self.c.flow.id)
            if node.id not in self._sensitive_now:
                return True
        if self._consent is None:
            self._consent = self.ctx.has_consent()
        return self._consent

    def bypass(self, step: Step) -> None:
        """Leave ``step`` as if its `when:` had been false, and move on: no answer taken, and
        `/back` does not return to it."""
        state = self.state
        if len(state.history) and state.history.top.step_id == step.id:
            state.history.pop()
        state.retries = 0
        state.pending = []
        self.advance("bypassed", None)

    def enter_loop(self, loop: Loop, source: str) -> str:
        loops = self.state.loops
        again = self.inside(source, loop.id) and loop.id in loops
        if again:
            loops[loop.id].index += 1
        elif not self.condition(f"{loop.id}.when", default=True):
            return self.c.fire("bypassed", loop.id)
        else:
            loops[loop.id] = LoopState(items=self.loop_items(loop), index=0)
        current = loops[loop.id]
        return self.c.fire(
            "iterate",
            loop.id,
            has_item=current.index < len(current.items),
            was_empty=not current.items,
        )

    def arrive(self, step: Step) -> None:
        state = self.state
        state.retries = 0
        state.pending = []
        state.history.push(Frame(step.id, self.iteration(step.id), state.goal_key))
        self.ask()

    def finish(self) -> None:
        self.state.step = END
        self.state.status = ConversationStatus.COMPLETED
        self.say("flow.outro")

    def _reopen(self) -> None:
        if self.state.status is ConversationStatus.STOPPED:
            self.result.effects.append(SetOptOut(False))
        self.state.status = ConversationStatus.ACTIVE

    def _recover(self) -> None:
        """The state names a step this flow does not have: start again rather than fail."""
        log.error(
            "conversation state %r not in flow %s; restarting", self.state.step, self.c.flow.id
        )
        self.restart()

    def _current_step(self) -> Step | None:
        node = self.c.nodes.get(self.state.step)
        return node if isinstance(node, Step) and node.asks else None

    # -- output ------------------------------------------------------------------------

    def ask(self, prefix: str | None = None) -> None:
        step = self._current_step()
        if step is None:
            return
        if not self.permitted(step):  # waiting since before consent was revoked
            self.bypass(step)
            return
        text = self.render(f"{step.id}.ask")
        if prefix:
            text = f"{prefix}\n\n{text}"
        scale = None
        if step.type is StepType.SCALE:
            scale = Scale(int(step.min or 1), int(step.max or 5), step.labels)
        picks = step.type in (StepType.MULTI_CHOICE, StepType.LIST)
        self.result.replies.append(
            Reply(
                text=text,
                kind=_KIND.get(step.type, ReplyKind.TEXT),
                step_id=step.id,
                options=self.options(step),
                scale=scale,
                min_picks=int(step.min) if picks and step.min is not None else None,
                max_picks=int(step.max) if picks and step.max is not None else None,
                allow_other=step.allow_other,
                optional=step.optional,
            )
        )

    def say(self, key: str) -> None:
        if self.c.template(key) is not None:
            text = self.render(key)
            if text.strip():
                self.reply(text)

    def reply(
        self, text: str, *, kind: ReplyKind = ReplyKind.TEXT, step_id: str | None = None
    ) -> None:
        self.result.replies.append(Reply(text=text, kind=kind, step_id=step_id))

    def render(self, key: str) -> str:
        template = self.c.template(key)
        return "" if template is None else template.render(self.scope(None))

    def options(self, step: Step) -> tuple[Option, ...]:
        static = self.c.static_options.get(step.id)
        if static is not None or not step.options:
            return static or ()
        scope = self.scope(None)
        return tuple(
            Option(o.value, self.c.templates[f"{step.id}.label:{o.value}"].render(scope))
            for o in step.options
        )

    # -- scope, loops, saving ----------------------------------------------------------------

    def scope(self, answer: Any, *, with_answer: bool = False) -> dict[str, Any]:
        scope: dict[str, Any] = {
            "answers": self.state.answers,
            "person": self.ctx.person,
            "profile": self._profile,
            "plan": self._plan,
            "today": self.ctx.today,
        }
        for loop_id in self.enclosing_loops(self.state.step):
            loop = self.c.nodes[loop_id]
            current = self.state.loops.get(loop_id)
            if isinstance(loop, Loop) and current and current.index < len(current.items):
                scope.setdefault(loop.alias, current.items[current.index])
        if with_answer:
            scope["answer"] = answer
        return scope

    def condition(self, key: str, *, default: bool) -> bool:
        expression = self.c.conditions.get(key)
        return default if expression is None else expression.evaluate(self.scope(None))

    def loop_items(self, loop: Loop) -> list[Any]:
        value = self.c.conditions[f"{loop.id}.source"].value(self.scope(None))
        if value is None or isinstance(value, str | bytes | Mapping):
            return []
        try:
            return [_jsonable(item) for item in value]
        except TypeError:
            return []

    def enclosing_loops(self, step_id: str) -> list[str]:
        out: list[str] = []
        loop_id = self.c.parent.get(step_id)
        while loop_id is not None:
            out.append(loop_id)
            loop_id = self.c.parent.get(loop_id)
        return out

    def inside(self, step_id: str, loop_id: str) -> bool:
        return loop_id in self.enclosing_loops(step_id)

    def iteration(self, step_id: str) -> int | None:
        loops = self.enclosing_loops(step_id)
        if not loops or loops[0] not in self.state.loops:
            return None
        return self.state.loops[loops[0]].index

    def origin(self, step_id: str) -> str:
        iteration = self.iteration(step_id)
        return step_id if iteration is None else f"{step_id}#{iteration}"

    def loop_goal(self, step_id: str) -> Mapping[str, Any] | None:
        """The plan goal a loop around ``step_id`` is at, as it was when the loop began."""
        for loop_id in self.enclosing_loops(step_id):
            current = self.state.loops.get(loop_id)
            if current and current.index < len(current.items):
                item = current.items[current.index]
                if isinstance(item, Mapping) and isinstance(item.get("id"), int):
                    return item
        return None

    def loop_goal_id(self, step_id: str) -> int | None:
        goal = self.loop_goal(step_id)
        return None if goal is None else int(goal["id"])

    def goal_ref(self, step_id: str) -> GoalRef | None:
        goal_id = self.loop_goal_id(step_id)
        if goal_id is not None:
            return ExistingGoal(goal_id)
        return NewGoal(self.state.goal_key) if self.state.goal_key else None

    def save_effects(self, step: Step, value: Any, origin: str) -> list[Effect]:
        effects: list[Effect] = []
        target = step.save
        if step.type is StepType.FILE and isinstance(value, Mapping):
            goal = (
                self.goal_ref(step.id) if target and target.kind is not SaveKind.PROFILE else None
            )
            effects.append(SaveArtifact(Attachment.from_json(dict(value)), goal, origin))
        if target is None:
            return effects
        kind = target.kind
        if kind is SaveKind.PROFILE:
            effects.append(SetProfile(target.path, value, target.append, step.private, origin))
        elif kind is SaveKind.GOAL_NEW:
            self.state.goal_key = origin
            effects.append(SetGoal(NewGoal(origin), target.field, value, origin))
        elif kind in (SaveKind.GOAL, SaveKind.GOAL_ACTION_STEPS):
            goal = self.goal_ref(step.id)
            if goal is None:
                log.warning("step %s saves to a goal but none is current", step.id)
            elif kind is SaveKind.GOAL_ACTION_STEPS or target.field == "action_steps":
                effects.append(AddActionSteps(goal, _as_items(value), origin))
            else:
                effects.append(SetGoal(goal, target.field, value, origin))
        elif kind is SaveKind.CHECKIN:
            effects.append(SetCheckin(target.field, value, origin))
        elif kind is SaveKind.CHECKIN_GOAL:
            goal_id = self.loop_goal_id(step.id)
            if goal_id is not None:
                effects.append(SetCheckinGoal(goal_id, target.field, value, origin))
        elif kind is SaveKind.REFLECTION:
            effects.append(SetReflection(target.field, value, origin))
        return effects


def _as_items(value: Any) -> tuple[str, ...]:
    if isinstance(value, list | tuple):
        return tuple(str(v) for v in value if str(v).strip())
    return (str(value),) if value is not None and str(value).strip() else ()


def _raw(inbound: Inbound) -> str:
    if inbound.kind is InboundKind.BUTTON:
        return ",".join(inbound.values) if inbound.values is not None else inbound.value or ""
    if inbound.kind is InboundKind.FILE and inbound.attachment is not None:
        return inbound.attachment.name or inbound.attachment.url or inbound.attachment.kind
    return inbound.text


_PLAIN = (str, int, float, bool, type(None))


def _jsonable(value: Any) -> Any:
    """Loop items are kept in the conversation state, which must survive a JSON round trip."""
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if isinstance(value, date):
        return value.isoformat()
    return str(value)
