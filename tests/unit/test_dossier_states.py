"""Dossier states: the transition table, who may act, reasons, the single notice, labels."""

import itertools

import pytest

from core.dossier import (
    ACTIONS,
    SETTLED,
    TERMINAL,
    TRANSITIONS,
    Action,
    Actor,
    DossierState,
    TransitionError,
    action_label,
    allowed_actions,
    is_clock_paused,
    is_open,
    is_settled,
    state_hint,
    state_label,
    transition,
)
from core.text import Message

S, A = DossierState, Action

EXPECTED = {
    (S.RECEIVED, A.CLAIM): S.PROCESSING,
    (S.RECEIVED, A.REQUEST_SUPPLEMENT): S.SUPPLEMENT_REQUESTED,
    (S.RECEIVED, A.REFUSE): S.REFUSED,
    (S.RECEIVED, A.WITHDRAW): S.WITHDRAWN,
    (S.PROCESSING, A.REQUEST_SUPPLEMENT): S.SUPPLEMENT_REQUESTED,
    (S.PROCESSING, A.APPROVE): S.APPROVED,
    (S.PROCESSING, A.REFUSE): S.REFUSED,
    (S.SUPPLEMENT_REQUESTED, A.SUBMIT_SUPPLEMENT): S.SUPPLEMENTED,
    (S.SUPPLEMENT_REQUESTED, A.REFUSE): S.REFUSED,
    (S.SUPPLEMENTED, A.CLAIM): S.PROCESSING,
    (S.SUPPLEMENTED, A.REQUEST_SUPPLEMENT): S.SUPPLEMENT_REQUESTED,
    (S.APPROVED, A.RETURN_RESULT): S.RETURNED,
}

REASON = "Thiếu giấy chứng sinh"


def test_state_values_are_stable() -> None:
    # Stored in the database by value: renaming one is a migration.
    assert [s.value for s in S] == [
        "received",
        "processing",
        "supplement_requested",
        "supplemented",
        "approved",
        "refused",
        "returned",
        "withdrawn",
    ]
    assert [a.value for a in A] == [
        "claim",
        "request_supplement",
        "submit_supplement",
        "approve",
        "refuse",
        "return_result",
        "withdraw",
    ]


def test_the_table_is_the_one_we_mean() -> None:
    assert dict(TRANSITIONS) == EXPECTED


@pytest.mark.parametrize(("state", "action"), list(itertools.product(S, A)))
def test_every_pair_is_a_transition_or_an_explained_error(
    state: DossierState, action: Action
) -> None:
    expected = EXPECTED.get((state, action))
    if expected is not None:
        assert transition(state, action, by=ACTIONS[action].by, reason=REASON) == expected
        return
    with pytest.raises(TransitionError) as caught:
        transition(state, action, reason=REASON)
    message = caught.value.message
    assert isinstance(message, Message)
    assert message.vi and message.en
    assert message.vi != message.en
    assert str(caught.value) == message.en


@pytest.mark.parametrize("state", sorted(TERMINAL))
def test_terminal_states_have_no_way_out(state: DossierState) -> None:
    assert allowed_actions(state) == []
    assert not is_open(state)
    for action in A:
        with pytest.raises(TransitionError, match="no longer|already"):
            transition(state, action, reason=REASON)


def test_every_state_is_reachable_from_received() -> None:
    reached, frontier = {S.RECEIVED}, [S.RECEIVED]
    while frontier:
        state = frontier.pop()
        for (from_state, _), to_state in TRANSITIONS.items():
            if from_state == state and to_state not in reached:
                reached.add(to_state)
                frontier.append(to_state)
    assert reached == set(S)


def test_every_non_terminal_state_can_end() -> None:
    # No dossier can get stuck: from any open state a terminal state is reachable.
    for state in S:
        seen, frontier = {state}, [state]
        while frontier:
            current = frontier.pop()
            for (from_state, _), to_state in TRANSITIONS.items():
                if from_state == current and to_state not in seen:
                    seen.add(to_state)
                    frontier.append(to_state)
        assert seen & TERMINAL, state


def test_the_example_message() -> None:
    with pytest.raises(TransitionError) as caught:
        transition(S.APPROVED, A.REFUSE, reason=REASON)
    assert caught.value.message.vi.startswith("Hồ sơ đã được phê duyệt, không thể từ chối nữa.")
    assert caught.value.message.en.startswith(
        "The dossier has already been approved: you can no longer refuse it."
    )
    # It also says what can be done instead.
    assert "trả kết quả" in caught.value.message.vi


