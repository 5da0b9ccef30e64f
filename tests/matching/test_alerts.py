"""Smart alerts: the best matches for a new task are told, within each
contractor's daily cap and outside their quiet hours, once per task, logged.

"Now" is fixed (a Tuesday in March 2030, before daylight saving starts) so
quiet hours and local midnights are exact."""

from __future__ import annotations

import datetime as dt

import pytest

from core.errors import ApplicationError, PermissionDenied
from matching import selectors, services
from matching.models import AlertLog, AlertSettings, MatchEvent
from messaging import notifications
from messaging.models import Notification
from tasks import services as task_services

from .ma3_support import open_task, pro

pytestmark = pytest.mark.django_db

UTC = dt.UTC
NOON_LA = dt.datetime(2030, 3, 5, 20, 0, tzinfo=UTC)  # 12:00 in Los Angeles, 15:00 in New York
NIGHT_LA = dt.datetime(2030, 3, 6, 6, 30, tzinfo=UTC)  # 22:30 in Los Angeles, 01:30 in New York


@pytest.fixture
def pros(contractor):
    """Four plumbers near the task: Bob and three more."""
    return [contractor, pro("olga@example.com"), pro("raj@example.com"), pro("yara@example.com")]


def settings_for(user, **values) -> AlertSettings:
    return AlertSettings.objects.create(user=user, **values)


def past_alerts(user, *sent_at: dt.datetime, customer) -> None:
    for when in sent_at:
        log = AlertLog.objects.create(task=open_task(customer), contractor=user, score=0.5, rank=1)
        AlertLog.objects.filter(pk=log.pk).update(sent_at=when)


def test_top_matches_are_alerted_once_each_and_logged(customer, pros):
    task = open_task(customer)
    ranked = [c.pk for c, _score, _reasons in selectors.best_contractors_for(task, limit=5)]
    assert sorted(ranked) == sorted(p.pk for p in pros)

    run = services.alerts_for_new_task(task, now=NOON_LA)
    assert run.sent == ranked and run.skipped == {}
    logs = {log.contractor_id: log for log in AlertLog.objects.filter(task=task)}
    assert {pk: logs[pk].rank for pk in ranked} == {pk: i for i, pk in enumerate(ranked, start=1)}
    assert all(log.channels == ["in_app", "email"] for log in logs.values())
    assert all(log.model_version == "rules" for log in logs.values())
    events = MatchEvent.objects.filter(task=task, kind="alerted")
    assert {(e.contractor_id, e.position) for e in events} == {(pk, i) for i, pk in enumerate(ranked, start=1)}
    notes = Notification.objects.filter(task=task, kind="task_update")
    assert sorted(n.user_id for n in notes) == sorted(ranked)
    assert {n.title for n in notes} == {f"New job near you: “{task.title}”"}

    again = services.alerts_for_new_task(task, now=NOON_LA)
    assert again.sent == [] and set(again.skipped.values()) == {"already_alerted"}
    assert AlertLog.objects.filter(task=task).count() == 4
    assert MatchEvent.objects.filter(task=task, kind="alerted").count() == 4
    assert Notification.objects.filter(task=task).count() == 4


def test_only_the_top_n_hear(customer, pros):
    task = open_task(customer)
    top_two = [c.pk for c, _s, _r in selectors.best_contractors_for(task, limit=2)]
    run = services.alerts_for_new_task(task, now=NOON_LA, top_n=2)
    assert run.sent == top_two
    assert sorted(AlertLog.objects.values_list("contractor_id", flat=True)) == sorted(top_two)


def test_daily_cap_counts_todays_alerts(customer, pros):
    bob, olga = pros[0], pros[1]
    settings_for(bob, daily_cap=2)
    past_alerts(bob, NOON_LA - dt.timedelta(hours=1), NOON_LA - dt.timedelta(hours=3), customer=customer)
    past_alerts(olga, NOON_LA - dt.timedelta(hours=1), NOON_LA - dt.timedelta(days=1), customer=customer)  # default cap 5
    task = open_task(customer)
    run = services.alerts_for_new_task(task, now=NOON_LA)
    assert run.skipped == {bob.pk: "daily_cap"}
    assert sorted(run.sent) == sorted(p.pk for p in pros[1:])
    assert not AlertLog.objects.filter(task=task, contractor=bob).exists()
    assert not MatchEvent.objects.filter(task=task, contractor=bob).exists()
    assert not Notification.objects.filter(task=task, user=bob).exists()


