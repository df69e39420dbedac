"""The life of a dossier (hồ sơ): its states and the only ways to move between them.

One-stop rules (NĐ 61/2018/NĐ-CP Điều 17–20, domain.md §6):

- A dossier is received (tiếp nhận) with a return date. An official takes it (nhận xử lý) and
  settles it: approved (phê duyệt, the result is ready) or refused (từ chối, with the reason
  written down). The result is then handed back (trả kết quả) and the dossier is closed.
- An incomplete dossier gets ONE notice listing everything that is missing or wrong (yêu cầu bổ
  sung, "một lần, đầy đủ"). While the office waits for the citizen the deadline clock is paused.
  If the citizen never answers, the office refuses the dossier, stating why.
- A second request is lawful only about the supplement itself (the paper the citizen just brought
  is still wrong), so it is allowed from `supplemented` only. From `received` or `processing`
  a request is allowed once: the caller passes how many requests the dossier already had.
- The citizen may withdraw a dossier (rút hồ sơ) until an official has taken it.

`TRANSITIONS` is the whole table; `transition()` is the one function that applies it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from core.text import Message


class DossierState(StrEnum):
    RECEIVED = "received"
    PROCESSING = "processing"
    SUPPLEMENT_REQUESTED = "supplement_requested"
    SUPPLEMENTED = "supplemented"
    APPROVED = "approved"  # the result is ready, not yet handed back
    REFUSED = "refused"
    RETURNED = "returned"  # the result was handed back: closed
    WITHDRAWN = "withdrawn"


class Action(StrEnum):
    CLAIM = "claim"
    REQUEST_SUPPLEMENT = "request_supplement"
    SUBMIT_SUPPLEMENT = "submit_supplement"
    APPROVE = "approve"
    REFUSE = "refuse"
    RETURN_RESULT = "return_result"
    WITHDRAW = "withdraw"


class Actor(StrEnum):
    OFFICIAL = "official"  # a commune official (cán bộ) working the queue
    CITIZEN = "citizen"  # the person who filed the dossier


S, A = DossierState, Action

TRANSITIONS: Mapping[tuple[DossierState, Action], DossierState] = MappingProxyType(
    {
        (S.RECEIVED, A.CLAIM): S.PROCESSING,
        (S.RECEIVED, A.REQUEST_SUPPLEMENT): S.SUPPLEMENT_REQUESTED,
        (S.RECEIVED, A.REFUSE): S.REFUSED,
        (S.RECEIVED, A.WITHDRAW): S.WITHDRAWN,
        (S.PROCESSING, A.REQUEST_SUPPLEMENT): S.SUPPLEMENT_REQUESTED,
        (S.PROCESSING, A.APPROVE): S.APPROVED,
        (S.PROCESSING, A.REFUSE): S.REFUSED,
        (S.SUPPLEMENT_REQUESTED, A.SUBMIT_SUPPLEMENT): S.SUPPLEMENTED,
        (S.SUPPLEMENT_REQUESTED, A.REFUSE): S.REFUSED,  # the citizen never supplemented
        (S.SUPPLEMENTED, A.CLAIM): S.PROCESSING,
        (S.SUPPLEMENTED, A.REQUEST_SUPPLEMENT): S.SUPPLEMENT_REQUESTED,  # the supplement is wrong
        (S.APPROVED, A.RETURN_RESULT): S.RETURNED,
    }
)

TERMINAL: frozenset[DossierState] = frozenset({S.REFUSED, S.RETURNED, S.WITHDRAWN})
# The office's work is done: the deadline no longer runs (the result waits for the citizen).
SETTLED: frozenset[DossierState] = TERMINAL | {S.APPROVED}


@dataclass(frozen=True, slots=True)
class ActionRule:
    by: Actor
    needs_reason: bool
    label: Message  # the button or history line
    verb: Message  # the action inside a sentence: "không thể {verb} nữa"
    missing_reason: Message | None = None


ACTIONS: Mapping[Action, ActionRule] = MappingProxyType(
    {
        A.CLAIM: ActionRule(
            Actor.OFFICIAL,
            False,
            Message("Nhận xử lý", "Take for processing"),
            Message("nhận xử lý hồ sơ", "take it for processing"),
        ),
        A.REQUEST_SUPPLEMENT: ActionRule(
            Actor.OFFICIAL,
            True,
            Message("Yêu cầu bổ sung", "Request more papers"),
            Message("yêu cầu bổ sung giấy tờ", "request more papers"),
            Message(
                "Hãy ghi rõ, trong một lần, mọi giấy tờ còn thiếu hoặc cần sửa để người dân "
                "bổ sung.",
                "List, in one notice, every paper that is missing or must be corrected.",
            ),
        ),
        A.SUBMIT_SUPPLEMENT: ActionRule(
            Actor.CITIZEN,
            False,
            Message("Nộp bổ sung", "Submit more papers"),
            Message("nộp bổ sung giấy tờ", "submit more papers"),
        ),
        A.APPROVE: ActionRule(
            Actor.OFFICIAL,
            False,
            Message("Phê duyệt", "Approve"),
            Message("phê duyệt", "approve it"),
        ),
        A.REFUSE: ActionRule(
            Actor.OFFICIAL,
            True,
            Message("Từ chối", "Refuse"),
            Message("từ chối", "refuse it"),
            Message(
                "Hãy ghi rõ lý do từ chối để người dân biết vì sao.",
                "Write the reason for refusing so the citizen knows why.",
            ),
        ),
        A.RETURN_RESULT: ActionRule(
            Actor.OFFICIAL,
            False,
            Message("Trả kết quả", "Hand back the result"),
            Message("trả kết quả", "hand back the result"),
        ),
        A.WITHDRAW: ActionRule(
            Actor.CITIZEN,
            False,
            Message("Rút hồ sơ", "Withdraw"),
            Message("rút hồ sơ", "withdraw it"),
        ),
    }
)

# How each state reads inside an explanation: "{state}, không thể {verb} …".
_STATE_PHRASES: Mapping[DossierState, Message] = MappingProxyType(
    {
        S.RECEIVED: Message("Hồ sơ vừa được tiếp nhận", "The dossier has just been received"),
        S.PROCESSING: Message("Hồ sơ đang được xử lý", "The dossier is being processed"),
        S.SUPPLEMENT_REQUESTED: Message(
            "Hồ sơ đang chờ người dân bổ sung giấy tờ",
            "The dossier is waiting for the citizen's papers",
        ),
        S.SUPPLEMENTED: Message(
            "Người dân đã bổ sung giấy tờ", "The citizen has brought the missing papers"
        ),
        S.APPROVED: Message("Hồ sơ đã được phê duyệt", "The dossier has already been approved"),
        S.REFUSED: Message("Hồ sơ đã bị từ chối", "The dossier has already been refused"),
        S.RETURNED: Message("Hồ sơ đã được trả kết quả", "The result has already been handed back"),
        S.WITHDRAWN: Message("Hồ sơ đã được rút", "The dossier has been withdrawn"),
    }
)

# For the citizen's status page: short words an elderly person understands at a glance.
_LABELS: Mapping[DossierState, Message] = MappingProxyType(
    {
        S.RECEIVED: Message("Đã tiếp nhận", "Received"),
        S.PROCESSING: Message("Đang xử lý", "Being processed"),
        S.SUPPLEMENT_REQUESTED: Message("Cần bổ sung giấy tờ", "More papers needed"),
        S.SUPPLEMENTED: Message("Đã bổ sung", "Papers added"),
        S.APPROVED: Message("Đã có kết quả", "Result ready"),
        S.REFUSED: Message("Bị từ chối", "Refused"),
        S.RETURNED: Message("Đã trả kết quả", "Result handed over"),
        S.WITHDRAWN: Message("Đã rút hồ sơ", "Withdrawn"),
    }
)

# One sentence under the label: what it means and what, if anything, the citizen has to do.
_HINTS: Mapping[DossierState, Message] = MappingProxyType(
    {
        S.RECEIVED: Message(
            "Xã đã nhận hồ sơ của bạn và sẽ xem xét. Bạn chưa cần làm gì thêm.",
            "The commune has your dossier and will look at it. Nothing to do for now.",
        ),
        S.PROCESSING: Message(
            "Cán bộ xã đang giải quyết hồ sơ. Bạn chưa cần làm gì thêm.",
            "An official is working on your dossier. Nothing to do for now.",
        ),
        S.SUPPLEMENT_REQUESTED: Message(
            "Bạn cần nộp thêm giấy tờ theo thông báo của xã. Thời hạn giải quyết tạm dừng cho "
            "đến khi bạn nộp đủ.",
            "Please bring the papers listed in the commune's notice. The deadline is paused "
            "until you do.",
        ),
        S.SUPPLEMENTED: Message(
            "Xã đã nhận giấy tờ bạn bổ sung và sẽ tiếp tục giải quyết.",
            "The commune has the papers you added and will carry on.",
        ),
        S.APPROVED: Message(
            "Hồ sơ đã giải quyết xong. Mời bạn nhận kết quả theo hướng dẫn của xã.",
            "Your dossier is done. Please collect the result as the commune explains.",
        ),
        S.REFUSED: Message(
            "Xã không thể giải quyết hồ sơ này. Lý do được ghi trong thông báo.",
            "The commune cannot settle this dossier. The reason is given in the notice.",
        ),
        S.RETURNED: Message(
            "Bạn đã nhận kết quả. Hồ sơ đã hoàn tất.",
            "You have received the result. The dossier is closed.",
        ),
        S.WITHDRAWN: Message(
            "Bạn đã rút hồ sơ. Xã sẽ không giải quyết hồ sơ này nữa.",
            "You withdrew this dossier. The commune will not settle it.",
        ),
    }
)


class TransitionError(Exception):
    """An action that the rules do not allow now; `message` tells the person why, in both
    languages."""

    def __init__(self, message: Message) -> None:
        super().__init__(message.en)
        self.message = message


def state_label(state: DossierState) -> Message:
    """The state in a few plain words, for the citizen's status page."""
    return _LABELS[DossierState(state)]


