"""
Money units. Every amount is an integer number of nano-USD (1e-9 USD).

Prices are published in USD per 1M tokens; every published price ($0.025 per
1M tokens and up, in steps of $0.001) is a whole number of nano-USD per token,
so token charges are exact integers.
"""

from decimal import ROUND_HALF_UP, Decimal

NANO_PER_USD = 1_000_000_000
# Stripe counts US dollars in cents.
NANO_PER_CENT = 10_000_000
TOKENS_PER_PRICE_UNIT = 1_000_000


class InexactPrice(ValueError):
    pass


def usd_to_nano(usd: Decimal | str | int) -> int:
    """Return `usd` in nano-USD; refuse amounts finer than one nano-USD."""
    value = Decimal(usd) * NANO_PER_USD
    if value != value.to_integral_value():
        raise InexactPrice(f"{usd} USD is not a whole number of nano-USD")
    return int(value)


def nano_per_token(usd_per_million_tokens: Decimal | str) -> int:
    """Return the nano-USD cost of one token at a price in USD per 1M tokens."""
    value = Decimal(usd_per_million_tokens) * NANO_PER_USD / TOKENS_PER_PRICE_UNIT
    if value != value.to_integral_value():
        raise InexactPrice(
            f"${usd_per_million_tokens} per 1M tokens is not a whole number of "
            "nano-USD per token (use at most 3 decimals)"
        )
    return int(value)


def cents_to_nano(cents: int) -> int:
    return cents * NANO_PER_CENT


def usd_string(nano: int) -> str:
    """Return `nano` as an exact plain decimal for machines (CSV, JSON):
    1234 -> "0.000001234"."""
    # Integer arithmetic, exact, and a tenth of Decimal's cost: every answer
    # tells its cost and balance this way.
    whole, fraction = divmod(abs(nano), NANO_PER_USD)
    return f"{'-' if nano < 0 else ''}{whole}.{fraction:09d}"


def format_usd_amount(usd: Decimal, *, grouping: bool = False) -> str:
    """Return `usd` for people, exactly: whole cents with two decimals
    ("$5.00"), finer amounts with every digit they need ("$4.9999999")."""
    sign = "-" if usd < 0 else ""
    usd = abs(usd)
    cents = usd.quantize(Decimal("0.01"))
    shown = cents if usd == cents else usd.normalize()
    return f"{sign}${shown:,f}" if grouping else f"{sign}${shown:f}"


def format_usd_exact(nano: int, *, grouping: bool = False) -> str:
    """format_usd_amount of an amount in nano-USD."""
    return format_usd_amount(Decimal(nano).scaleb(-9), grouping=grouping)


def format_usd(nano: int, places: int = 6) -> str:
    """Return `nano` as a USD string such as "$1.234567" or "-$0.000100"."""
    quantum = Decimal(1).scaleb(-places)
    usd = (Decimal(abs(nano)) / NANO_PER_USD).quantize(quantum)
    return f"{'-' if nano < 0 else ''}${usd:f}"


def format_usd_full(nano: int) -> str:
    """Return `nano` exactly, with all nine decimals: the figure shown on
    hover next to format_usd_human ("$0.004215000", "$1,234.500000000")."""
    sign = "-" if nano < 0 else ""
    return f"{sign}${Decimal(abs(nano)).scaleb(-9):,.9f}"


def format_usd_human(nano: int) -> str:
    """
    Return `nano` as people read money: whole cents from $1 up
    ("$1,234.50"), two significant digits below (at most nine decimals) so
    that a tiny charge never reads $0.00 ("$0.0042", "$0.000015").
    Rounded half up; format_usd_full gives the exact figure.
    """
    sign = "-" if nano < 0 else ""
    size = abs(nano)
    if size == 0 or size >= NANO_PER_USD:
        places = 2
    else:
        # A number of nano-USD with d digits has its first significant digit
        # at decimal 10 - d; keep one more.
        places = min(9, max(2, 11 - len(str(size))))
    usd = Decimal(size).scaleb(-9).quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP)
    if places > 2 and usd.scaleb(places) >= 100:
        # Rounding carried into a new digit ($0.0099999 -> $0.010).
        places -= 1
        usd = usd.quantize(Decimal(1).scaleb(-places))
    return f"{sign}${usd:,f}"


def format_usd_text(nano: int) -> str:
    """
    format_usd_human for plain text (emails, audit summaries), where nothing
    shows on hover: a rounded amount carries its exact value along,
    "$5.00 (exactly $4.9999999)".
    """
    shown = format_usd_human(nano)
    exact = format_usd_exact(nano, grouping=True)
    return shown if shown == exact else f"{shown} (exactly {exact})"