def test_claiming_twice_says_someone_has_it() -> None:
    with pytest.raises(TransitionError) as caught:
        transition(S.PROCESSING, A.CLAIM, by=Actor.OFFICIAL)
    assert caught.value.message == Message(
        "Hồ sơ đã có cán bộ nhận xử lý.", "An official has already taken this dossier."
    )


@pytest.mark.parametrize(
    ("state", "action", "vi"),
    [
        (S.APPROVED, A.APPROVE, "Hồ sơ đã được phê duyệt rồi."),
        (S.REFUSED, A.REFUSE, "Hồ sơ đã bị từ chối rồi."),
        (S.RETURNED, A.RETURN_RESULT, "Hồ sơ đã được trả kết quả rồi."),
        (S.WITHDRAWN, A.WITHDRAW, "Hồ sơ đã được rút rồi."),
        (S.SUPPLEMENTED, A.SUBMIT_SUPPLEMENT, "Giấy tờ bổ sung đã được nộp."),
        (
            S.SUPPLEMENT_REQUESTED,
            A.REQUEST_SUPPLEMENT,
            "Đã gửi yêu cầu bổ sung; hồ sơ đang chờ người dân nộp giấy tờ.",
        ),
    ],
)
def test_repeating_an_action_says_it_is_done(state: DossierState, action: Action, vi: str) -> None:
    with pytest.raises(TransitionError, match="already") as caught:
        transition(state, action, reason=REASON)
    assert caught.value.message.vi == vi


def test_not_yet_is_told_apart_from_no_longer() -> None:
    with pytest.raises(TransitionError) as caught:
        transition(S.RECEIVED, A.APPROVE)
    assert caught.value.message.vi.startswith(
        "Hồ sơ vừa được tiếp nhận, không thể phê duyệt lúc này. Việc có thể làm: nhận xử lý hồ sơ"
    )
    assert caught.value.message.en.startswith(
        "The dossier has just been received: you cannot approve it now."
    )
    with pytest.raises(TransitionError) as caught:
        transition(S.SUPPLEMENTED, A.REFUSE, reason=REASON)
    assert "không thể từ chối lúc này" in caught.value.message.vi


def test_withdraw_only_before_processing() -> None:
    assert transition(S.RECEIVED, A.WITHDRAW, by=Actor.CITIZEN) == S.WITHDRAWN
    for state in (S.PROCESSING, S.SUPPLEMENT_REQUESTED, S.SUPPLEMENTED, S.APPROVED):
        with pytest.raises(TransitionError) as caught:
            transition(state, A.WITHDRAW, by=Actor.CITIZEN)
        assert "không thể rút hồ sơ nữa" in caught.value.message.vi


def test_a_citizen_told_what_they_can_do_sees_only_their_actions() -> None:
    with pytest.raises(TransitionError) as caught:
        transition(S.SUPPLEMENT_REQUESTED, A.WITHDRAW, by=Actor.CITIZEN)
    assert caught.value.message.vi.endswith("Việc có thể làm: nộp bổ sung giấy tờ.")
    assert "từ chối" not in caught.value.message.vi


# --- Who may act ---------------------------------------------------------------------------------


def test_actors() -> None:
    citizen = {a for a, rule in ACTIONS.items() if rule.by == Actor.CITIZEN}
    assert citizen == {A.SUBMIT_SUPPLEMENT, A.WITHDRAW}
    assert set(ACTIONS) == set(A)


@pytest.mark.parametrize(("state", "action"), list(EXPECTED))
def test_the_wrong_actor_is_refused(state: DossierState, action: Action) -> None:
    wrong = Actor.CITIZEN if ACTIONS[action].by == Actor.OFFICIAL else Actor.OFFICIAL
    with pytest.raises(TransitionError, match="Only") as caught:
        transition(state, action, by=wrong, reason=REASON)
    assert caught.value.message.vi.startswith("Chỉ ")


# --- Reasons -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "action"),
    [
        (S.RECEIVED, A.REFUSE),
        (S.PROCESSING, A.REFUSE),
        (S.SUPPLEMENT_REQUESTED, A.REFUSE),
        (S.RECEIVED, A.REQUEST_SUPPLEMENT),
        (S.PROCESSING, A.REQUEST_SUPPLEMENT),
        (S.SUPPLEMENTED, A.REQUEST_SUPPLEMENT),
    ],
)
@pytest.mark.parametrize("reason", [None, "", "   \n\t"])
def test_reasons_are_required(state: DossierState, action: Action, reason: str | None) -> None:
    with pytest.raises(TransitionError) as caught:
        transition(state, action, by=Actor.OFFICIAL, reason=reason)
    assert caught.value.message == ACTIONS[action].missing_reason
    assert "ghi rõ" in caught.value.message.vi


