"""Page tokens of the positions list: the query and the page's position, encoded for the next call."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from sandbox.store import SORT_COLUMNS
from sandbox.wire import ApiError

MAX_PAGE_SIZE = 1000
MAX_PAGE = 10**9


@dataclass(frozen=True)
class PageState:
    """What a page token encodes: the query (account, sort, filter) and the page's position."""

    account_id: int
    page: int
    size: int
    sort_by: str
    direction: str
    ids: tuple[str, ...] | None

    def token(self, page: int) -> str:
        raw = {
            "v": 1,
            "a": self.account_id,
            "p": page,
            "s": self.size,
            "b": self.sort_by,
            "d": self.direction,
        }
        if self.ids is not None:
            raw["f"] = list(self.ids)
        return base64.urlsafe_b64encode(json.dumps(raw, separators=(",", ":")).encode()).decode()

    @classmethod
    def from_token(cls, token: str) -> PageState:
        text = token.strip().replace(" ", "+").replace("+", "-").replace("/", "_")
        try:
            raw = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            ids = raw.get("f")
            state = cls(
                account_id=raw["a"],
                page=raw["p"],
                size=raw["s"],
                sort_by=raw["b"],
                direction=raw["d"],
                ids=tuple(ids) if ids is not None else None,
            )
            valid = (
                raw.get("v") == 1
                and type(state.account_id) is int
                and type(state.page) is int
                and 1 <= state.page <= MAX_PAGE
                and type(state.size) is int
                and 1 <= state.size <= MAX_PAGE_SIZE
                and state.sort_by in SORT_COLUMNS
                and state.direction in {"ASC", "DESC"}
                and (state.ids is None or all(isinstance(i, str) for i in state.ids))
            )
        except (binascii.Error, ValueError, UnicodeDecodeError, KeyError, TypeError, AttributeError):
            valid = False
        if not valid:
            raise ApiError(400, "page_token is malformed or was not issued by this server")
        return state
