"""Customer resolution: which ChartMogul customer a Close lead's tasks belong to.

Rules, first match wins:
1. the lead custom field named in CLOSE_CUSTOMER_FIELD holds a ChartMogul customer UUID;
2. a customer whose external_id is the Close lead id, within CHARTMOGUL_DATA_SOURCE_UUID;
3. the lead's contact emails through customer search: exactly one distinct customer wins;
4. with CREATE_MISSING_CUSTOMERS=true and a data source, create the customer (a lead).
A match is cached (DynamoDB with TTL, and process memory). No match is never cached: the
parked task is retried later and the customer may exist by then.

Tasks follow their lead's match (`for_task`): every event of a mirrored task asks the cache
too, so once the cached match is older than CUSTOMER_CACHE_TTL_SECONDS the lead is resolved
again, and a task whose customer changed (the custom field was corrected, customers were
merged in ChartMogul) is recreated under the new one on its next event.
"""

from __future__ import annotations

from dataclasses import dataclass

from tasksync.config import EngineSettings
from tasksync.errors import PermanentApiError
from tasksync.logic.ports import ChartMogulApi, CloseApi, LookupCache
from tasksync.models.close import CloseLead


@dataclass(frozen=True)
class CustomerMatch:
    customer_uuid: str | None
    rule: str  # cache | custom_field | external_id | email | created | link | none | ambiguous
    reason: str | None = None

    @property
    def found(self) -> bool:
        return self.customer_uuid is not None


@dataclass(frozen=True)
class LinkedCustomer:
    """The customer a mirrored task is under, and the lead it was resolved for."""

    customer_uuid: str
    lead_id: str


@dataclass(eq=False)
class CustomerResolver:
    settings: EngineSettings
    close: CloseApi
    chartmogul: ChartMogulApi
    cache: LookupCache

    def resolve(self, lead_id: str | None) -> CustomerMatch:
        if not lead_id:
            return CustomerMatch(None, "none", "the Close task has no lead")
        cached = self.cache.get_customer(lead_id)
        if cached:
            return CustomerMatch(cached, "cache")
        lead = self.close.get_lead(lead_id)
        match = self._match(lead)
        if match.customer_uuid:
            self.cache.put_customer(lead_id, match.customer_uuid, self.settings.customer_cache_ttl_seconds)
        return match

    def for_task(self, lead_id: str | None, linked: LinkedCustomer | None) -> CustomerMatch:
        """The customer a task of ``lead_id`` belongs to now.

        ``linked`` is the customer the task is mirrored under and the lead it was resolved for.
        It is only a fallback: when the task is still on that lead and a fresh resolution finds
        no (or several) customers, the task stays where it is rather than a live task parking
        because a re-check failed. A task on another lead never keeps the old customer.
        """
        match = self.resolve(lead_id)
        if not match.found and linked is not None and lead_id and linked.lead_id == lead_id:
            return CustomerMatch(linked.customer_uuid, "link", match.reason)
        return match

    def forget(self, lead_id: str) -> None:
        """Drop a cached match (ChartMogul said the customer does not exist)."""
        self.cache.forget_customer(lead_id)

    def _match(self, lead: CloseLead) -> CustomerMatch:
        settings = self.settings
        if settings.close_customer_field:
            value = lead.custom_field(settings.close_customer_field)
            if isinstance(value, list):
                value = value[0] if len(value) == 1 else None
            if isinstance(value, str) and value.strip().startswith("cus_"):
                return CustomerMatch(value.strip(), "custom_field")
        data_source = settings.chartmogul_data_source_uuid
        if data_source:
            by_id = self.chartmogul.list_customers(external_id=lead.id, data_source_uuid=data_source)
            distinct = sorted({c.uuid for c in by_id})
            if len(distinct) == 1:
                return CustomerMatch(distinct[0], "external_id")
            if len(distinct) > 1:
                return CustomerMatch(
                    None, "ambiguous", f"{len(distinct)} ChartMogul customers have external_id {lead.id}"
                )
        found: set[str] = set()
        for email in lead.emails:
            found.update(c.uuid for c in self.chartmogul.search_customers_by_email(email))
        if len(found) == 1:
            return CustomerMatch(found.pop(), "email")
        if len(found) > 1:
            return CustomerMatch(
                None,
                "ambiguous",
                f"lead {lead.id}'s contact emails match {len(found)} ChartMogul customers: {', '.join(sorted(found))}",
            )
        if settings.create_missing_customers and data_source:
            return self._create(lead, data_source)
        emails = len(lead.emails)
        return CustomerMatch(
            None,
            "none",
            f"no ChartMogul customer matches lead {lead.id} ({emails} contact email{'s' if emails != 1 else ''})",
        )

    def _create(self, lead: CloseLead, data_source: str) -> CustomerMatch:
        name = lead.display_name or lead.name or lead.id
        email = lead.emails[0] if lead.emails else None
        try:
            customer = self.chartmogul.create_customer(
                data_source_uuid=data_source, external_id=lead.id, name=name, email=email
            )
        except PermanentApiError:
            # Most likely a concurrent create won ("external ID ... already exists"): look again.
            again = self.chartmogul.list_customers(external_id=lead.id, data_source_uuid=data_source)
            if len(again) == 1:
                return CustomerMatch(again[0].uuid, "external_id")
            raise
        return CustomerMatch(customer.uuid, "created")
