"""
The usage filter: the query parameters that narrow a usage log, parsed and
refused alike wherever a log is browsed. The portal's usage page and the
management API narrow one tenant's records with UsageFilter; the console's
explorer, across tenants, with StaffUsageFilter. A bad parameter is refused
with a message a person can act on, never ignored.

`start` and `end` are ISO 8601 dates or datetimes (naive ones in the site's
time zone); `start` is inclusive, `end` exclusive, and a date as `end`
includes that whole day. Absent or empty parameters do not filter.
"""

from datetime import UTC, date, datetime, time, timedelta

import django_filters
from django import forms
from django.db.models import Q
from django.db.models.fields.json import KeyTextTransform
from django.db.models.lookups import Exact
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field

from accounts import keys
from relay.metering import END_USER_MAX, TAG_KEY_MAX, TAG_VALUE_MAX
from relay.models import UsageRecord

ID_MAX = 2**63
# Enough digits for any id below ID_MAX; longer text is not converted at all.
_ID_DIGITS = len(str(ID_MAX))
# How much of a refused value a message repeats.
_ECHO = 40
_MODEL_MAX_LENGTH = UsageRecord._meta.get_field("model").max_length
# A tag as the filter takes it: key=value.
_TAG_MAX_LENGTH = TAG_KEY_MAX + 1 + TAG_VALUE_MAX


def moment_parse(raw: str, *, end: bool = False) -> datetime:
    """
    An ISO 8601 date or datetime; naive ones are in the site's time zone. A
    date as the `end` of a range means the end of that day (the start of the
    next). Raise ValueError.
    """
    if len(raw) == 10:
        day = date.fromisoformat(raw)
        if end:
            day += timedelta(days=1)
        moment = datetime.combine(day, time.min)
    else:
        moment = datetime.fromisoformat(raw)
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, timezone.get_current_timezone())
    # In UTC: PostgreSQL refuses offsets beyond 15:59 that ISO 8601 allows.
    return moment.astimezone(UTC)


def id_parse(raw: str) -> int | None:
    """A database id from text, or None."""
    if raw.isascii() and raw.isdigit() and len(raw) <= _ID_DIGITS:
        number = int(raw)
        return number if 0 < number < ID_MAX else None
    return None


class ParamField(forms.CharField):
    """
    One query parameter: its text, stripped, parse()d; absent or empty, None
    (it does not filter).
    """

    def to_python(self, value):
        raw = super().to_python(value)
        return self.parse(raw) if raw else None

    def parse(self, raw: str):
        return raw

    def refuse(self, message: str, raw: str, **params) -> forms.ValidationError:
        """A refusal of `raw`, which `message` may repeat as %(value)s."""
        return forms.ValidationError(
            message, code="invalid", params={"value": raw[:_ECHO], **params}
        )


class MomentField(ParamField):
    """A moment_parse'd datetime; with `end`, a date means the end of it."""

    def __init__(self, *, end: bool = False, **kwargs):
        self.end = end
        super().__init__(**kwargs)

    def parse(self, raw: str) -> datetime:
        try:
            return moment_parse(raw, end=self.end)
        except (ValueError, OverflowError):
            raise self.refuse(
                '"%(value)s" is not an ISO 8601 date or datetime, e.g. '
                '"2025-01-31" or "2025-01-31T12:00:00Z".',
                raw,
            ) from None


class IdField(ParamField):
    """The id of one `noun` ("an API key"): a positive integer."""

    def __init__(self, *, noun: str, **kwargs):
        self.noun = noun
        super().__init__(**kwargs)

    def parse(self, raw: str) -> int:
        number = id_parse(raw)
        if number is None:
            raise self.refuse(
                '"%(value)s" is not %(noun)s id (a positive integer).',
                raw,
                noun=self.noun,
            )
        return number


class ModelNameField(ParamField):
    def parse(self, raw: str) -> str:
        if not raw.isprintable():
            # PostgreSQL refuses NUL in a query; no model name has controls.
            raise self.refuse("A model name has no control characters.", raw)
        if len(raw) > _MODEL_MAX_LENGTH:
            raise self.refuse(
                f"A model name has at most {_MODEL_MAX_LENGTH} characters.", raw
            )
        return raw


