"""Who may read /metrics: bearer tokens, the review caches, the answers (no API server:
a scripted reviewer and a fake clock)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest

from scheduler.api.reviews import (
    AccessDecision,
    UserInfo,
    subject_access_review,
    token_review_user,
)
from scheduler.server.auth import (
    ALLOW_TTL_SECONDS,
    DENY_TTL_SECONDS,
    TOKEN_FAILURE_TTL_SECONDS,
    TOKEN_TTL_SECONDS,
    DelegatedAuth,
    ExpiringCache,
    Outcome,
    bearer_token,
)

READER = UserInfo("system:serviceaccount:monitoring:prometheus", "u-1", ("system:authenticated",))
NOBODY = UserInfo("system:serviceaccount:default:nobody", "u-2")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class ScriptedReviewer:
    """Tokens -> users; users allowed; every call recorded. ``fail`` raises instead."""

    users: dict[str, UserInfo] = field(default_factory=dict)
    allowed: set[str] = field(default_factory=set)
    token_calls: list[str] = field(default_factory=list)
    access_calls: list[tuple[str, str, str]] = field(default_factory=list)
    fail_tokens: bool = False
    fail_access: bool = False
    gate: asyncio.Event | None = None

    async def review_token(self, token: str) -> UserInfo | None:
        self.token_calls.append(token)
        if self.gate is not None:
            await self.gate.wait()
        if self.fail_tokens:
            raise ConnectionError("API server unreachable")
        return self.users.get(token)

    async def review_access(self, user: UserInfo, verb: str, path: str) -> AccessDecision:
        self.access_calls.append((user.username, verb, path))
        if self.fail_access:
            raise ConnectionError("API server unreachable")
        return AccessDecision(user.username in self.allowed)


def reviewer() -> ScriptedReviewer:
    return ScriptedReviewer(users={"good": READER, "other": NOBODY}, allowed={READER.username})


async def test_the_four_answers() -> None:
    auth = DelegatedAuth(reviewer(), clock=Clock())
    assert (await auth.check("Bearer good", "get", "/metrics")).outcome is Outcome.ALLOWED
    for header in (None, "", "Basic dXNlcjpwdw==", "Bearer", "Bearer  "):
        decision = await auth.check(header, "get", "/metrics")
        assert decision.outcome is Outcome.UNAUTHENTICATED and decision.message == "Unauthorized"
    assert (await auth.check("Bearer forged", "get", "/metrics")).outcome is (
        Outcome.UNAUTHENTICATED
    )
    denied = await auth.check("Bearer other", "get", "/metrics")
    assert denied.outcome is Outcome.FORBIDDEN
    # The API server's own wording for a non-resource URL.
    assert denied.message == (
        'forbidden: User "system:serviceaccount:default:nobody" cannot get path "/metrics"'
    )


async def test_no_header_costs_no_review() -> None:
    script = reviewer()
    auth = DelegatedAuth(script, clock=Clock())
    await auth.check(None, "get", "/metrics")
    assert script.token_calls == [] and script.access_calls == []


async def test_verdicts_are_cached_for_their_ttl_then_asked_again() -> None:
    script, clock = reviewer(), Clock()
    auth = DelegatedAuth(script, clock=clock)
    for _ in range(3):
        assert (await auth.check("Bearer good", "get", "/metrics")).outcome is Outcome.ALLOWED
        assert (await auth.check("Bearer other", "get", "/metrics")).outcome is Outcome.FORBIDDEN
        assert (await auth.check("bearer forged", "get", "/metrics")).outcome is (
            Outcome.UNAUTHENTICATED
        )
    # One review each: accepted and rejected tokens, allowed and denied users alike.
    assert sorted(script.token_calls) == ["forged", "good", "other"]
    assert len(script.access_calls) == 2

    clock.now += min(TOKEN_TTL_SECONDS, ALLOW_TTL_SECONDS) - 0.5
    await auth.check("Bearer good", "get", "/metrics")
    assert len(script.token_calls) == 3

    # A change of mind (the binding removed) is seen once the entries expire.
    script.allowed.clear()
    clock.now += (
        max(TOKEN_TTL_SECONDS, TOKEN_FAILURE_TTL_SECONDS, ALLOW_TTL_SECONDS, DENY_TTL_SECONDS) + 1
    )
    assert (await auth.check("Bearer good", "get", "/metrics")).outcome is Outcome.FORBIDDEN
    assert script.token_calls.count("good") == 2 and len(script.access_calls) == 3


async def test_a_different_path_or_verb_is_its_own_decision() -> None:
    script = reviewer()
    auth = DelegatedAuth(script, clock=Clock())
    await auth.check("Bearer good", "get", "/metrics")
    await auth.check("Bearer good", "get", "/metrics/extra")
    await auth.check("Bearer good", "post", "/metrics")
    assert len(script.token_calls) == 1 and len(script.access_calls) == 3


async def test_errors_are_answered_but_not_cached() -> None:
    script = reviewer()
    script.fail_tokens = True
    auth = DelegatedAuth(script, clock=Clock())
    # As upstream: an authentication error is a 401, an authorization error a 500.
    assert (await auth.check("Bearer good", "get", "/metrics")).outcome is (Outcome.UNAUTHENTICATED)
    script.fail_tokens, script.fail_access = False, True
    assert (await auth.check("Bearer good", "get", "/metrics")).outcome is Outcome.ERROR
    script.fail_access = False
    assert (await auth.check("Bearer good", "get", "/metrics")).outcome is Outcome.ALLOWED
    assert len(script.token_calls) == 2 and len(script.access_calls) == 2


@pytest.mark.parametrize(
    ("fail", "outcome"), [(False, Outcome.ALLOWED), (True, Outcome.UNAUTHENTICATED)]
)
async def test_concurrent_requests_with_one_token_share_one_review(
    fail: bool, outcome: Outcome
) -> None:
    """Five at once cost one TokenReview; when it fails, all five hear so."""
    script = reviewer()
    script.gate, script.fail_tokens = asyncio.Event(), fail
    auth = DelegatedAuth(script, clock=Clock())
    checks = [asyncio.create_task(auth.check("Bearer good", "get", "/metrics")) for _ in range(5)]
    await asyncio.sleep(0)
    script.gate.set()
    decisions = await asyncio.gather(*checks)
    assert {d.outcome for d in decisions} == {outcome}
    assert script.token_calls == ["good"]


async def test_the_caches_are_bounded() -> None:
    script = reviewer()
    auth = DelegatedAuth(script, clock=Clock(), max_entries=8)
    for i in range(100):
        await auth.check(f"Bearer random-{i}", "get", "/metrics")
    assert len(auth.tokens.cache) == 8
    # The first ones were dropped: asked again.
    await auth.check("Bearer random-0", "get", "/metrics")
    assert script.token_calls.count("random-0") == 2


def test_expiring_cache_keeps_recently_used_entries() -> None:
    clock = Clock()
    cache: ExpiringCache[str, int] = ExpiringCache(2, clock)
    cache.put("a", 1, ttl=5)
    cache.put("b", 2, ttl=50)
    assert cache.get("a") == 1  # a is now the most recently used
    cache.put("c", 3, ttl=50)
    assert cache.get("b") is None and cache.get("a") == 1 and cache.get("c") == 3
    clock.now += 6
    assert cache.get("a") is None and cache.get("c") == 3
    cache.put("d", 4, ttl=0)  # a zero TTL caches nothing
    assert cache.get("d") is None


def test_tokens_are_not_kept() -> None:
    script = reviewer()
    auth = DelegatedAuth(script, clock=Clock())
    asyncio.run(auth.check("Bearer good", "get", "/metrics"))
    keys = list(auth.tokens.cache._entries)
    assert keys and "good" not in keys and all(len(k) == 64 for k in keys)


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc.def", "abc.def"),
        ("bearer abc", "abc"),
        ("BEARER   abc  ", "abc"),
        ("Bearer a b", None),
        ("Token abc", None),
        ("abc", None),
    ],
)
def test_bearer_token(header: str, token: str | None) -> None:
    assert bearer_token(header) == token


def test_review_bodies() -> None:
    review = {
        "status": {
            "authenticated": True,
            "user": {
                "username": "alice",
                "uid": "42",
                "groups": ["devs", "system:authenticated"],
                "extra": {"scopes": ["b", "a"], "ids": ["1"]},
            },
        }
    }
    user = token_review_user(review)
    assert user == UserInfo(
        "alice", "42", ("devs", "system:authenticated"), (("ids", ("1",)), ("scopes", ("b", "a")))
    )
    assert token_review_user({"status": {"authenticated": False}}) is None
    assert token_review_user({}) is None
    assert subject_access_review(user, "get", "/metrics") == {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": "alice",
            "uid": "42",
            "groups": ["devs", "system:authenticated"],
            "extra": {"ids": ["1"], "scopes": ["b", "a"]},
            "nonResourceAttributes": {"path": "/metrics", "verb": "get"},
        },
    }
