"""The demo dossiers' script (core.demo.DEMO_DOSSIERS) is one a real office could have lived."""

from __future__ import annotations

from collections import Counter

from core.demo import (
    APOLOGY,
    CITIZEN_SUPPLEMENT,
    DEMO_DOSSIERS,
    SAMPLE_INDEX,
    demo_paper,
)
from core.dossier import Action, Actor, DossierState, transition
from core.services import valid_draft
from procedures.catalog import load_catalog


def final_state(steps: tuple[str, ...]) -> DossierState:
    state, requests = DossierState.RECEIVED, 0
    for action in steps:
        if action == APOLOGY:
            continue
        by = Actor.CITIZEN if action == CITIZEN_SUPPLEMENT else Actor.OFFICIAL
        chosen = Action.SUBMIT_SUPPLEMENT if action == CITIZEN_SUPPLEMENT else Action(action)
        state = transition(
            state, chosen, by=by, reason="lý do", previous_supplement_requests=requests
        )
        requests += chosen == Action.REQUEST_SUPPLEMENT
    return state


def test_every_moment_is_in_the_past_and_in_order() -> None:
    for spec in DEMO_DOSSIERS:
        assert spec.received >= 1, spec  # before today: never a moment after `now`
        moments = [(0, spec.at)] + [(step.day, step.at) for step in spec.steps]
        assert moments == sorted(moments), spec
        assert all(step.day < spec.received for step in spec.steps), spec
    assert max(spec.received for spec in DEMO_DOSSIERS) <= 10  # the last ten working days


def test_every_stage_of_a_dossier_is_there() -> None:
    states = Counter(final_state(tuple(s.action for s in spec.steps)) for spec in DEMO_DOSSIERS)
    assert set(states) == set(DossierState) - {DossierState.WITHDRAWN}
    assert 10 <= len(DEMO_DOSSIERS) <= 15


def test_reasons_are_written_where_the_law_asks_for_them() -> None:
    for spec in DEMO_DOSSIERS:
        for step in spec.steps:
            if step.action in ("refuse", "request_supplement", APOLOGY, CITIZEN_SUPPLEMENT):
                assert len(step.note) > 40, (spec.procedure, step.action)
            if step.action == APOLOGY:
                assert step.new_due_in >= 1


def test_procedures_drafts_and_the_printed_sample() -> None:
    codes = set(load_catalog().codes())
    drafts = [spec.draft(n) for n, spec in enumerate(DEMO_DOSSIERS, start=1)]
    assert all(spec.procedure in codes for spec in DEMO_DOSSIERS)
    assert all(valid_draft(d) and valid_draft(f"{d}-bo-sung") for d in drafts)
    assert len(set(drafts)) == len(drafts)
    sample = DEMO_DOSSIERS[SAMPLE_INDEX - 1]
    assert sample.steps[-1].action == "request_supplement"  # the status page asks for papers


def test_the_demo_paper_is_a_png_that_says_what_it_is() -> None:
    data = demo_paper("Giấy chứng sinh")
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert demo_paper("Giấy chứng sinh") == data  # the same paper every time
    assert demo_paper("Giấy báo tử") != data
