"""The event types of spec section 6, one module per family, and the table that lists them.

Adding a type: a subclass of base.EventType in its family's module, and one line in TYPES.
The table's order is the spec's, which the API's schema and every listing of types follow.
"""

from __future__ import annotations

from ledger.events.accounts import AccountControllers, AccountHold, AccountOpen
from ledger.events.activities import ActivityBatch
from ledger.events.base import EventType
from ledger.events.claims import NeutralityClaim, OffsetSurrender
from ledger.events.credits import Cancellation, IssuanceEvent, RetirementEvent, Transfer
from ledger.events.genesis import Genesis, RulesUpdate
from ledger.events.keys import KeyRegister, KeyRevoke
from ledger.events.methodologies import MethodologyEligibility, MethodologyRegister
from ledger.events.reviews import ReviewEvent

TYPES: dict[str, EventType] = {event_type.name: event_type for event_type in (
    Genesis(), RulesUpdate(),
    KeyRegister(), KeyRevoke(),
    AccountOpen(), AccountControllers(), AccountHold(),
    MethodologyRegister(), MethodologyEligibility(),
    ActivityBatch(), ReviewEvent(),
    IssuanceEvent(), Transfer(), RetirementEvent(), Cancellation(),
    OffsetSurrender(), NeutralityClaim(),
)}
