"""Delegated authentication and authorization: TokenReview and SubjectAccessReview.

What kube-scheduler's secure port does through ``k8s.io/apiserver``'s delegating
authenticator and authorizer: the API server says who a bearer token belongs to
(``authentication.k8s.io/v1`` TokenReview) and whether that user may do something
(``authorization.k8s.io/v1`` SubjectAccessReview). Raw JSON over the scheduler's own
client; its ServiceAccount needs ``create`` on both (the ClusterRole grants it).
Caching is the caller's business (``scheduler.server.auth``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from scheduler.api.client import ApiClient

TOKEN_REVIEWS = "/apis/authentication.k8s.io/v1/tokenreviews"
SUBJECT_ACCESS_REVIEWS = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
REVIEW_TIMEOUT = 10.0
"""Seconds per review request (upstream's delegated authentication uses 10 s as well)."""


@dataclass(frozen=True, slots=True)
class UserInfo:
    """Who a token belongs to, as TokenReview's ``status.user`` says."""

    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """``extra`` as sorted (key, values) pairs, so the value can be a cache key."""


@dataclass(frozen=True, slots=True)
class AccessDecision:
    allowed: bool
    reason: str = ""
    """The authorizer's reason, if it gave one (RBAC gives none for a denial)."""


class ApiReviewer:
    """Asks the API server; raises ``ApiError`` (or a connection error) when it cannot."""

    def __init__(self, client: ApiClient) -> None:
        self.client = client

    async def review_token(self, token: str) -> UserInfo | None:
        """The token's user, or None when the API server does not accept the token."""
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            # No audiences: the API server's own are implied (as upstream's delegated
            # authentication does when it is given none).
            "spec": {"token": token},
        }
        answer = await self.client.request("POST", TOKEN_REVIEWS, body=body, timeout=REVIEW_TIMEOUT)
        return token_review_user(orjson.loads(answer))

    async def review_access(self, user: UserInfo, verb: str, path: str) -> AccessDecision:
        """May ``user`` do ``verb`` on the non-resource URL ``path``?"""
        answer = await self.client.request(
            "POST",
            SUBJECT_ACCESS_REVIEWS,
            body=subject_access_review(user, verb, path),
            timeout=REVIEW_TIMEOUT,
        )
        status = orjson.loads(answer).get("status") or {}
        return AccessDecision(
            allowed=bool(status.get("allowed")) and not status.get("denied"),
            reason=str(status.get("reason") or ""),
        )


def token_review_user(review: dict[str, Any]) -> UserInfo | None:
    status = review.get("status") or {}
    if not status.get("authenticated"):
        return None
    user = status.get("user") or {}
    extra = user.get("extra") or {}
    return UserInfo(
        username=str(user.get("username", "")),
        uid=str(user.get("uid", "")),
        groups=tuple(str(g) for g in user.get("groups") or ()),
        extra=tuple(sorted((str(k), tuple(str(v) for v in vs)) for k, vs in extra.items())),
    )


def subject_access_review(user: UserInfo, verb: str, path: str) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "user": user.username,
        "groups": list(user.groups),
        "nonResourceAttributes": {"path": path, "verb": verb},
    }
    if user.uid:
        spec["uid"] = user.uid
    if user.extra:
        spec["extra"] = {key: list(values) for key, values in user.extra}
    return {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}