def test_yesterdays_alerts_do_not_count_after_local_midnight(customer, contractor):
    # 00:30 in New York; the earlier alert was at 23:30 there the day before.
    now = dt.datetime(2030, 3, 5, 5, 30, tzinfo=UTC)
    settings_for(contractor, daily_cap=1, time_zone="America/New_York")
    past_alerts(contractor, now - dt.timedelta(hours=1), customer=customer)
    task = open_task(customer)
    assert services.alerts_for_new_task(task, now=now).sent == [contractor.pk]
    # In Los Angeles the earlier alert (20:30) is on the same day as "now" (21:30): it counts.
    settings = AlertSettings.objects.get(user=contractor)
    assert services.alerts_sent_today(contractor.pk, settings, now) == 0
    settings.time_zone = "America/Los_Angeles"
    assert services.alerts_sent_today(contractor.pk, settings, now) == 1


def test_quiet_hours_in_the_contractors_time_zone(customer, pros):
    bob, olga, raj, yara = pros
    settings_for(bob, quiet_start=dt.time(22), quiet_end=dt.time(7))  # Los Angeles, across midnight
    settings_for(olga, quiet_start=dt.time(9), quiet_end=dt.time(17))  # daytime quiet: 22:30 is fine
    settings_for(raj, quiet_start=dt.time(22), quiet_end=dt.time(7), time_zone="America/New_York")
    task = open_task(customer)

    night = services.alerts_for_new_task(task, now=NIGHT_LA)
    assert night.skipped == {bob.pk: "quiet_hours", raj.pk: "quiet_hours"}
    assert sorted(night.sent) == sorted([olga.pk, yara.pk])
    assert sorted(AlertLog.objects.filter(task=task).values_list("contractor_id", flat=True)) == sorted([olga.pk, yara.pk])
    assert not Notification.objects.filter(user__in=[bob, raj]).exists()

    # At noon nobody is quiet except Olga; she already heard about this task.
    noon = services.alerts_for_new_task(task, now=NOON_LA)
    assert sorted(noon.sent) == sorted([bob.pk, raj.pk])
    assert noon.skipped == {olga.pk: "already_alerted", yara.pk: "already_alerted"}
    assert AlertLog.objects.filter(task=task).count() == 4


@pytest.mark.parametrize(
    ("start", "end", "local", "quiet"),
    [
        (dt.time(22), dt.time(7), dt.time(22), True),  # start is quiet
        (dt.time(22), dt.time(7), dt.time(6, 59), True),
        (dt.time(22), dt.time(7), dt.time(7), False),  # end is not
        (dt.time(22), dt.time(7), dt.time(12), False),
        (dt.time(12), dt.time(14), dt.time(13), True),
        (dt.time(12), dt.time(14), dt.time(14), False),
        (dt.time(12), dt.time(14), dt.time(11, 59), False),
        (None, None, dt.time(3), False),
    ],
)
def test_in_quiet_hours(start, end, local, quiet):
    settings = AlertSettings(quiet_start=start, quiet_end=end, time_zone="America/Los_Angeles")
    now = dt.datetime.combine(dt.date(2030, 3, 5), local, tzinfo=dt.timezone(dt.timedelta(hours=-8)))
    assert services.in_quiet_hours(settings, now) is quiet


def test_alerts_off_means_none(customer, contractor):
    settings_for(contractor, enabled=False)
    task = open_task(customer)
    run = services.alerts_for_new_task(task, now=NOON_LA)
    assert run.skipped == {contractor.pk: "disabled"}
    assert not AlertLog.objects.exists() and not Notification.objects.exists()


