"""The monthly schedule: rule language and cron, Korean holidays (real dates), quiet hours, issue per slot, states."""

from __future__ import annotations

import datetime as dt
import itertools
import json

import holidays
import pytest
import sqlalchemy as sa

from _schedule_helpers import cli, seoul, write_project
from newsletter.db import get_engine, sends
from newsletter.errors import UserError
from newsletter.send import schedule as S

UTC = dt.timezone.utc


def next_slots(cfg, start: dt.datetime, n: int) -> list[S.Slot]:
    return list(itertools.islice(S.slots(cfg, S.read_issues(cfg), start.astimezone(UTC)), n))


def local_days(slots) -> list[str]:
    return [f"{s.local:%Y-%m-%d %H:%M}" for s in slots]


# ------------------------------------------------------------------------------------------- rule language


@pytest.mark.parametrize(
    "rule, expected",
    [
        ("first tuesday 10:00", ["2027-03-02 10:00", "2027-04-06 10:00", "2027-05-04 10:00"]),
        ("second wednesday 09:30", ["2027-03-10 09:30", "2027-04-14 09:30", "2027-05-12 09:30"]),
        ("last friday 14:00", ["2027-03-26 14:00", "2027-04-30 14:00", "2027-05-28 14:00"]),
        ("day 5 10:00", ["2027-03-05 10:00", "2027-04-05 10:00", "2027-05-06 10:00"]),  # 5 May: 어린이날
        ("첫째 화요일 10:00", ["2027-03-02 10:00", "2027-04-06 10:00", "2027-05-04 10:00"]),
        ("매월 5일 10:00", ["2027-03-05 10:00", "2027-04-05 10:00", "2027-05-06 10:00"]),
        ("마지막 금요일 14:00", ["2027-03-26 14:00", "2027-04-30 14:00", "2027-05-28 14:00"]),
        ("0 10 1-7 * 2", ["2027-03-02 10:00", "2027-04-06 10:00", "2027-05-04 10:00"]),  # cron: first Tuesday
    ],
)
def test_rules_give_the_dates_a_person_expects(tmp_path, rule, expected):
    cfg = write_project(tmp_path, rule=rule)
    assert local_days(next_slots(cfg, seoul(2027, 3, 1), 3)) == expected


def test_times_are_seoul_and_stored_in_utc(tmp_path):
    cfg = write_project(tmp_path, rule="first tuesday 10:00")
    slot = next_slots(cfg, seoul(2026, 11, 24), 1)[0]
    assert slot.at == dt.datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
    assert S.fmt_local(slot.local) == "2026-12-01 (화) 10:00 KST"


def test_cron_day_and_weekday_both_must_match(tmp_path):
    """Classic cron would fire on days 1-7 *or* every Tuesday; the config's example means the first Tuesday."""
    cfg = write_project(tmp_path, rule="0 10 1-7 * 2", skip_holidays=False)
    days = local_days(next_slots(cfg, seoul(2026, 12, 1), 12))
    readable = local_days(next_slots(write_project(tmp_path / "b", rule="first tuesday 10:00", skip_holidays=False),
                                     seoul(2026, 12, 1), 12))
    assert days == readable


def test_day_past_the_end_of_month_is_its_last_day(tmp_path):
    cfg = write_project(tmp_path, rule="day 31 10:00", skip_holidays=False)
    assert local_days(next_slots(cfg, seoul(2027, 2, 1), 2)) == ["2027-02-28 10:00", "2027-03-31 10:00"]


@pytest.mark.parametrize(
    "rule", ["second blursday 10:00", "first tuesday 25:00", "day 32 10:00", "fifth monday 10:00", "* * *", ""]
)
def test_an_unreadable_rule_is_one_clear_error(rule):
    with pytest.raises(UserError) as err:
        S.parse_rule(rule, where="config.yaml")
    assert "schedule.rule" in str(err.value) and "first tuesday 10:00" in str(err.value)


# -------------------------------------------------------------------------------------- Korean holidays


def test_the_package_knows_the_2027_holidays_we_test_with():
    kr = holidays.KR(years=2027, language="ko")
    assert "설날" in kr[dt.date(2027, 2, 9)] and "대체" in kr[dt.date(2027, 2, 9)]
    assert "추석" in kr[dt.date(2027, 9, 14)] and "추석" in kr[dt.date(2027, 9, 15)]
    assert dt.date(2027, 9, 17) not in kr


