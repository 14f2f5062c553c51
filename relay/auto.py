"""
`model: "auto"`: the cheapest tier that can serve the request.

The tiers are the staff's list (relay.models.AutoTiers, in the catalog
snapshot), or the customer's own `models: [...]` in the body, taken in the
order given: cheapest, least capable first. Either way, a tier qualifies
only if the key may use it, the endpoint serves it, and the request fits it:

- the prompt (the relay's hold estimate, relay.endpoints) plus the output
  asked for fits the model's context window;
- the output asked for (max_tokens, max_completion_tokens,
  max_output_tokens) is within the model's max output. On /v1/messages,
  where the relay caps max_tokens at a model's limit (Claude Code asks
  32,000 of every model), that rule yields when no tier meets it.

Among qualifying tiers the request gets the first at or above the lowest
its complexity allows (the highest qualifying one below, if none does).
Complexity is a level from 0 to 2, one point for each of:

- structure: tools (or legacy functions), or a JSON schema answer
  (response_format json_schema, Responses text.format, Anthropic
  output_format);
- one kind of cue in the last user message's text; two kinds or more give
  two points. The kinds: a code fence, a stack trace, reasoning words
  ("step by step", "prove", "derive"...), a numbered list of five steps or
  more.

Level 0 allows the first tier, level 1 the middle one (rounded down),
level 2 the last: with nano, mini and full, a plain question goes to nano,
tools or one cue to mini, tools and a cue, or two cues, to full.

The chosen model is then checked, priced, held, forwarded, answered under
its own name and recorded exactly as if the client had named it; the usage
record also says `routed_from: "auto"`.
"""

import re
from dataclasses import dataclass, replace

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext

from accounts.auth import KeyIdentity
from audit.services import audit_record, reason_required
from billing.models import ModelPrice
from relay import bridge, catalog, errors
from relay.catalog import Catalog, ModelInfo
from relay.endpoints import Endpoint
from relay.models import AutoTiers, Channel

NAME = "auto"
# What a customer's candidate list may hold.
MAX_CANDIDATES = 16
MAX_NAME = 256
# The endpoints whose requests auto reads (count_tokens is Messages').
ENDPOINTS = ("chat.completions", "responses", "messages")
# Output limits by endpoint, the first present wins.
OUTPUT_FIELDS = {
    "chat.completions": ("max_completion_tokens", "max_tokens"),
    "responses": ("max_output_tokens",),
    "messages": ("max_tokens",),
}
TOP_LEVEL = 2
# Cues are looked for in the start of the last user message only: enough
# for any question, bounded on a pasted 100 KB log.
SCAN_CHARS = 65_536
LONG_LIST = 5

CUES = {
    "code": re.compile(r"```|~~~"),
    "stack trace": re.compile(
        r"Traceback \(most recent call last\)"
        r"|^\s+at [\w$.<>/]+\(.*:\d+(?::\d+)?\)"
        r"|^\s+File \"[^\"]+\", line \d+"
        r"|Exception in thread \""
        r"|^panic: |^goroutine \d+ \["
        r"|^error\[E\d{4}\]"
        r"|^\w+(?:\.\w+)*(?:Error|Exception): ",
        re.MULTILINE,
    ),
    "reasoning": re.compile(
        r"\bstep[- ]by[- ]step\b|\bprove\b|\bproofs?\b|\bderive\b|\bderivation\b"
        r"|\bthink (?:it )?through\b|\breason (?:it )?through\b"
        r"|一步一步|逐步|证明|推导",
        re.IGNORECASE,
    ),
}
NUMBERED = re.compile(r"^\s*\d{1,3}[.)]\s+\S", re.MULTILINE)


def priced(identity: KeyIdentity, payload: dict, endpoint: Endpoint, snapshot: Catalog):
    """
    relay.intake.priced_model for `model: "auto"`: choose the tier, name it
    in `payload`, and return what priced_model returns for it, the model
    marked as routed by auto.
    """
    from relay.intake import priced_model  # which calls this for "auto"

    choose(identity, payload, endpoint, snapshot)
    model, routes = priced_model(identity, payload, endpoint, snapshot)
    return replace(model, routed_from=NAME), routes


def choose(
    identity: KeyIdentity, payload: dict, endpoint: Endpoint, snapshot: Catalog
) -> str:
    """Return the model that serves this `auto` request, set as its
    `payload["model"]` (and `models` removed); or refuse it."""
    if endpoint.name not in ENDPOINTS:
        raise errors.model_not_supported(
            f"The model `{NAME}` is served on POST /v1/chat/completions, "
            "/v1/responses and /v1/messages only."
        )
    names = _candidates(payload, snapshot)
    prompt = _prompt_estimate(payload, endpoint)
    output = _output_asked(payload, endpoint)
    floor = complexity(payload, endpoint) * (len(names) - 1) // TOP_LEVEL
    found, unfit = _pick(identity, names, endpoint, snapshot, prompt, output, floor)
    if found is None and output is not None and endpoint.name == "messages":
        found, _ = _pick(identity, names, endpoint, snapshot, prompt, None, floor)
    if found is None:
        raise _refusal(unfit)
    payload["model"] = found
    return found


