"""Factories for the models tests need; one file, as the house style asks."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model

from sessions.models import Agent
from voight.models import Membership, Team
from voight.services import api_key_create


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team

    name = factory.Sequence(lambda n: f"Team {n}")
    slug = factory.Sequence(lambda n: f"team-{n}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.PostGenerationMethodCall("set_password", "pw-for-tests")

    @factory.post_generation
    def save_password(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    team = factory.SubFactory(TeamFactory)
    role = Membership.Role.MEMBER


class AgentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Agent

    team = factory.SubFactory(TeamFactory)
    slug = factory.Sequence(lambda n: f"agent-{n}")


def api_key(team, scopes, **kwargs):
    return api_key_create(team=team, scopes=scopes, **kwargs)


# --- sessions, traces, events and signals (API tests) ---------------------------------

import uuid as _uuid  # noqa: E402

from django.utils import timezone as _timezone  # noqa: E402

from sessions.models import AlertRule, Session, Signal  # noqa: E402
from traces.models import Event, Trace  # noqa: E402


class SessionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Session

    agent = factory.SubFactory(AgentFactory)
    team = factory.SelfAttribute("agent.team")
    external_id = factory.Sequence(lambda n: f"sess-{n:05d}")
    started_at = factory.LazyFunction(_timezone.now)
    last_event_at = factory.SelfAttribute("started_at")


class TraceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Trace

    session = factory.SubFactory(SessionFactory)
    team = factory.SelfAttribute("session.team")
    agent = factory.SelfAttribute("session.agent")
    trace_id = factory.Sequence(lambda n: f"t_test{n:05d}_{n:08x}")
    started_at = factory.SelfAttribute("session.started_at")


class EventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Event

    uid = factory.LazyFunction(_uuid.uuid4)
    session = factory.SubFactory(SessionFactory)
    team = factory.SelfAttribute("session.team")
    agent = factory.SelfAttribute("session.agent")
    type = "log"
    ts = factory.LazyFunction(_timezone.now)


class AlertRuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AlertRule

    team = factory.SubFactory(TeamFactory)
    kind = AlertRule.Kind.SESSION_COST
    threshold = 5


class SignalFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Signal

    session = factory.SubFactory(SessionFactory)
    team = factory.SelfAttribute("session.team")
    agent = factory.SelfAttribute("session.agent")
    rule = factory.SubFactory(AlertRuleFactory, team=factory.SelfAttribute("..team"))
    message = "session cost over $5"
    value = 6