def state_hint(state: DossierState) -> Message:
    """One sentence on what the state means for the citizen and what they have to do."""
    return _HINTS[DossierState(state)]


def action_label(action: Action) -> Message:
    return ACTIONS[Action(action)].label


def is_clock_paused(state: DossierState) -> bool:
    """The deadline does not run while the office waits for the citizen's papers."""
    return state == S.SUPPLEMENT_REQUESTED


def is_open(state: DossierState) -> bool:
    """Something is still to happen: a decision, a supplement, or handing back the result."""
    return state not in TERMINAL


def is_settled(state: DossierState) -> bool:
    """The office has decided (or the citizen withdrew): the deadline has stopped running."""
    return state in SETTLED


def allowed_actions(state: DossierState, by: Actor | None = None) -> list[Action]:
    """The actions possible from `state` (for `by` only, when given), in table order."""
    return [
        action
        for (from_state, action) in TRANSITIONS
        if from_state == state and (by is None or ACTIONS[action].by == by)
    ]


def _reachable_from(state: DossierState) -> set[DossierState]:
    """Every state the dossier can reach from `state` by one action or more."""
    seen: set[DossierState] = set()
    frontier = [state]
    while frontier:
        current = frontier.pop()
        for (from_state, _), to_state in TRANSITIONS.items():
            if from_state == current and to_state not in seen:
                seen.add(to_state)
                frontier.append(to_state)
    return seen