def complexity(payload: dict, endpoint: Endpoint) -> int:
    """Return the request's level, 0 to TOP_LEVEL (see the module's doc)."""
    level = 1 if structured(payload) else 0
    level += min(len(cues(last_user_text(payload, endpoint.name))), TOP_LEVEL)
    return min(level, TOP_LEVEL)


def structured(payload: dict) -> bool:
    """Whether the request has tools or asks for an answer by JSON schema."""
    if payload.get("tools") or payload.get("functions"):
        return True
    text = payload.get("text")
    formats = (
        payload.get("response_format"),  # chat completions
        text.get("format") if isinstance(text, dict) else None,  # Responses
        payload.get("output_format"),  # Anthropic's structured outputs
    )
    return any(
        isinstance(found, dict) and found.get("type") == "json_schema"
        for found in formats
    )


def cues(text: str) -> set[str]:
    """Return the kinds of code and reasoning cues in `text`."""
    text = text[:SCAN_CHARS]
    found = {kind for kind, pattern in CUES.items() if pattern.search(text)}
    if len(NUMBERED.findall(text)) >= LONG_LIST:
        found.add("steps")
    return found


def last_user_text(payload: dict, endpoint: str) -> str:
    """Return the text the user wrote in the request's last user message
    (not tool results, images or files)."""
    if endpoint == "responses":
        turns = payload.get("input")
        if isinstance(turns, str):
            return turns
    else:
        turns = payload.get("messages")
    if not isinstance(turns, list):
        return ""
    for turn in reversed(turns):
        if isinstance(turn, dict) and turn.get("role") == "user":
            return _text(turn.get("content"))
    return ""


def _text(content) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    return "\n".join(
        part["text"]
        for part in content
        if isinstance(part, dict)
        and part.get("type") in ("text", "input_text")
        and isinstance(part.get("text"), str)
    )


def _candidates(payload: dict, snapshot: Catalog) -> tuple[str, ...]:
    """Return the customer's `models` (taken out of the body, which goes
    upstream), or the staff's tiers."""
    if "models" not in payload:
        if not snapshot.auto_tiers:
            raise errors.model_not_found(NAME)
        return snapshot.auto_tiers
    names = payload.pop("models")
    valid = (
        isinstance(names, list)
        and 0 < len(names) <= MAX_CANDIDATES
        and all(
            isinstance(name, str) and 0 < len(name) <= MAX_NAME and name != NAME
            for name in names
        )
        and len(set(names)) == len(names)
    )
    if not valid:
        raise errors.bad_request(
            f"'models' must be an array of 1 to {MAX_CANDIDATES} different model "
            f"names other than `{NAME}`, cheapest first.",
            param="models",
        )
    return tuple(names)


def _prompt_estimate(payload: dict, endpoint: Endpoint) -> int:
    try:
        return endpoint.prompt_tokens(payload)
    except (KeyError, TypeError, AttributeError, ValueError):
        # A malformed body: relay.validation refuses it, naming the field,
        # once a model is chosen.
        return 0


def _output_asked(payload: dict, endpoint: Endpoint) -> int | None:
    for name in OUTPUT_FIELDS[endpoint.name]:
        value = payload.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


@dataclass(frozen=True, slots=True)
class Unfit:
    """A tier that cannot serve the request, and why."""

    name: str
    reason: str
    # The request is too big for it (rather than the key or the catalog).
    by_size: bool = False
    not_allowed: bool = False


def _pick(
    identity: KeyIdentity,
    names: tuple[str, ...],
    endpoint: Endpoint,
    snapshot: Catalog,
    prompt: int,
    output: int | None,
    floor: int,
) -> tuple[str | None, list[Unfit]]:
    """Return the first qualifying tier from `floor` up (else the highest
    below it), and the tiers that do not qualify."""
    fits: list[tuple[int, str]] = []
    unfit: list[Unfit] = []
    for position, name in enumerate(names):
        why = _unfit(identity, name, endpoint, snapshot, prompt, output)
        if why is None:
            fits.append((position, name))
        else:
            unfit.append(why)
    above = [name for position, name in fits if position >= floor]
    if above:
        return above[0], unfit
    return (fits[-1][1] if fits else None), unfit


def _unfit(
    identity: KeyIdentity,
    name: str,
    endpoint: Endpoint,
    snapshot: Catalog,
    prompt: int,
    output: int | None,
) -> Unfit | None:
    if identity.allowed_models and name not in identity.allowed_models:
        return Unfit(name, "not allowed for this API key", not_allowed=True)
    model = snapshot.models.get(name)
    served = snapshot.channels.get(name, ())
    if model is None or not served:
        return Unfit(name, "not served here")
    model = model.current()
    if not endpoint.serves(model) or not any(
        bridge.route(endpoint, channel) is not None for channel in served
    ):
        return Unfit(name, f"not served on {endpoint.path_shown}")
    return _too_big(model, prompt, output)


