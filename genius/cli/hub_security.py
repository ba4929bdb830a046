"""``genius hub init-certs | broker-config | provision-edge | rotate-key`` (registered by ``hub.py``).

Secrets (edge passwords, signing keys, the hub's broker password) are printed or written
once, when they are made; the database keeps only password hashes (and the signing keys,
which the hub needs to verify HMACs).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

__all__ = ["register_security"]


def register_security(sub: Any) -> None:
    certs = sub.add_parser("init-certs", help="create a private CA and the hub broker's TLS certificate")
    certs.add_argument("--out", metavar="DIR", required=True, type=Path)
    certs.add_argument("--host", action="append", default=[], help="extra DNS name or IP for the certificate")
    certs.add_argument("--days", type=int, default=825)
    certs.add_argument("--force", action="store_true", help="replace existing certificates")
    certs.set_defaults(handler=_init_certs)

    conf = sub.add_parser("broker-config", help="write mosquitto.conf, password file and ACL from the key registry")
    conf.add_argument("--out", metavar="DIR", required=True, type=Path)
    conf.add_argument("--db", metavar="PATH", required=True, type=Path, help="hub SQLite database (key registry)")
    conf.add_argument("--port", type=int, default=1883, help="plain loopback listener (0: none)")
    conf.add_argument("--tls-port", type=int, default=None, help="TLS listener (needs --certs)")
    conf.add_argument("--certs", metavar="DIR", type=Path, help="directory from `genius hub init-certs`")
    conf.add_argument("--host", default="127.0.0.1", help="address the listeners bind")
    conf.add_argument("--no-persistence", action="store_true")
    conf.set_defaults(handler=_broker_config)

    prov = sub.add_parser("provision-edge", help="register an edge: broker login and signing key (shown once)")
    prov.add_argument("--customer", required=True)
    prov.add_argument("--edge", required=True)
    prov.add_argument("--db", metavar="PATH", required=True, type=Path)
    prov.add_argument("--broker-dir", metavar="DIR", type=Path, help="rewrite passwd/acl there (then SIGHUP mosquitto)")
    prov.add_argument("--json", action="store_true")
    prov.set_defaults(handler=_provision)

    rot = sub.add_parser("rotate-key", help="give an edge a new signing key; old keys stay valid for --grace")
    rot.add_argument("--edge", required=True)
    rot.add_argument("--db", metavar="PATH", required=True, type=Path)
    rot.add_argument("--grace", type=float, default=3600.0, help="seconds the old key stays valid (default 3600)")
    rot.add_argument("--json", action="store_true")
    rot.set_defaults(handler=_rotate)


def _init_certs(args: argparse.Namespace) -> int:
    from hub.security.certs import init_certs

    paths = init_certs(args.out, hosts=tuple(args.host), days=args.days, force=args.force)
    for name, path in paths._asdict().items():
        print(f"{name}: {path}")
    return 0


def _broker_config(args: argparse.Namespace) -> int:
    from hub.security.broker import write_broker_config
    from hub.security.certs import CertPaths
    from hub.security.registry import add_hub_user, broker_users

    certs = None
    if args.certs is not None:
        d = args.certs.resolve()
        certs = CertPaths(d / "ca.crt", d / "ca.key", d / "server.crt", d / "server.key")
        missing = [str(p) for p in (certs.ca_cert, certs.server_cert, certs.server_key) if not p.is_file()]
        if missing:
            print(f"genius: error: missing certificate files {missing} (run `genius hub init-certs`)", file=sys.stderr)
            return 2
    if args.tls_port is not None and certs is None:
        print("genius: error: --tls-port needs --certs", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    if not any(u.role == "hub" for u in broker_users(args.db)):
        username, password = add_hub_user(args.db)
        # The hub's own login, for its settings file (--config): written once, 0600.
        port = args.port or args.tls_port
        text = (f'[broker]\nurl = "mqtt://{args.host}:{port}"\nusername = "{username}"\npassword = "{password}"\n')
        path = args.out / "hub-broker.toml"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        print(f"hub broker login written to {path}")
    files = write_broker_config(
        args.out, db=args.db, port=args.port or None, tls_port=args.tls_port, certs=certs,
        persistence=not args.no_persistence,
    )
    print(f"mosquitto config: {files.conf}\npassword file:    {files.passwd}\nACL:              {files.acl}")
    print(f"run: mosquitto -c {files.conf}")
    return 0


def _provision(args: argparse.Namespace) -> int:
    from hub.security.broker import update_auth_files
    from hub.security.registry import provision_edge

    creds = provision_edge(args.db, customer_id=args.customer, edge_id=args.edge)
    if args.broker_dir is not None:
        update_auth_files(args.broker_dir, db=args.db)
    doc = creds.as_dict()
    if args.json:
        json.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print("Edge provisioned. These secrets are shown once; put them in the edge's settings:\n")
        print(f'customer = "{creds.customer_id}"\nedge = "{creds.edge_id}"')
        print(f'hub_broker = {{ url = "mqtts://HUB:8883", ca_file = "ca.crt", username = "{creds.username}", '
              f'password = "{creds.password}" }}')
        print(f'\n[uplink.signing]\nkey_id = "{creds.key_id}"\nkey = "{creds.key.hex()}"')
        if args.broker_dir is not None:
            print(f"\nbroker files in {args.broker_dir} updated: send mosquitto SIGHUP to load them")
    return 0


def _rotate(args: argparse.Namespace) -> int:
    from hub.security.registry import rotate_key

    key_id, key = rotate_key(args.db, edge_id=args.edge, grace_s=args.grace)
    if args.json:
        json.dump({"edge_id": args.edge, "key_id": key_id, "key": key.hex(), "grace_s": args.grace}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(f"New signing key for edge {args.edge} (shown once); the old one is accepted {args.grace:.0f}s more:\n")
        print(f'[uplink.signing]\nkey_id = "{key_id}"\nkey = "{key.hex()}"')
    return 0
