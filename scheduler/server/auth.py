"""Who may read ``/metrics``: a bearer token, TokenReview, SubjectAccessReview, cached.

As kube-scheduler's secure port (``k8s.io/apiserver`` delegated authentication and
authorization), with the same defaults: a token's review is remembered for 10 s
whether it was accepted or not, an access decision for 10 s whether it allowed or
denied. Errors (the API server unreachable, or refusing the scheduler the review
itself) are never cached. Unlike kube-scheduler there is no anonymous user and no
client-certificate authentication: a request without a valid bearer token gets 401,
as controller-runtime's metrics filter answers.

Concurrent requests with the same token share one review (Prometheus replicas
scraping at the same moment cost one TokenReview). Both caches are bounded (least
recently used entries go first), so a flood of random tokens cannot grow memory.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import structlog

from scheduler.api.reviews import AccessDecision, UserInfo

log = structlog.get_logger(__name__)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

TOKEN_TTL_SECONDS = 10.0
"""Upstream's ``--authentication-token-webhook-cache-ttl`` default (delegated: 10 s)."""
TOKEN_FAILURE_TTL_SECONDS = 10.0
ALLOW_TTL_SECONDS = 10.0
"""Upstream's ``--authorization-webhook-cache-authorized-ttl`` default (delegated: 10 s)."""
DENY_TTL_SECONDS = 10.0
"""Upstream's ``--authorization-webhook-cache-unauthorized-ttl`` default (delegated: 10 s)."""
MAX_ENTRIES = 1024
"""Per cache: far more distinct readers than a scheduler's metrics ever have."""


class Reviewer(Protocol):
    """The API server's verdicts (``scheduler.api.reviews.ApiReviewer``); raises on errors."""

    async def review_token(self, token: str) -> UserInfo | None: ...

    async def review_access(self, user: UserInfo, verb: str, path: str) -> AccessDecision: ...


class Outcome(enum.Enum):
    ALLOWED = 200
    UNAUTHENTICATED = 401
    FORBIDDEN = 403
    ERROR = 500
    """The authorizer could not decide (upstream answers 500 too)."""


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    message: str
    """What the caller reads, in the API server's words::

        Unauthorized
        forbidden: User "system:serviceaccount:monitoring:nobody" cannot get path "/metrics"
    """
    user: str = ""


class ExpiringCache(Generic[K, V]):
    """A bounded LRU map whose entries expire, each with its own time to live."""

    def __init__(self, max_entries: int, clock: Callable[[], float]) -> None:
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._max = max_entries
        self._clock = clock

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= self._clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry[1]

    def put(self, key: K, value: V, ttl: float) -> None:
        if ttl <= 0:
            return
        self._entries[key] = (self._clock() + ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)


class _Reviews(Generic[K, V]):
    """A cache in front of one kind of review, with concurrent misses coalesced."""

    def __init__(
        self,
        ttl: Callable[[V], float],
        max_entries: int,
        clock: Callable[[], float],
    ) -> None:
        self.cache: ExpiringCache[K, V] = ExpiringCache(max_entries, clock)
        self._ttl = ttl
        self._in_flight: dict[K, asyncio.Future[V]] = {}

    async def get(self, key: K, review: Callable[[], Awaitable[V]]) -> V:
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        pending = self._in_flight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._in_flight[key] = future
        try:
            value = await review()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning without waiters
            raise
        else:
            future.set_result(value)
            self.cache.put(key, value, self._ttl(value))
            return value
        finally:
            del self._in_flight[key]


@dataclass(frozen=True, slots=True)
class _TokenVerdict:
    user: UserInfo | None  # None: not authenticated


class DelegatedAuth:
    """``check(header, verb, path)``: the decision for one request's Authorization header."""

    def __init__(
        self,
        reviewer: Reviewer,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = MAX_ENTRIES,
    ) -> None:
        self.reviewer = reviewer
        self.tokens: _Reviews[str, _TokenVerdict] = _Reviews(
            lambda v: TOKEN_TTL_SECONDS if v.user else TOKEN_FAILURE_TTL_SECONDS,
            max_entries,
            clock,
        )
        self.access: _Reviews[tuple[UserInfo, str, str], AccessDecision] = _Reviews(
            lambda d: ALLOW_TTL_SECONDS if d.allowed else DENY_TTL_SECONDS, max_entries, clock
        )

    async def check(self, authorization: str | None, verb: str, path: str) -> Decision:
        token = bearer_token(authorization)
        if token is None:
            return Decision(Outcome.UNAUTHENTICATED, "Unauthorized")
        # The token itself is not kept: its digest is the key.
        key = hashlib.sha256(token.encode()).hexdigest()
        try:
            verdict = await self.tokens.get(key, lambda: self._review_token(token))
        except Exception as exc:
            # As upstream: an authenticator error is logged and answered 401.
            log.warning("cannot review a metrics token", error=str(exc))
            return Decision(Outcome.UNAUTHENTICATED, "Unauthorized")
        user = verdict.user
        if user is None:
            return Decision(Outcome.UNAUTHENTICATED, "Unauthorized")
        try:
            decision = await self.access.get(
                (user, verb, path), lambda: self.reviewer.review_access(user, verb, path)
            )
        except Exception as exc:
            log.warning("cannot review metrics access", user=user.username, error=str(exc))
            return Decision(Outcome.ERROR, "Internal Server Error", user.username)
        if decision.allowed:
            return Decision(Outcome.ALLOWED, "", user.username)
        return Decision(Outcome.FORBIDDEN, forbidden_message(user, verb, path, decision.reason))

    async def _review_token(self, token: str) -> _TokenVerdict:
        return _TokenVerdict(await self.reviewer.review_token(token))


def bearer_token(authorization: str | None) -> str | None:
    """The token of ``Authorization: Bearer <token>`` (the scheme in any case), else None."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        return None
    return token


def forbidden_message(user: UserInfo, verb: str, path: str, reason: str = "") -> str:
    """The API server's wording for a denied non-resource request::

    forbidden: User "system:serviceaccount:ns:nobody" cannot get path "/metrics"
    """
    message = f'forbidden: User "{user.username}" cannot {verb} path "{path}"'
    return f"{message}: {reason}" if reason else message
