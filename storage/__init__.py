"""profilebot's storage: the database, its schema, and the stores the engine and services use.

SQLite by default, PostgreSQL by URL. Imports only value types from `dialogues`; never reads
the environment (the URL is passed in)::

    db = Database("sqlite:///profilebot.db")
    db.ensure_schema()
    with ConversationStore(db).turn(person.id) as turn:
        if turn.claim_event(event_id):
            ...
            outbox_ids = turn.save(record, result, platform="telegram", address=chat_id)
"""

from ._audit import AuditRecord, AuditStore, Viewed, Viewing
from ._consent import (
    ConsentEvent,
    ConsentState,
    ConsentStatus,
    ConsentStore,
    is_under_13,
)
from ._database import Database
from ._failed import FailedInboundRecord, FailedInboundStore, Letter
from ._invites import DEFAULT_INVITE_TTL, InviteRecord, InviteStore
from ._outbox import IMMEDIATELY, INACTIVE, OPTED_OUT, OutboxClaim, OutboxStore, SendSlots
from ._people import PeopleStore
from ._person_data import (
    ABOUT_THEM,
    BLANKED,
    PARTS,
    UNLINKS,
    ErasureReceipt,
    PersonDataStore,
    PruneReport,
)
from ._plan import PlanStore
from ._proactive import (
    NO_ACCOUNT,
    UNREACHABLE,
    Chat,
    Contact,
    DueStart,
    FollowUp,
    Reach,
    TimedConversation,
)
from ._profile import ProfileStore
from ._records import (
    Account,
    ArtifactRecord,
    CheckinGoalUpdateRecord,
    CheckinRecord,
    ConversationRecord,
    GroupRecord,
    OutboxRecord,
    PersonRecord,
    ProfileFactRecord,
    ReflectionRecord,
    SurveyRecord,
)
from ._recurrence import Occurrence, Recurrence, weekly_rule
from ._reports import (
    Advising,
    CheckinReport,
    GoalReport,
    GoalUpdateReport,
    ProfileChange,
    Reports,
)
from ._roster import (
    PLATFORMS,
    ImportCounts,
    RosterClass,
    RosterEntry,
    RosterError,
    RosterStore,
)
from ._safety import ERASED_STAFF, SAFETY_ALERT, SafetyAlert, SafetyNotified, SafetyStore
from ._schedules import (
    ADVISOR_SUMMARY,
    DEFAULT_SUMMARY_RULE,
    SURVEY_OCCURRENCE,
    WHEN_FREE,
    Audience,
    BreakImport,
    BreakRecord,
    DueClaim,
    ScheduleRecord,
    ScheduleStore,
    SchoolBreak,
    wait_until_free,
)
from ._surveys import (
    RecentSurveyError,
    StaleSurveyError,
    SurveyAnswer,
    SurveyCounts,
    SurveyResponse,
    SurveyStore,
)
from ._tables import GOAL_STATUSES, OUTBOX_STATUSES, ROLES, metadata
from ._turns import Batch, ConversationStore, Turn
from .errors import (
    ConflictError,
    DatabaseUnavailable,
    InvalidDatabaseURL,
    InvalidInviteError,
    InvalidValueError,
    SchemaError,
    StorageError,
    UnknownPersonError,
    UnknownRecordError,
    is_transient,
)

__all__ = [
    "ABOUT_THEM",
    "ADVISOR_SUMMARY",
    "BLANKED",
    "DEFAULT_INVITE_TTL",
    "DEFAULT_SUMMARY_RULE",
    "ERASED_STAFF",
    "GOAL_STATUSES",
    "IMMEDIATELY",
    "INACTIVE",
    "NO_ACCOUNT",
    "OPTED_OUT",
    "OUTBOX_STATUSES",
    "PARTS",
    "PLATFORMS",
    "ROLES",
    "SAFETY_ALERT",
    "SURVEY_OCCURRENCE",
    "UNLINKS",
    "UNREACHABLE",
    "WHEN_FREE",
    "Account",
    "Advising",
    "ArtifactRecord",
    "Audience",
    "AuditRecord",
    "AuditStore",
    "Batch",
    "BreakImport",
    "BreakRecord",
    "Chat",
    "CheckinGoalUpdateRecord",
    "CheckinRecord",
    "CheckinReport",
    "ConflictError",
    "ConsentEvent",
    "ConsentState",
    "ConsentStatus",
    "ConsentStore",
    "Contact",
    "ConversationRecord",
    "ConversationStore",
    "Database",
    "DatabaseUnavailable",
    "DueClaim",
    "DueStart",
    "ErasureReceipt",
    "FailedInboundRecord",
    "FailedInboundStore",
    "FollowUp",
    "GoalReport",
    "GoalUpdateReport",
    "GroupRecord",
    "ImportCounts",
    "InvalidDatabaseURL",
    "InvalidInviteError",
    "InvalidValueError",
    "InviteRecord",
    "InviteStore",
    "Letter",
    "Occurrence",
    "OutboxClaim",
    "OutboxRecord",
    "OutboxStore",
    "PeopleStore",
    "PersonDataStore",
    "PersonRecord",
    "PlanStore",
    "ProfileChange",
    "ProfileFactRecord",
    "ProfileStore",
    "PruneReport",
    "Reach",
    "RecentSurveyError",
    "Recurrence",
    "ReflectionRecord",
    "Reports",
    "RosterClass",
    "RosterEntry",
    "RosterError",
    "RosterStore",
    "SafetyAlert",
    "SafetyNotified",
    "SafetyStore",
    "ScheduleRecord",
    "ScheduleStore",
    "SchemaError",
    "SchoolBreak",
    "SendSlots",
    "StaleSurveyError",
    "StorageError",
    "SurveyAnswer",
    "SurveyCounts",
    "SurveyRecord",
    "SurveyResponse",
    "SurveyStore",
    "TimedConversation",
    "Turn",
    "UnknownPersonError",
    "UnknownRecordError",
    "Viewed",
    "Viewing",
    "is_transient",
    "is_under_13",
    "metadata",
    "wait_until_free",
    "weekly_rule",
]