def test_channels_follow_notification_settings(customer, contractor):
    olga = pro("olga@example.com")
    notifications.preferences_set(user=contractor, values={"task_update": {"in_app": False, "email": True, "sms": False}})
    notifications.preferences_set(user=olga, values={"task_update": {"in_app": False, "email": False, "sms": False}})
    task = open_task(customer)
    run = services.alerts_for_new_task(task, now=NOON_LA)
    assert run.sent == [contractor.pk] and run.skipped == {olga.pk: "no_channel"}
    assert AlertLog.objects.get(task=task).channels == ["email"]
    # Email only: the notification row exists (it drives the email) but is born read.
    assert Notification.objects.get(user=contractor).read_at is not None
    assert not MatchEvent.objects.filter(contractor=olga).exists()


def test_posting_a_task_sends_its_alerts(customer, contractor, django_capture_on_commit_callbacks):
    task = open_task(customer, status="draft", published_at=None)
    with django_capture_on_commit_callbacks(execute=True):
        task_services.task_publish(task, by=customer)
    log = AlertLog.objects.get(task=task)
    assert (log.contractor_id, log.rank, log.channels) == (contractor.pk, 1, ["in_app", "email"])


def test_failed_publish_sends_nothing(customer, contractor, outsider, django_capture_on_commit_callbacks):
    task = open_task(customer, status="draft", published_at=None)
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(ApplicationError):
        task_services.task_publish(task, by=outsider)
    assert not AlertLog.objects.exists()


def test_no_alerts_for_a_task_no_longer_open(customer, contractor):
    task = open_task(customer, status="cancelled")
    assert services.alerts_for_new_task(task, now=NOON_LA).sent == []
    assert services.alerts_for_new_task(999_999_999, now=NOON_LA).sent == []
    assert not AlertLog.objects.exists()


def test_the_celery_job_runs_the_alerts(customer, contractor):
    from matching.alert_jobs import send_new_task_alerts

    task = open_task(customer)
    assert send_new_task_alerts.delay(task.pk).get() == 1
    assert send_new_task_alerts.delay(task.pk).get() == 0


# --- alert settings -----------------------------------------------------------------------


def test_alert_settings_saved(contractor):
    saved = services.alert_settings_update(
        user=contractor, enabled=False, daily_cap=12, quiet_start=dt.time(21), quiet_end=dt.time(6, 30), time_zone="America/Chicago"
    )
    row = AlertSettings.objects.get(user=contractor)
    assert row.pk == saved.pk
    assert (row.enabled, row.daily_cap, row.quiet_start, row.quiet_end, row.time_zone) == (
        False,
        12,
        dt.time(21),
        dt.time(6, 30),
        "America/Chicago",
    )


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"daily_cap": 0}, "daily_cap"),
        ({"daily_cap": 51}, "daily_cap"),
        ({"daily_cap": "5"}, "daily_cap"),
        ({"daily_cap": None}, "daily_cap"),
        ({"quiet_start": dt.time(22), "quiet_end": None}, "quiet_end"),
        ({"quiet_start": None, "quiet_end": dt.time(7)}, "quiet_start"),
        ({"quiet_start": dt.time(7), "quiet_end": dt.time(7)}, "quiet_end"),
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"time_zone": ""}, "time_zone"),
    ],
)
def test_bad_alert_settings_refused_with_nothing_saved(contractor, values, field):
    settings_for(contractor, daily_cap=5)
    data = {"enabled": True, "daily_cap": 8, "quiet_start": None, "quiet_end": None, "time_zone": "America/Los_Angeles", **values}
    with pytest.raises(ApplicationError) as exc:
        services.alert_settings_update(user=contractor, **data)
    assert field in exc.value.fields
    row = AlertSettings.objects.get(user=contractor)
    assert (row.daily_cap, row.quiet_start, row.time_zone) == (5, None, "America/Los_Angeles")


def test_customers_have_no_alert_settings(customer):
    with pytest.raises(PermissionDenied):
        services.alert_settings_update(
            user=customer, enabled=True, daily_cap=5, quiet_start=None, quiet_end=None, time_zone="America/Los_Angeles"
        )
    assert not AlertSettings.objects.exists()