class TextField(ParamField):
    """Printable text of at most `max_length` characters, named `noun`."""

    def __init__(self, *, noun: str, max_length: int, **kwargs):
        self.noun = noun
        super().__init__(**kwargs)
        # After super(): a form's max_length would refuse before parse() says why.
        self.limit = max_length

    def parse(self, raw: str) -> str:
        if not raw.isprintable():
            # PostgreSQL refuses NUL in a query.
            raise self.refuse(
                "%(noun)s has no control characters.", raw, noun=self.noun
            )
        if len(raw) > self.limit:
            raise self.refuse(
                "%(noun)s has at most %(limit)s characters.",
                raw,
                noun=self.noun,
                limit=self.limit,
            )
        return raw


class TagField(TextField):
    """A tag as key=value, or a key alone (any value): (key, value or None)."""

    def parse(self, raw: str) -> tuple[str, str | None]:
        key, equals, value = super().parse(raw).partition("=")
        return key.strip(), value.strip() if equals else None


class StatusField(django_filters.fields.ChoiceField):
    """One of its choices; a refusal lists them all."""

    def to_python(self, value) -> str | None:
        return super().to_python(value).strip() or None

    def validate(self, value):
        if value and not self.valid_value(value):
            names = ", ".join(str(name) for name, _ in self.choices if name)
            raise forms.ValidationError(
                '"%(value)s" is not a status; use one of: %(names)s',
                code="invalid_choice",
                params={"value": value[:_ECHO], "names": names},
            )


class KeyRefField(ParamField):
    """
    An API key as staff name it: its id, the start of its prefix
    ("sk-sb-…") or the whole secret; cleaned to the Q that finds it.
    """

    def parse(self, raw: str) -> Q:
        if id_parse(raw) is not None:
            return Q(api_key_id=id_parse(raw))
        if raw.startswith(keys.KEY_PREFIX) and len(raw) > keys.DISPLAY_CHARS:
            # A whole secret pasted: its digest names exactly one key.
            return Q(api_key__digest=keys.digest(raw))
        if raw.isprintable() and raw.isascii() and len(raw) <= keys.DISPLAY_CHARS:
            return Q(api_key__prefix__startswith=raw)
        raise self.refuse('"%(value)s" is not an API key id or prefix.', raw)


class MomentFilter(django_filters.CharFilter):
    field_class = MomentField


class TextFilter(django_filters.CharFilter):
    field_class = TextField


class TagFilter(django_filters.Filter):
    field_class = TagField

    def filter(self, qs, value):
        if value is None:
            return qs
        key, tagged = value
        if tagged is None:
            return qs.filter(tags__has_key=key)
        # The key as a parameter, never as a lookup path: it is the caller's.
        return qs.filter(Exact(KeyTextTransform(key, "tags"), tagged))


class IdFilter(django_filters.NumberFilter):
    field_class = IdField


class ModelNameFilter(django_filters.CharFilter):
    field_class = ModelNameField


class StatusFilter(django_filters.ChoiceFilter):
    field_class = StatusField


class KeyRefFilter(django_filters.Filter):
    field_class = KeyRefField

    def filter(self, qs, value):
        return qs if value is None else qs.filter(value)


class RangeForm(forms.Form):
    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("start"), cleaned.get("end")
        if start is not None and end is not None and start >= end:
            self.add_error("end", "The end of the range must be after its start.")
        return cleaned


def _printable_pattern() -> str:
    """
    The schema's pattern of a str.isprintable() text, as ranges of the Basic
    Multilingual Plane in \\u escapes (which ECMA 262 and Python read alike).
    """
    ranges, start = [], None
    for code in range(0x10001):
        printable = code < 0x10000 and chr(code).isprintable()
        if printable and start is None:
            start = code
        elif not printable and start is not None:
            ranges.append(rf"\u{start:04x}-\u{code - 1:04x}")
            start = None
    return f"^[{''.join(ranges)}]*$"