# When the action asked for is the one that led to the current state (a double click, two
# officials at once): say it is done rather than that it is forbidden.
_ALREADY_DONE: Mapping[DossierState, Message] = MappingProxyType(
    {
        S.PROCESSING: Message(
            "Hồ sơ đã có cán bộ nhận xử lý.", "An official has already taken this dossier."
        ),
        S.SUPPLEMENT_REQUESTED: Message(
            "Đã gửi yêu cầu bổ sung; hồ sơ đang chờ người dân nộp giấy tờ.",
            "More papers were already requested; the dossier is waiting for the citizen.",
        ),
        S.SUPPLEMENTED: Message(
            "Giấy tờ bổ sung đã được nộp.", "The additional papers were already submitted."
        ),
        S.APPROVED: Message("Hồ sơ đã được phê duyệt rồi.", "The dossier is already approved."),
        S.REFUSED: Message("Hồ sơ đã bị từ chối rồi.", "The dossier is already refused."),
        S.RETURNED: Message(
            "Hồ sơ đã được trả kết quả rồi.", "The result has already been handed back."
        ),
        S.WITHDRAWN: Message("Hồ sơ đã được rút rồi.", "The dossier is already withdrawn."),
    }
)


def _not_now(state: DossierState, action: Action, by: Actor | None) -> Message:
    if any(to_state == state and a == action for (_, a), to_state in TRANSITIONS.items()):
        return _ALREADY_DONE[state]
    phrase, verb = _STATE_PHRASES[state], ACTIONS[action].verb
    # "nữa" (no longer) when the moment has passed for good, "lúc này" (now) when it may come.
    if not any((later, action) in TRANSITIONS for later in _reachable_from(state)):
        vi, en = (
            f"{phrase.vi}, không thể {verb.vi} nữa.",
            f"{phrase.en}: you can no longer {verb.en}.",
        )
    else:
        vi, en = (
            f"{phrase.vi}, không thể {verb.vi} lúc này.",
            f"{phrase.en}: you cannot {verb.en} now.",
        )
    possible = allowed_actions(state, by)
    if possible:
        vi += " Việc có thể làm: " + ", ".join(ACTIONS[a].verb.vi for a in possible) + "."
        en += " Possible now: " + ", ".join(ACTIONS[a].verb.en for a in possible) + "."
    return Message(vi, en)


