"""Tenant isolation and hostile input: broker config, certificates, key registry, batch guard.

* ``broker``: Mosquitto config, password file and per-edge ACL from the key registry;
* ``certs``: a private CA and the broker's TLS server certificate;
* ``registry``: provisioning (broker login + signing key per edge), rotation, ``KeyRing``;
* ``guard``: signature, replay and limit checks the ingest pipeline applies to each batch;
* ``limits``/``replay``: token buckets and the replay cache behind the guard.

Signing itself (canonical bytes, HMAC) lives in ``devices.signing``, shared with edges.
"""

from .broker import (
    BrokerFiles,
    BrokerLimits,
    acl_text,
    broker_conf,
    passwd_text,
    update_auth_files,
    write_broker_config,
)
from .certs import CertPaths, init_certs
from .guard import BatchGuard, Refusal
from .limits import RateLimiter, TokenBucket
from .passwords import hash_password, verify_password
from .registry import (
    BrokerUser,
    EdgeCredentials,
    EdgeKeys,
    KeyRing,
    add_hub_user,
    broker_users,
    load_keys,
    provision_edge,
    rotate_key,
)
from .replay import ReplayCache
from .settings import LimitsSettings, SecuritySettings, SigningMode

__all__ = [
    "BatchGuard", "BrokerFiles", "BrokerLimits", "BrokerUser", "CertPaths", "EdgeCredentials", "EdgeKeys",
    "KeyRing", "LimitsSettings", "RateLimiter", "Refusal", "ReplayCache", "SecuritySettings", "SigningMode",
    "TokenBucket", "acl_text", "add_hub_user", "broker_conf", "broker_users", "hash_password", "init_certs",
    "load_keys", "passwd_text", "provision_edge", "update_auth_files", "rotate_key", "verify_password", "write_broker_config",
]
