"""`/v1/me/budgets`: list, read, create, update and delete budgets, each with its state.

Validation is the model's own (`Budget.clean`), the one the budgets page and the admin use;
an invalid body is a 400 naming each problem and writes nothing. Writes need the `write`
scope, or a logged-in admin of the budget's team.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.utils import timezone
from drf_spectacular.utils import (
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
    extend_schema_view,
)
from rest_framework import exceptions, mixins, serializers, status
from rest_framework.response import Response

from sessions.budget_services import budget_delete, budget_save
from sessions.budget_spend import budget_states
from sessions.models import Agent, Budget
from sessions.selectors import is_team_admin
from voight.api.permissions import request_key
from voight.api.views import MeViewSet
from voight.models import Team


class BudgetStateSerializer(serializers.Serializer):
    spent_usd = serializers.DecimalField(max_digits=20, decimal_places=6, coerce_to_string=False)
    limit_usd = serializers.DecimalField(max_digits=12, decimal_places=2, coerce_to_string=False,
                                         source="budget.limit_usd")
    percent = serializers.FloatField(help_text="Spent as a percentage of the limit.")
    period_start = serializers.DateTimeField(source="window.start")
    resets_at = serializers.DateTimeField(source="window.end", help_text="The next reset.")
    thresholds_crossed = serializers.ListField(
        child=serializers.IntegerField(), source="crossed",
        help_text="Of 80, 90 and 100: those fired in this period.")


class BudgetSerializer(serializers.ModelSerializer):
    team = serializers.SlugRelatedField(
        slug_field="slug", queryset=Team.objects.none(), required=False,
        help_text="Team slug; may be left out when you are in one team.")
    agent = serializers.CharField(required=False, allow_null=True, allow_blank=True,
                                  help_text="Agent slug, for scope `agent`.")
    developer = serializers.CharField(required=False, allow_null=True, allow_blank=True,
                                      help_text="Username of a team member, for `developer`.")
    limit_usd = serializers.DecimalField(max_digits=12, decimal_places=2, coerce_to_string=False)
    state = serializers.SerializerMethodField()

    class Meta:
        model = Budget
        fields = ["id", "team", "name", "scope", "agent", "developer", "repository", "period",
                  "limit_usd", "pause_at_limit", "webhook_url", "enabled", "created_at",
                  "updated_at", "state"]
        read_only_fields = ["id", "created_at", "updated_at", "state"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        view = self.context.get("view")
        if view is not None:
            self.fields["team"].queryset = Team.objects.filter(pk__in=view.team_ids())

    def to_representation(self, budget):
        data = super().to_representation(budget)
        data["team"] = budget.team.slug
        data["agent"] = budget.agent.slug if budget.agent_id else None
        data["developer"] = budget.developer.get_username() if budget.developer_id else None
        return data

    @extend_schema_field(BudgetStateSerializer(allow_null=True))
    def get_state(self, budget) -> dict | None:
        state = self.context.get("states", {}).get(budget.pk)
        return BudgetStateSerializer(state).data if state is not None else None

    def validate(self, attrs):
        budget = self.instance or Budget()
        team = attrs.pop("team", None) or (budget.team if budget.team_id else None)
        if team is None:
            teams = list(self.fields["team"].queryset[:2])
            if len(teams) != 1:
                raise serializers.ValidationError({"team": ["name the team (its slug)"]})
            team = teams[0]
        agent = attrs.pop("agent", budget.agent.slug if budget.agent_id else None)
        developer = attrs.pop(
            "developer", budget.developer.get_username() if budget.developer_id else None)
        for name, value in attrs.items():
            setattr(budget, name, value)
        budget.team = team
        budget.agent = self._agent(team, agent)
        budget.developer = self._developer(developer)
        try:
            budget.full_clean()
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from exc
        return {"budget": budget}

    @staticmethod
    def _agent(team, slug):
        if not slug:
            return None
        agent = Agent.objects.filter(team=team, slug=slug[:128]).first()
        if agent is None:
            raise serializers.ValidationError({"agent": [f"no agent {slug!r} in team {team.slug}"]})
        return agent

    @staticmethod
    def _developer(username):
        if not username:
            return None
        user = get_user_model().objects.filter(**{get_user_model().USERNAME_FIELD: username}).first()
        if user is None:
            raise serializers.ValidationError({"developer": [f"no user {username!r}"]})
        return user


@extend_schema_serializer(many=False)  # the list is an object holding the array
class BudgetListSerializer(serializers.Serializer):
    results = BudgetSerializer(many=True)


@extend_schema_view(
    list=extend_schema(summary="List budgets with their state", tags=["budgets"],
                       description="Every budget of your teams (not paged: a team has few).",
                       responses=BudgetListSerializer),
    retrieve=extend_schema(summary="One budget with its state", tags=["budgets"]),
    create=extend_schema(summary="Create a budget", tags=["budgets"]),
    partial_update=extend_schema(summary="Change a budget", tags=["budgets"]),
    update=extend_schema(summary="Replace a budget", tags=["budgets"]),
    destroy=extend_schema(summary="Delete a budget", tags=["budgets"]),
)
class BudgetViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, MeViewSet):
    """Budgets per team, agent, developer or repository, per day, week or month (in the
    team's time zone), with spend, percent and next reset."""

    queryset = Budget.objects.select_related("team", "agent", "developer").order_by("pk")
    serializer_class = BudgetSerializer
    pagination_class = None
    filter_backends = []

    def get_serializer_context(self):
        context = super().get_serializer_context()
        context["states"] = getattr(self, "_states", {})
        return context

    def _with_states(self, budgets) -> list:
        budgets = list(budgets)
        self._states = {s.budget.pk: s for s in budget_states(budgets, timezone.now())}
        return budgets

    def list(self, request, *args, **kwargs):
        budgets = self._with_states(self.get_queryset())
        return Response({"results": self.get_serializer(budgets, many=True).data})

    def retrieve(self, request, *args, **kwargs):
        budget = self._with_states([self.get_object()])[0]
        return Response(self.get_serializer(budget).data)

    def _check_admin(self, team_id: int) -> None:
        if request_key(self.request) is None and not is_team_admin(self.request.user, team_id):
            raise exceptions.PermissionDenied("only an admin of this team may do this")

    def _write(self, instance, partial: bool, created: bool):
        body = self.get_serializer(instance, data=self.request.data, partial=partial)
        body.is_valid(raise_exception=True)
        budget = body.validated_data["budget"]
        self._check_admin(budget.team_id)
        with transaction.atomic():
            budget_save(budget)
        budget = self._with_states([self.get_queryset().get(pk=budget.pk)])[0]
        return Response(self.get_serializer(budget).data,
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    def create(self, request, *args, **kwargs):
        return self._write(None, partial=False, created=True)

    def update(self, request, *args, **kwargs):
        return self._write(self.get_object(), partial=kwargs.pop("partial", False),
                           created=False)

    def partial_update(self, request, *args, **kwargs):
        return self._write(self.get_object(), partial=True, created=False)

    def destroy(self, request, *args, **kwargs):
        budget = self.get_object()
        budget_delete(budget)
        return Response(status=status.HTTP_204_NO_CONTENT)