def test_seollal_substitute_holiday_moves_the_slot_to_the_next_working_day(tmp_path):
    # second Tuesday of February 2027 = 9 Feb, the 설날 substitute holiday -> Wednesday 10 Feb, same time
    cfg = write_project(tmp_path, rule="second tuesday 10:00", skip_holidays=True)
    slot = next_slots(cfg, seoul(2027, 2, 1), 1)[0]
    assert slot.local == seoul(2027, 2, 10, 10, 0)
    assert slot.moved_from == seoul(2027, 2, 9, 10, 0)
    assert "설날" in slot.moved_because and slot.month == "2027-02"


def test_chuseok_moves_past_all_three_days(tmp_path):
    # second Tuesday of September 2027 = 14 Sep (추석 전날); 15 and 16 are 추석 too -> Friday 17 Sep
    cfg = write_project(tmp_path, rule="second tuesday 10:00")
    slot = next_slots(cfg, seoul(2027, 9, 1), 1)[0]
    assert S.fmt_local(slot.local) == "2027-09-17 (금) 10:00 KST"
    assert slot.moved_because.count("추석") == 3


def test_holiday_move_across_a_weekend_and_into_next_month_keeps_the_month_issue(tmp_path):
    # last Friday of December 2026 = 25 Dec (기독탄신일) -> Monday 28 Dec; 31 Jan 2027 is a Sunday -> 1 Feb
    cfg = write_project(tmp_path, rule="last day 10:00")
    jan = next_slots(cfg, seoul(2027, 1, 20), 1)[0]
    assert jan.local == seoul(2027, 2, 1, 10, 0) and jan.month == "2027-01"
    cfg = write_project(tmp_path / "b", rule="last friday 14:00")
    dec = next_slots(cfg, seoul(2026, 12, 20), 1)[0]
    assert dec.local == seoul(2026, 12, 28, 14, 0) and "기독탄신일" in dec.moved_because


def test_without_skip_holidays_the_slot_stays_on_the_holiday(tmp_path):
    cfg = write_project(tmp_path, rule="second tuesday 10:00", skip_holidays=False)
    slot = next_slots(cfg, seoul(2027, 2, 1), 1)[0]
    assert slot.local == seoul(2027, 2, 9, 10, 0) and slot.moved_from is None


def test_a_slot_moved_past_now_is_still_upcoming(tmp_path):
    """At noon on the holiday itself the moved slot (tomorrow) must still be listed."""
    cfg = write_project(tmp_path, rule="second tuesday 10:00")
    assert local_days(next_slots(cfg, seoul(2027, 2, 9, 12, 0), 1)) == ["2027-02-10 10:00"]


# ------------------------------------------------------------------------------------------- quiet hours


def test_quiet_hours_wrap_midnight():
    quiet = S.parse_quiet_hours("21:00-08:00")
    assert seoul(2026, 12, 1, 21, 0) in quiet and seoul(2026, 12, 1, 3, 0) in quiet
    assert seoul(2026, 12, 1, 7, 59) in quiet
    assert seoul(2026, 12, 1, 8, 0) not in quiet and seoul(2026, 12, 1, 20, 59) not in quiet
    lunch = S.parse_quiet_hours("12:00 ~ 13:00")
    assert seoul(2026, 12, 1, 12, 30) in lunch and seoul(2026, 12, 1, 22, 0) not in lunch
    assert S.parse_quiet_hours(None) is None


@pytest.mark.parametrize("text", ["9pm-8am", "21:00", "21:00-21:00", "25:00-08:00"])
def test_bad_quiet_hours_are_a_clear_error(text):
    with pytest.raises(UserError, match="schedule.quiet_hours"):
        S.parse_quiet_hours(text)


# ------------------------------------------------------------------------------------------ plan & states


def add_send(url: str, issue: str, status: str) -> int:
    with get_engine(url).begin() as conn:
        return conn.execute(
            sends.insert().values(
                issue=issue, kind="real", backend="outbox", status=status,
                finished_at=dt.datetime(2026, 11, 3, 1, 7, tzinfo=UTC) if status == "done" else None,
            )
        ).inserted_primary_key[0]


