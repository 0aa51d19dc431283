"""--ports parsing and the port-range arithmetic the NSG check and plan share. Pure."""

from typing import Iterable, Optional, Sequence, Tuple

PortRange = Tuple[int, int]
PortRanges = Tuple[PortRange, ...]

DEFAULT_TARGET_PORTS = ('22', '3389')
ALL_PORTS: PortRanges = ((0, 65535),)


class PortListError(ValueError):
    """A --ports value that is not a port or a range of ports."""


def _parse_one(token: str) -> PortRange:
    token = token.strip()
    if not token:
        raise PortListError('empty port')
    low_text, sep, high_text = token.partition('-')
    try:
        low = int(low_text)
        high = int(high_text) if sep else low
    except ValueError:
        raise PortListError(f"'{token}' is not a port (1-65535) or a range like 8000-8010") from None
    for value in (low, high):
        if not 1 <= value <= 65535:
            raise PortListError(f"port {value} in '{token}' is outside 1-65535")
    if high < low:
        raise PortListError(f"range '{token}' is reversed; write it as {high}-{low}")
    return low, high


def parse_ports(values: Optional[Sequence[object]]) -> list[str]:
    """['22', '3389', '8000-8010'] (or comma-separated) -> sorted, merged-free, normalised range strings.

    Duplicates and overlapping ranges are refused rather than silently merged: they usually mean a typo."""
    if not values:
        return list(DEFAULT_TARGET_PORTS)
    tokens = [part for value in values for part in str(value).split(',')]
    ranges = sorted(_parse_one(token) for token in tokens)
    for (low_a, high_a), (low_b, high_b) in zip(ranges, ranges[1:]):
        if low_b <= high_a:
            first = f'{low_a}' if low_a == high_a else f'{low_a}-{high_a}'
            second = f'{low_b}' if low_b == high_b else f'{low_b}-{high_b}'
            raise PortListError(f"ports '{first}' and '{second}' overlap; list each port once")
    return [f'{low}' if low == high else f'{low}-{high}' for low, high in ranges]


def port_ranges(values: Iterable[object]) -> PortRanges:
    """ARM port values ('22', '8000-8010', '*') -> sorted ((low, high), ...)."""
    ranges = []
    for value in values:
        text = str(value).strip()
        if text in ('*', ''):
            return ALL_PORTS
        low, _, high = text.partition('-')
        ranges.append((int(low), int(high or low)))
    return tuple(sorted(ranges))


def range_text(ranges: Iterable[PortRange]) -> str:
    return ','.join(f'{a}' if a == b else ('*' if (a, b) == ALL_PORTS[0] else f'{a}-{b}') for a, b in ranges)


def subtract(ranges: Iterable[PortRange], removed: Iterable[PortRange]) -> list[PortRange]:
    """Port ranges minus other port ranges."""
    removed = list(removed)
    result: list[PortRange] = []
    for low, high in ranges:
        pieces = [(low, high)]
        for r_low, r_high in removed:
            next_pieces = []
            for a, b in pieces:
                if r_high < a or r_low > b:
                    next_pieces.append((a, b))
                    continue
                if a < r_low:
                    next_pieces.append((a, r_low - 1))
                if r_high < b:
                    next_pieces.append((r_high + 1, b))
            pieces = next_pieces
        result.extend(pieces)
    return result
