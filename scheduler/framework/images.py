"""Container image names as the scheduler compares them with a node's ``status.images``
(ImageLocality; the signature covers them too)."""

from __future__ import annotations

from scheduler.model.objects import Pod


def normalized_image_name(name: str) -> str:
    """``nginx`` -> ``nginx:latest``; a tag or digest is kept."""
    if name.rfind(":") <= name.rfind("/"):
        return name + ":latest"
    return name


def pod_images(pod: Pod) -> list[str]:
    spec = pod.spec
    return [normalized_image_name(c.image) for c in (*spec.init_containers, *spec.containers)]