def states(plan: S.Plan) -> list[tuple[str, str | None, str]]:
    return [(f"{e.slot.local:%Y-%m-%d %H:%M}", e.issue, e.state) for e in plan.entries]


def test_each_slot_sends_its_month_issue_and_shows_its_state(tmp_path, db_url):
    cfg = write_project(tmp_path, {"2026-11": {}, "2027-01": {"ad": False}}, rule="first tuesday 10:00")
    plan = S.plan(cfg, now=seoul(2026, 11, 3, 10, 5), count=3)
    assert states(plan) == [
        ("2026-11-03 10:00", "2026-11", "due"),
        ("2026-12-01 10:00", None, "no issue yet"),
        ("2027-01-05 10:00", "2027-01", "upcoming"),
        ("2027-02-02 10:00", None, "no issue yet"),
    ]
    assert plan.entries[0].ad is True and plan.entries[2].ad is False

    open_id = add_send(db_url, "2026-11", "open")
    due = S.plan(cfg, now=seoul(2026, 11, 3, 10, 5), count=1).entries[0]
    assert due.state == "due" and due.send_id == open_id and f"resumes send #{open_id}" in due.note

    with get_engine(db_url).begin() as conn:
        conn.execute(sends.update().where(sends.c.id == open_id).values(status="done", finished_at=sa.func.now()))
    sent = S.plan(cfg, now=seoul(2026, 11, 3, 10, 5), count=1).entries[0]
    assert sent.state == "sent" and sent.send_id == open_id


def test_a_test_send_does_not_count_as_sent(tmp_path, db_url):
    cfg = write_project(tmp_path, {"2026-11": {}})
    with get_engine(db_url).begin() as conn:
        conn.execute(sends.insert().values(issue="2026-11", kind="test", backend="outbox", status="done"))
    assert S.plan(cfg, now=seoul(2026, 11, 3, 10, 5), count=1).entries[0].state == "due"


def test_late_slots_are_due_within_catch_up_then_missed(tmp_path, sqlite_url):
    cfg = write_project(tmp_path, {"2026-11": {}}, catch_up_hours=72)
    assert S.plan(cfg, now=seoul(2026, 11, 6, 9, 59), count=1).entries[0].state == "due"
    missed = S.plan(cfg, now=seoul(2026, 11, 6, 10, 1), count=1).entries[0]
    assert missed.state == "missed" and "newsletter send 2026-11" in missed.note
    cancelled_id = add_send(sqlite_url, "2026-11", "cancelled")
    assert cancelled_id and S.plan(cfg, now=seoul(2026, 11, 3, 11, 0), count=1).entries[0].state == "cancelled"


def test_ad_issue_in_quiet_hours_is_refused_with_one_clear_message(tmp_path, sqlite_url):
    cfg = write_project(tmp_path, {"2026-11": {"ad": True}, "2026-12": {"ad": False}}, rule="first tuesday 21:30")
    plan = S.plan(cfg, now=seoul(2026, 11, 1), count=2)
    ad, plain = [e for e in plan.entries if e.slot.at > plan.now]  # after October's past slot
    assert ad.state == "refused: quiet hours"
    assert "2026-11" in ad.note and "21:00-08:00" in ad.note and "2026-11-03 (화) 21:30 KST" in ad.note
    assert plain.state == "upcoming"  # not an ad: quiet hours do not apply

    off = write_project(tmp_path / "off", {"2026-11": {"ad": True}}, rule="first tuesday 21:30", quiet_hours=None)
    assert S.plan(off, now=seoul(2026, 11, 1), count=1).entries[-1].state == "upcoming"


def test_send_at_in_the_issue_replaces_its_month_slot(tmp_path, sqlite_url):
    # 2027-02's rule slot would be 2 Feb; the editor chose 9 Feb 15:00 (a holiday: an explicit time is not moved)
    cfg = write_project(tmp_path, {"2027-02": {"ad": False, "send_at": "2027-02-09 15:00"}})
    plan = S.plan(cfg, now=seoul(2027, 1, 20), count=3)
    assert states(plan) == [
        ("2027-01-05 10:00", None, "no issue yet"),  # the latest past slot
        ("2027-02-09 15:00", "2027-02", "upcoming"),
        ("2027-03-02 10:00", None, "no issue yet"),
        ("2027-04-06 10:00", None, "no issue yet"),
    ]
    chosen = [e for e in plan.entries if e.issue == "2027-02"][0]
    assert chosen.slot.issue == "2027-02" and chosen.note == ""  # the content stage accepts send_at too


