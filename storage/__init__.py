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

from ._database import Database
from ._failed import FailedInboundRecord, FailedInboundStore, Letter
from ._invites import DEFAULT_INVITE_TTL, InviteRecord, InviteStore
from ._outbox import IMMEDIATELY, OPTED_OUT, UNREACHABLE, OutboxClaim, OutboxStore, SendSlots
from ._people import PeopleStore
from ._plan import PlanStore
from ._profile import ProfileStore
from ._records import (
    Account,
    ArtifactRecord,
    CheckinGoalUpdateRecord,
    CheckinRecord,
    ConversationRecord,
    OutboxRecord,
    PersonRecord,
    ProfileFactRecord,
    ReflectionRecord,
)
from ._tables import GOAL_STATUSES, OUTBOX_STATUSES, ROLES, metadata
from ._turns import ConversationStore, Turn
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
    "DEFAULT_INVITE_TTL",
    "GOAL_STATUSES",
    "IMMEDIATELY",
    "OPTED_OUT",
    "OUTBOX_STATUSES",
    "ROLES",
    "UNREACHABLE",
    "Account",
    "ArtifactRecord",
    "CheckinGoalUpdateRecord",
    "CheckinRecord",
    "ConflictError",
    "ConversationRecord",
    "ConversationStore",
    "Database",
    "DatabaseUnavailable",
    "FailedInboundRecord",
    "FailedInboundStore",
    "InvalidDatabaseURL",
    "InvalidInviteError",
    "InvalidValueError",
    "InviteRecord",
    "InviteStore",
    "Letter",
    "OutboxClaim",
    "OutboxRecord",
    "OutboxStore",
    "PeopleStore",
    "PersonRecord",
    "PlanStore",
    "ProfileFactRecord",
    "ProfileStore",
    "ReflectionRecord",
    "SchemaError",
    "SendSlots",
    "StorageError",
    "Turn",
    "UnknownPersonError",
    "UnknownRecordError",
    "is_transient",
    "metadata",
]
