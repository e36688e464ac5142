"""`/v1/me/approvals`: the open questions of the caller's teams, the answered ones (the audit),
and answering one. Scoped like every `/v1/me` endpoint: another team's request is a 404."""

from __future__ import annotations

import uuid

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from approvals import services
from approvals.models import ApprovalRequest
from sessions.selectors import team_ids_for
from voight.api.permissions import ApiAccess, request_actor
from voight.api.schema import VoightAutoSchema
from voight.api.throttling import ReadRateThrottle
from voight.api.views import api_exception_handler


class ApprovalSerializer(serializers.ModelSerializer):
    status = serializers.CharField(source="shown_status",
                                   help_text="pending, allowed, denied, expired or withdrawn")
    agent = serializers.CharField(source="agent.slug")
    team = serializers.CharField(source="team.slug")
    session = serializers.UUIDField(source="session_id", allow_null=True)
    session_id = serializers.CharField(source="session_external_id",
                                       help_text="Claude Code's session id")
    answered_by = serializers.CharField(source="answered_by.username", allow_null=True,
                                        default=None)

    class Meta:
        model = ApprovalRequest
        fields = ["id", "status", "team", "agent", "session", "session_id", "tool_name",
                  "tool_input", "cwd", "via", "created_at", "expires_at", "answered_at",
                  "answered_by", "always_allow", "message"]


class AnswerSerializer(serializers.Serializer):
    behavior = serializers.ChoiceField(choices=["allow", "deny"])
    always_allow = serializers.BooleanField(
        default=False, help_text="With allow: also allow this tool in the agent's project "
                                 "from now on (Claude Code's addRules, localSettings).")
    message = serializers.CharField(required=False, allow_blank=True, max_length=500,
                                    default="", help_text="With deny: told to the agent.")

    def validate(self, data):
        if data["always_allow"] and data["behavior"] != "allow":
            raise serializers.ValidationError({"always_allow": ["only with behavior allow"]})
        return data


@extend_schema_view(
    list=extend_schema(
        summary="Approval requests",
        description="Tool calls held for a team member's answer. `?status=open` (default): "
                    "those still waiting, oldest first; `?status=all`: every request, newest "
                    "first, with who answered and when (the audit).",
        parameters=[OpenApiParameter("status", str, enum=["open", "all"])],
        tags=["approvals"],
    ),
    retrieve=extend_schema(summary="One approval request", tags=["approvals"]),
)
class ApprovalViewSet(viewsets.ReadOnlyModelViewSet):
    permission_classes = [ApiAccess]
    throttle_classes = [ReadRateThrottle]
    serializer_class = ApprovalSerializer
    schema = VoightAutoSchema()
    pagination_class = None
    queryset = ApprovalRequest.objects.none()

    def get_exception_handler(self):
        return api_exception_handler

    def get_queryset(self):
        # `team_ids_for`, as every /v1/me view: a team key's caller is not a person.
        approvals = (ApprovalRequest.objects.for_teams(team_ids_for(self.request.user))
                     .select_related("agent", "team", "answered_by"))
        if self.action != "list":
            return approvals
        scope = self.request.query_params.get("status", "open")
        if scope == "open":
            return approvals.open().order_by("created_at", "id")
        if scope == "all":
            return approvals.order_by("-created_at", "-id")[:500]
        raise exceptions.ValidationError({"status": ["open or all"]})

    def get_object(self):
        try:
            pk = uuid.UUID(str(self.kwargs["pk"]))
        except ValueError:
            raise exceptions.NotFound("no such approval request") from None
        approval = self.get_queryset().filter(pk=pk).first()
        if approval is None:
            raise exceptions.NotFound("no such approval request")
        return approval

    @extend_schema(
        summary="Answer an approval request",
        description="Allow or deny a held tool call; the agent's hook returns Claude Code's "
                    "PermissionRequest decision at once. Members and admins of the team may "
                    "answer (viewers: 403); a closed request is a 409.",
        request=AnswerSerializer, responses={200: ApprovalSerializer}, tags=["approvals"],
    )
    @action(detail=True, methods=["post"])
    def answer(self, request, pk=None):
        approval = self.get_object()
        body = AnswerSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        user = request_actor(request)
        if user is None:
            raise exceptions.PermissionDenied("answer as a person: log in or use a key bound "
                                              "to a user")
        try:
            approval = services.approval_answer(
                approval, user, allow=body.validated_data["behavior"] == "allow",
                always_allow=body.validated_data["always_allow"],
                message=body.validated_data["message"])
        except services.ApprovalError as exc:
            error = exceptions.PermissionDenied if exc.status == 403 else _Conflict
            raise error(exc.message) from None
        return Response(ApprovalSerializer(self.get_queryset().get(pk=approval.pk)).data)


class _Conflict(exceptions.APIException):
    status_code = 409
    default_code = "conflict"
