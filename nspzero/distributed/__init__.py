"""Scale-out on Ray (the optional 'ray' extra): `classify` (classify --engine ray) and `pairs`
(eval --engine ray) are separate engines over `common` (Ray start-up, actor sizing, errors)."""
from .classify import classify_with_ray
from .common import ActorResources, actor_resources, ray_session
from .pairs import RayPairScorer

__all__ = ["classify_with_ray", "RayPairScorer", "ray_session", "actor_resources", "ActorResources"]
