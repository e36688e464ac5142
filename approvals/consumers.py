"""`/ws/approvals/`: the Needs-you page's live feed. One group per team
(`approvals.live`); each message names the requests that changed, re-read here through the
viewer's scope (a removed membership stops the data at once) and rendered with the page's
own partials: an open request as its card, a closed one as its audit row (and no card)."""

from __future__ import annotations

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.contrib.auth import get_user_model
from django.template.loader import render_to_string

from approvals.live import MESSAGE_TYPE, approvals_group
from approvals.selectors import answering_team_ids, approvals_for
from sessions.selectors import team_ids_for
from sessions.views.approvals import decorate

MAX_IDS = 100


def render_changes(user, ids: list[str]) -> dict | None:
    if not get_user_model().objects.filter(pk=user.pk, is_active=True).exists():
        return None
    approvals = decorate(approvals_for(user).filter(pk__in=ids[:MAX_IDS]),
                         answering_team_ids(user))
    if not approvals:
        return None
    cards, audit = [], []
    for a in approvals:
        if a.is_open:
            cards.append({"id": str(a.pk),
                          "html": render_to_string("sessions/partials/approval_card.html",
                                                   {"a": a})})
        else:
            cards.append({"id": str(a.pk), "html": None})
            audit.append({"id": str(a.pk),
                          "html": render_to_string("sessions/partials/approval_row.html",
                                                   {"a": a})})
    return {"type": MESSAGE_TYPE, "cards": cards, "audit": audit}


class ApprovalsConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        self.user = self.scope.get("user")
        if not getattr(self.user, "is_authenticated", False):
            await self.close(code=4401)
            return
        self.groups_joined = [approvals_group(t) for t in
                              await database_sync_to_async(team_ids_for)(self.user)]
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        """The page sends nothing; anything it sends is ignored."""

    async def approvals_changed(self, event):
        payload = await database_sync_to_async(render_changes)(
            self.user, [str(i) for i in event.get("approvals", [])])
        if payload:
            await self.send_json(payload)