def transition(
    state: DossierState,
    action: Action,
    *,
    by: Actor | None = None,
    reason: str | None = None,
    previous_supplement_requests: int = 0,
) -> DossierState:
    """The state after `action`, or `TransitionError` saying why it is not allowed.

    `reason` is required (non-blank) to refuse or to request a supplement. `by`, when given, is
    checked against who may act. `previous_supplement_requests` enforces the single notice:
    from `received` or `processing` a request is refused if the dossier already had one.
    """
    state, action = DossierState(state), Action(action)
    rule = ACTIONS[action]
    if by is not None and rule.by != by:
        if rule.by == Actor.OFFICIAL:
            raise TransitionError(
                Message(
                    f"Chỉ cán bộ xã mới có thể {rule.verb.vi}.",
                    f"Only a commune official can {rule.verb.en}.",
                )
            )
        raise TransitionError(
            Message(
                f"Chỉ người nộp hồ sơ mới có thể {rule.verb.vi}.",
                f"Only the person who filed the dossier can {rule.verb.en}.",
            )
        )
    target = TRANSITIONS.get((state, action))
    if target is None:
        raise TransitionError(_not_now(state, action, by))
    if rule.needs_reason and (reason is None or not reason.strip()):
        assert rule.missing_reason is not None  # noqa: S101 - every reasoned action has one
        raise TransitionError(rule.missing_reason)
    if (
        action == A.REQUEST_SUPPLEMENT
        and state != S.SUPPLEMENTED
        and previous_supplement_requests > 0
    ):
        raise TransitionError(
            Message(
                "Hồ sơ này đã được yêu cầu bổ sung một lần. Theo quy định, mọi giấy tờ còn thiếu "
                "phải ghi trong một thông báo duy nhất; chỉ được yêu cầu lại khi giấy tờ người "
                "dân vừa bổ sung vẫn chưa đúng.",
                "This dossier already had a request for more papers. The rules require a single "
                "notice listing everything missing; ask again only if the papers the citizen "
                "just brought are still wrong.",
            )
        )
    return target
