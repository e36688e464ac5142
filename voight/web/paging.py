"""Page-number pagination whose total stops counting at a cap.

A list's exact COUNT(*) is a scan of every matching row (~100 ms for a week of traces at
500k); the pages only need "1–30 of 10,000+" and whether there is a next page. So the count
reads at most `cap + 1` rows (a LIMIT under the COUNT, which walks the list's own index),
and each page fetches one row more than it shows to know if another follows, also past the
cap.
"""

from __future__ import annotations

from django.core.paginator import EmptyPage, Page, PageNotAnInteger, Paginator
from django.utils.functional import cached_property

COUNT_CAP = 10_000


class CappedPage(Page):
    more = False

    def has_next(self) -> bool:
        return self.more


class CappedPaginator(Paginator):
    def __init__(self, object_list, per_page, cap: int = COUNT_CAP, **kwargs):
        super().__init__(object_list, per_page, **kwargs)
        self.cap = cap

    @cached_property
    def count(self) -> int:
        # Any cap + 1 matching rows will do: without the ORDER BY nothing is sorted and the
        # scan stops at the cap.
        return self.object_list.order_by()[: self.cap + 1].count()

    @property
    def capped(self) -> bool:
        return self.count > self.cap

    def validate_number(self, number):
        if not self.capped:
            return super().validate_number(number)
        # Past the cap any page may still hold rows: only the lower bound is known.
        try:
            number = int(number)
        except (TypeError, ValueError):
            raise PageNotAnInteger("That page number is not an integer") from None
        if number < 1:
            raise EmptyPage("That page number is less than 1")
        return number

    def page(self, number):
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        rows = list(self.object_list[bottom:bottom + self.per_page + 1])
        page = CappedPage(rows[: self.per_page], number, self)
        page.more = len(rows) > self.per_page
        return page