def _too_big(model: ModelInfo, prompt: int, output: int | None) -> Unfit | None:
    limit = model.max_output_tokens
    if output is not None and output > limit:
        return Unfit(
            model.name,
            f"{output} output tokens asked, it writes at most {limit}",
            by_size=True,
        )
    window = model.context_window
    needed = prompt + min(output or 0, limit)
    if window and needed > window:
        return Unfit(
            model.name,
            f"about {needed} tokens of prompt and output exceed its "
            f"{window}-token context window",
            by_size=True,
        )
    return None


def _refusal(unfit: list[Unfit]) -> errors.RelayError:
    reasons = "; ".join(f"`{tier.name}`: {tier.reason}" for tier in unfit)
    message = f"No model that `{NAME}` chooses from can serve this request ({reasons})."
    if any(tier.by_size for tier in unfit):
        return errors.RelayError(400, message, code="auto_no_model_fits", param="model")
    if all(tier.not_allowed for tier in unfit):
        return errors.forbidden(message, code="model_not_allowed")
    return errors.RelayError(404, message, code="model_not_found", param="model")


def listed(identity: KeyIdentity, snapshot: Catalog) -> list[dict]:
    """Return /v1/models' entry for `auto` if the key may use one of the
    staff's tiers on some endpoint, else nothing."""
    usable = [
        model
        for name in snapshot.auto_tiers
        if (model := snapshot.models.get(name)) is not None
        and snapshot.channels.get(name)
        and (not identity.allowed_models or name in identity.allowed_models)
        and not model.generates_images
        and model.max_output_tokens > 0
    ]
    if not usable:
        return []
    created = max(model.created for model in usable)
    return [
        {"id": NAME, "object": "model", "created": created, "owned_by": "switchboard"}
    ]


# -- the staff's tier list ---------------------------------------------------


def tiers_clean(names) -> list[str]:
    """Return `names` as a tier list to store, or raise ValidationError
    naming what is wrong: each a text model of the catalog, once."""
    problems = []
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValidationError(gettext("The tiers must be a list of model names."))
    names = [name.strip() for name in names if name.strip()]
    if len(names) > AutoTiers.MAX_TIERS:
        problems.append(
            gettext("At most %(count)s tiers.") % {"count": AutoTiers.MAX_TIERS}
        )
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        problems.append(gettext("Listed twice: %(models)s.") % _listing(repeated))
    prices = {
        price.model: price for price in ModelPrice.objects.filter(model__in=names)
    }
    unknown = [name for name in names if name not in prices]
    if unknown:
        problems.append(gettext("Not in the catalog: %(models)s.") % _listing(unknown))
    no_text = [
        name
        for name, price in prices.items()
        if price.max_output_tokens == 0
        or price.image_prices
        or price.image_output_tokens
    ]
    if no_text:
        problems.append(
            gettext("Not text generation models: %(models)s.") % _listing(no_text)
        )
    if problems:
        raise ValidationError(problems)
    return names


def _listing(names: list[str]) -> dict:
    return {"models": ", ".join(names)}


def auto_tiers_set(*, tiers: list[str], actor, reason: str) -> bool:
    """Store the tier list `auto` chooses from, audited; return whether it
    changed. Relay processes use it from their next catalog reload."""
    tiers = tiers_clean(tiers)
    reason = reason_required(reason)
    with transaction.atomic():
        row = (
            AutoTiers.objects.select_for_update().filter(pk=AutoTiers.SINGLETON).first()
        )
        before = list(row.tiers) if row is not None else list(AutoTiers.DEFAULT)
        if before == tiers:
            return False
        AutoTiers.objects.update_or_create(
            pk=AutoTiers.SINGLETON, defaults={"tiers": tiers}
        )
        audit_record(
            actor=actor,
            action="auto_tiers.change",
            target=f"autotiers:{AutoTiers.SINGLETON}",
            summary=f"set the auto model's tiers to {tiers_text(tiers)} "
            f"(were {tiers_text(before)})",
            reason=reason,
            data={"before": before, "after": tiers},
        )
    catalog.forget()
    return True


def tiers_text(tiers) -> str:
    return " → ".join(tiers) or "none (auto off)"


@dataclass(frozen=True)
class TierRow:
    """One tier as the console shows it."""

    model: str
    price: ModelPrice | None
    served: bool  # some enabled channel serves it

    @property
    def usable(self) -> bool:
        return self.price is not None and self.price.is_active and self.served


def tiers_overview() -> tuple[list[TierRow], bool]:
    """Return the tiers in force, each with its price and whether a channel
    serves it, and whether they are the default (never set by staff)."""
    stored = AutoTiers.objects.filter(pk=AutoTiers.SINGLETON).first()
    names = list(stored.tiers) if stored is not None else list(AutoTiers.DEFAULT)
    prices = {
        price.model: price for price in ModelPrice.objects.filter(model__in=names)
    }
    served = {
        name
        for channel_models in Channel.objects.filter(is_enabled=True).values_list(
            "model_names", flat=True
        )
        for name in channel_models or ()
    }
    rows = [TierRow(name, prices.get(name), name in served) for name in names]
    return rows, stored is None