def _moment_schema(description: str) -> dict:
    """The API schema of a MomentField: an ISO 8601 date or datetime."""
    return {
        "anyOf": [
            {"type": "string", "format": "date"},
            {"type": "string", "format": "date-time"},
        ],
        "description": description,
    }


class UsageFilter(django_filters.FilterSet):
    """
    A tenant's usage log narrowed by time, key, model and status. The
    queryset it narrows is already the tenant's: a key of another tenant
    finds nothing.
    """

    # The schema of each parameter (the API documents them) says what its
    # field accepts; "empty means absent" is allowEmptyValue, added by
    # api.schema.
    start = extend_schema_field(
        _moment_schema("ISO 8601 date or datetime: records at or after it.")
    )(
        MomentFilter(
            field_name="created_at",
            lookup_expr="gte",
            label="From",
            help_text="ISO 8601 date or datetime: records at or after it.",
        )
    )
    end = extend_schema_field(
        _moment_schema(
            "ISO 8601 datetime: records before it; a date: records up to the end "
            "of that day. Must be after `start`."
        )
    )(
        MomentFilter(
            field_name="created_at",
            lookup_expr="lt",
            end=True,
            label="To",
            help_text="ISO 8601 datetime: records before it; a date: records up "
            "to the end of that day.",
        )
    )
    # api_key__id, not api_key: the query needs no join.
    key = extend_schema_field(
        {
            "type": "integer",
            "minimum": 1,
            "maximum": ID_MAX - 1,
            "description": "An API key's id.",
        }
    )(
        IdFilter(
            field_name="api_key__id",
            noun="an API key",
            label="API key",
            help_text="An API key's id.",
        )
    )
    model = extend_schema_field(
        {
            "type": "string",
            "maxLength": _MODEL_MAX_LENGTH,
            "pattern": _printable_pattern(),
            "description": "A model name: printable characters.",
        }
    )(ModelNameFilter(label="Model", help_text="A model name."))
    status = StatusFilter(
        choices=UsageRecord.Status.choices,
        empty_label="Any status",
        label="Status",
        help_text="How the request ended.",
    )
    end_user = extend_schema_field(
        {
            "type": "string",
            "maxLength": END_USER_MAX,
            "pattern": _printable_pattern(),
            "description": "An end user, as the request named it (OpenAI's "
            "`user`, Anthropic's `metadata.user_id`): printable characters.",
        }
    )(
        TextFilter(
            noun="An end user",
            max_length=END_USER_MAX,
            label="End user",
            help_text="An end user, as the request named it.",
        )
    )
    tag = extend_schema_field(
        {
            "type": "string",
            "maxLength": _TAG_MAX_LENGTH,
            "pattern": _printable_pattern(),
            "description": "A tag of the request's `metadata`: `key=value`, or "
            "`key` alone for any value.",
        }
    )(
        TagFilter(
            noun="A tag",
            max_length=_TAG_MAX_LENGTH,
            label="Tag",
            help_text="key=value, or key alone for any value.",
        )
    )

    class Meta:
        model = UsageRecord
        fields = ["start", "end", "key", "model", "status", "end_user", "tag"]
        form = RangeForm

    @property
    def problems(self) -> dict[str, str]:
        """Each refused parameter's message; empty when all are good."""
        return {name: errors[0] for name, errors in self.errors.items()}


# "error": every request that did not end well.
STAFF_STATUSES = [("error", "error"), *UsageRecord.Status.choices]


class StaffUsageFilter(UsageFilter):
    """
    Every tenant's usage, narrowed also by tenant and channel, a key named
    by id, prefix or secret, and the status "error".
    """

    tenant = IdFilter(field_name="tenant_id", noun="a tenant", label="Tenant")
    channel = IdFilter(field_name="channel_id", noun="a channel", label="Channel")
    key = KeyRefFilter(label="Key id or prefix")
    status = StatusFilter(
        choices=STAFF_STATUSES, empty_label="any", label="Status", method="by_status"
    )

    class Meta(UsageFilter.Meta):
        fields = ["tenant", "key", "model", "channel", "status", "start", "end"]

    def by_status(self, records, name, value):
        if value == "error":
            return records.exclude(status=UsageRecord.Status.OK)
        return records.filter(status=value)
