"""The API credential, kept out of reprs, logs and error messages.

Anyreach accepts organization API keys (``ak_``, which carry their
organization) and personal access tokens (``pat_``, which must name one with
``X-Anyreach-Org``).
"""

from __future__ import annotations

from typing import Literal, NoReturn

ORG_HEADER = "X-Anyreach-Org"

KeyKind = Literal["organization key", "personal access token", "unknown"]


class ApiKey:
    """Holds the secret; its ``repr``/``str`` show only what kind of key it is."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        value = (value or "").strip()
        if not value:
            raise ValueError(
                "No Anyreach API key given: set api_key (ANYREACH_API_KEY) to an "
                "organization key (ak_...) or a personal access token (pat_...)."
            )
        self._value = value

    @property
    def kind(self) -> KeyKind:
        if self._value.startswith("ak_"):
            return "organization key"
        if self._value.startswith("pat_"):
            return "personal access token"
        return "unknown"

    @property
    def needs_org(self) -> bool:
        return self._value.startswith("pat_")

    def reveal(self) -> str:
        """The secret itself, for the Authorization header only."""
        return self._value

    def redact(self, text: str) -> str:
        """``text`` with any copy of the key blanked (servers may echo what they got)."""
        return text.replace(self._value, "***") if self._value in text else text

    def __repr__(self) -> str:
        return f"<{self.kind} ***>"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("An API key is not picklable (it would leave the process in clear).")


def auth_headers(key: ApiKey, org_id: str | None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {key.reveal()}"}
    if org_id:
        headers[ORG_HEADER] = org_id
    return headers