def test_only_refusing_and_requesting_need_a_reason() -> None:
    assert {a for a, rule in ACTIONS.items() if rule.needs_reason} == {
        A.REFUSE,
        A.REQUEST_SUPPLEMENT,
    }
    assert transition(S.PROCESSING, A.APPROVE) == S.APPROVED


# --- The single notice ---------------------------------------------------------------------------


@pytest.mark.parametrize("state", [S.RECEIVED, S.PROCESSING])
def test_a_second_request_from_the_original_papers_is_refused(state: DossierState) -> None:
    assert (
        transition(state, A.REQUEST_SUPPLEMENT, reason=REASON, previous_supplement_requests=0)
        == S.SUPPLEMENT_REQUESTED
    )
    with pytest.raises(TransitionError, match="single notice") as caught:
        transition(state, A.REQUEST_SUPPLEMENT, reason=REASON, previous_supplement_requests=1)
    assert "một thông báo duy nhất" in caught.value.message.vi


def test_a_wrong_supplement_may_be_requested_again() -> None:
    state = transition(
        S.SUPPLEMENTED,
        A.REQUEST_SUPPLEMENT,
        reason="Giấy chứng sinh bổ sung bị mờ",
        previous_supplement_requests=1,
    )
    assert state == S.SUPPLEMENT_REQUESTED


def test_a_whole_life() -> None:
    state = S.RECEIVED
    state = transition(state, A.REQUEST_SUPPLEMENT, by=Actor.OFFICIAL, reason=REASON)
    assert is_clock_paused(state)
    state = transition(state, A.SUBMIT_SUPPLEMENT, by=Actor.CITIZEN)
    assert not is_clock_paused(state)
    state = transition(state, A.CLAIM, by=Actor.OFFICIAL)
    state = transition(state, A.APPROVE, by=Actor.OFFICIAL)
    assert is_open(state) and is_settled(state)
    state = transition(state, A.RETURN_RESULT, by=Actor.OFFICIAL)
    assert state == S.RETURNED and not is_open(state)


def test_plain_strings_are_accepted() -> None:
    # Values read back from the database or a form are plain strings.
    assert transition("received", "claim") == S.PROCESSING  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'publish' is not a valid Action"):
        transition(S.RECEIVED, "publish")  # type: ignore[arg-type]


# --- Predicates ----------------------------------------------------------------------------------


def test_clock_paused_only_while_waiting_for_the_citizen() -> None:
    assert {s for s in S if is_clock_paused(s)} == {S.SUPPLEMENT_REQUESTED}


def test_open_and_settled() -> None:
    assert {s for s in S if is_open(s)} == {
        S.RECEIVED,
        S.PROCESSING,
        S.SUPPLEMENT_REQUESTED,
        S.SUPPLEMENTED,
        S.APPROVED,
    }
    assert (
        {s for s in S if is_settled(s)}
        == SETTLED
        == {
            S.APPROVED,
            S.REFUSED,
            S.RETURNED,
            S.WITHDRAWN,
        }
    )


# --- Labels --------------------------------------------------------------------------------------


def test_state_labels_in_both_languages() -> None:
    assert {s: state_label(s).vi for s in S} == {
        S.RECEIVED: "Đã tiếp nhận",
        S.PROCESSING: "Đang xử lý",
        S.SUPPLEMENT_REQUESTED: "Cần bổ sung giấy tờ",
        S.SUPPLEMENTED: "Đã bổ sung",
        S.APPROVED: "Đã có kết quả",
        S.REFUSED: "Bị từ chối",
        S.RETURNED: "Đã trả kết quả",
        S.WITHDRAWN: "Đã rút hồ sơ",
    }
    english = [state_label(s).en for s in S]
    assert all(english) and len(set(english)) == len(english)
    assert state_label(S.SUPPLEMENT_REQUESTED).in_("en") == "More papers needed"
    assert state_label("approved").in_("vi") == "Đã có kết quả"  # type: ignore[arg-type]


def test_hints_and_action_labels_in_both_languages() -> None:
    for state in S:
        hint = state_hint(state)
        assert hint.vi.endswith(".") and hint.en.endswith(".")
        assert hint.vi != hint.en
    assert "tạm dừng" in state_hint(S.SUPPLEMENT_REQUESTED).vi
    for action in A:
        label = action_label(action)
        assert label.vi and label.en and label.vi != label.en
    assert action_label(A.WITHDRAW) == Message("Rút hồ sơ", "Withdraw")