def test_several_issues_with_send_at_come_in_time_order(tmp_path, sqlite_url):
    cfg = write_project(tmp_path, {
        "2027-03": {"send_at": "2027-03-04T09:00:00+09:00"},
        "2027-02-special": {"send_at": "2027-02-20 11:00"},  # not a month: only send_at schedules it
        "2027-02": {"send_at": "2027-02-03 10:30"},
    })
    plan = S.plan(cfg, now=seoul(2027, 1, 20), count=4)
    assert states(plan)[1:] == [
        ("2027-02-03 10:30", "2027-02", "upcoming"),
        ("2027-02-20 11:00", "2027-02-special", "upcoming"),
        ("2027-03-04 09:00", "2027-03", "upcoming"),
        ("2027-04-06 10:00", None, "no issue yet"),
    ]


def test_send_at_without_a_time_is_reported_on_that_issue_only(tmp_path, sqlite_url):
    cfg = write_project(tmp_path, {"2026-11": {}, "2026-12": {"send_at": dt.date(2026, 12, 3)}})
    plan = S.plan(cfg, now=seoul(2026, 11, 3, 10, 5), count=2)
    assert [e.state for e in plan.entries] == ["due", "upcoming", "no issue yet"]
    assert "send_at" in plan.entries[1].note and "needs a time" in plan.entries[1].note


def test_a_broken_issue_is_not_ready_and_an_error_when_due(tmp_path, sqlite_url):
    cfg = write_project(tmp_path, {"2026-11": {"title": None}})
    upcoming = S.plan(cfg, now=seoul(2026, 11, 1), count=1).entries[-1]
    assert upcoming.state == "upcoming" and upcoming.note.startswith("not ready:") and "title" in upcoming.note
    due = S.plan(cfg, now=seoul(2026, 11, 3, 10, 5), count=1).entries[0]
    assert due.state == "error" and "title" in due.note


# ------------------------------------------------------------------------------------------------- CLI


def test_schedule_json_lists_next_dates_with_issue_and_state(tmp_path, sqlite_url):
    write_project(tmp_path, {"2027-02": {"ad": True}}, rule="second tuesday 10:00")
    out = cli(tmp_path, "schedule", "--count", "3", "--json", "--now", "2027-01-20T09:00")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["timezone"] == "Asia/Seoul" and data["quiet_hours"] == "21:00-08:00"
    first = data["slots"][1]  # [0] is January's slot, just past
    assert first["when"] == "2027-02-10 (수) 10:00 KST" and first["at"] == "2027-02-10T01:00:00+00:00"
    assert first["issue"] == "2027-02" and first["state"] == "upcoming" and first["ad"] is True
    assert "설날" in first["moved_because"] and first["moved_from"].startswith("2027-02-09T10:00")
    assert len([s for s in data["slots"] if s["at"] > "2027-01-20"]) == 3


def test_schedule_table_is_readable_and_warns_about_refusals(tmp_path, sqlite_url):
    write_project(tmp_path, {"2026-12": {"ad": True}}, rule="first tuesday 22:00")
    out = cli(tmp_path, "schedule", "-n", "2", "--now", "2026-11-20T12:00")
    assert out.returncode == 0, out.stderr
    assert "2026-12-01 (화) 22:00" in out.stdout and "refused: quiet hours" in out.stdout
    assert "quiet hours 21:00-08:00" in out.stderr and "Traceback" not in out.stderr


def test_schedule_with_a_bad_rule_says_so_in_one_line(tmp_path, sqlite_url):
    write_project(tmp_path, rule="every other blue moon")
    out = cli(tmp_path, "schedule")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.count("\n") == 1 and "schedule.rule" in out.stderr and "config.yaml" in out.stderr


def test_without_a_rule_only_send_at_issues_are_scheduled(tmp_path, sqlite_url):
    cfg = write_project(tmp_path, {"2026-12": {}, "2027-01": {"send_at": "2027-01-07 10:00"}}, rule=None)
    plan = S.plan(cfg, now=seoul(2026, 11, 20), count=5)
    assert states(plan) == [("2027-01-07 10:00", "2027-01", "upcoming")]
