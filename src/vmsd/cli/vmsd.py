"""`vmsd`: run the daemon, check a configuration, check or repair storage, create tokens.

    vmsd run --config FILE
    vmsd check-config --config FILE [--strict]
    vmsd fsck --config FILE [--repair] [--rebuild-index] [--no-hashes]
    vmsd migrate --config FILE [--dry-run]
    vmsd token create --name NAME --role ROLE [--camera GLOB]...
    vmsd key-fingerprint --config FILE

Exit codes: 0 ok, 1 a problem was found (invalid config, inconsistent storage, runtime failure),
2 usage error. check-config prints warnings (a well-known demo token, …) on stderr; they leave the
exit status 0 — the configuration is valid and `make demo` runs on one — unless --strict is given,
when any warning makes it 1 (what installs and upgrades use).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pydantic import ValidationError

from vmsd import tokens
from vmsd.config import Config, check_environment, format_validation_error, load_config
from vmsd.errors import ConfigError, VmsdError
from vmsd.services.access import ROLE_PERMISSIONS
from vmsd.units import format_duration_ns


def _load(path: str) -> Config:
    """Load, validate and probe the machine; ConfigError lists every problem with its key."""
    config = load_config(path)
    problems = check_environment(config)
    if problems:
        raise ConfigError(f"{path}: configuration cannot be used on this machine\n" + "\n".join(problems))
    return config


def _web_summary(config: Config) -> str:
    web = config.web
    if web.listen is None:
        return "off"
    return f"{web.listen} ({'TLS' if web.tls is not None else 'plaintext'})"


def cmd_check_config(args: argparse.Namespace) -> int:
    config = _load(args.config)
    warnings = tokens.published_warnings(config)
    print(f"{args.config}: ok" + (f", {len(warnings)} warning(s)" if warnings else ""))
    print(f"  recorder_id       {config.recorder_id}")
    print(f"  storage.root      {config.storage.root}")
    print(f"  segment_duration  {format_duration_ns(config.storage.segment_duration_ns)}")
    quota = config.export.max_total
    print(f"  export.max_total  {f'{quota.percent:g}%' if quota.percent is not None else f'{quota.size_bytes} bytes'}")
    print(f"  retention.max_age {format_duration_ns(config.retention.max_age_ns)}")
    print(f"  retention.min_age {format_duration_ns(config.retention.min_age_ns)}")
    print(f"  grpc.listen       {config.grpc.listen}")
    print(f"  metrics.listen    {config.metrics.listen or 'off'}")
    print(f"  web.listen        {_web_summary(config)}")
    print(f"  health.times      {', '.join(config.health.times) or 'on demand only'}")
    print(f"  cameras           {len(config.cameras)} ({sum(c.enabled for c in config.cameras)} enabled)")
    print(f"  tokens            {len(config.auth.tokens)}")
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if warnings and args.strict:
        print(f"vmsd: {args.config}: {len(warnings)} warning(s), refused with --strict", file=sys.stderr)
        return 1
    return 0


def cmd_token_create(args: argparse.Namespace) -> int:
    cameras = args.camera or ["*"]
    problem = None
    if not 1 <= len(args.name) <= 128 or not args.name.strip():
        problem = "--name must be 1 to 128 characters, not all spaces"
    elif not all(glob.strip() for glob in cameras):
        problem = "--camera must name a camera id or glob (e.g. 'market-*')"
    token = tokens.new_token()
    try:
        stanza = tokens.stanza(args.name, args.role, cameras, token)
    except ValidationError as error:
        problem = problem or format_validation_error(error)
    if problem:
        print(f"vmsd token create: {problem}", file=sys.stderr)
        return 2
    # The token alone on stdout's first line (for a script to capture); the stanza after it. The
    # token is not kept anywhere: this is the only time it is shown.
    print(token)
    print()
    print(stanza, end="")
    print(
        "\nThe first line is the token, shown only this once: hand it to its holder now (they pass it as\n"
        "VMSD_TOKEN). Add the [[auth.tokens]] stanza to the configuration and restart vmsd.",
        file=sys.stderr,
    )
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    import asyncio

    import uvloop

    from vmsd.app import Daemon
    from vmsd.log import configure_logging, get_logger
    from vmsd.memory import tune_malloc
    from vmsd.storage.errors import StorageLost
    from vmsd.storage.watch import STORAGE_LOST_EXIT

    # Before any thread starts: an arena limit set later would not apply to threads already made.
    malloc_settings = tune_malloc()
    config = _load(args.config)
    configure_logging(json=True if args.log_json else None, level=args.log_level)
    log = get_logger(component="daemon")
    log.debug("malloc_tuned", **{name.lower().strip("_"): value for name, value in malloc_settings.items()})
    for index, token in tokens.published(config):
        log.warning(
            "published_token",
            token_name=token.name,
            role=token.role,
            key=f"auth.tokens[{index}]",
            detail="a well-known token (demo, docs, tests, placeholder) is accepted: replace it (vmsd token create)",
        )
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    try:
        return asyncio.run(Daemon(config, config_path=Path(args.config)).run())
    except StorageLost as error:
        # Storage that cannot be opened is worth another try (systemd restarts on failure), not a bug.
        log.error("storage_lost", detail=str(error), exit_status=STORAGE_LOST_EXIT)
        print(f"vmsd: {error}", file=sys.stderr)
        return STORAGE_LOST_EXIT


def cmd_fsck(args: argparse.Namespace) -> int:
    from vmsd import fsck
    from vmsd.log import configure_logging
    from vmsd.storage.store import Storage

    config = _load(args.config)
    configure_logging(json=False, level="warning")
    if not config.storage.root.exists():
        print(f"{config.storage.root}: storage root does not exist", file=sys.stderr)
        return 1
    storage = Storage(config.storage.root)
    # fsck takes the daemon's lock: checking a root while it is being written gives false alarms,
    # and repairing it would race the recorder.
    storage.open(exclusive=True)
    try:
        if args.rebuild_index:
            outcome = fsck.rebuild_index(storage)
        elif args.repair:
            outcome = fsck.repair(storage)
        else:
            outcome = None
        if outcome is not None:
            for line in outcome.repaired:
                print(f"repaired: {line}")
            for line in outcome.problems:
                print(f"warning: {line}")
        result = fsck.check(storage, verify_hashes=not args.no_hashes)
        fsck.check_audit(storage, result)
    finally:
        storage.close()
    for problem in result.problems:
        print(f"problem: {problem}")
    verdict = "clean" if result.ok else f"{len(result.problems)} problem(s)"
    print(f"fsck: {verdict}: {result.segments_checked} segment(s), {result.bytes_hashed} bytes hashed")
    return 0 if result.ok else 1


def cmd_migrate(args: argparse.Namespace) -> int:
    """Upgrade the catalogue and the audit database now (`vmsd run` does it at start too)."""
    from vmsd.storage import schema
    from vmsd.storage.audit_db import SCHEMA as AUDIT_SCHEMA
    from vmsd.storage.catalogue import SCHEMA as CATALOGUE_SCHEMA
    from vmsd.storage.store import Storage

    config = _load(args.config)
    if not config.storage.root.exists():
        print(f"{config.storage.root}: storage root does not exist", file=sys.stderr)
        return 1
    storage = Storage(config.storage.root)
    storage.lock()  # the daemon must not be writing a database while it is migrated
    try:
        for path, spec in (
            (storage.layout.catalogue_path, CATALOGUE_SCHEMA),
            (storage.layout.audit_path, AUDIT_SCHEMA),
        ):
            if not path.exists():
                print(f"{path}: none yet (created at the first start, at schema version {spec.version})")
                continue
            steps, copy = schema.migrate_file(path, spec, dry_run=args.dry_run)
            found = "none" if steps.found is None else steps.found
            print(f"{path}: schema version {found}, this vmsd uses {spec.version}")
            verb = "would run" if args.dry_run else "ran"
            for migration in steps.pending:
                print(f"  {verb}: to version {migration.to_version}: {migration.summary}")
            if copy is not None:
                print(f"  backup copy: {copy}")
    finally:
        storage.close()
    if args.dry_run:
        print("dry run: nothing was changed")
    return 0


def cmd_key_fingerprint(args: argparse.Namespace) -> int:
    """Print the fingerprint recipients check export bundles against (`vmsctl verify --key-fingerprint`)."""
    from vmsd.export.signing import PUBLIC_KEY_NAME, read_public_fingerprint
    from vmsd.storage.layout import Layout

    keys_dir = Layout(load_config(args.config).storage.root).keys_dir
    print(f"{read_public_fingerprint(keys_dir)}  {keys_dir / PUBLIC_KEY_NAME}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vmsd", description="vmsd CCTV recorder daemon")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="record every configured camera and serve the control plane")
    run.add_argument("--config", required=True, help="TOML configuration file")
    run.add_argument("--log-json", action="store_true", help="JSON log lines even on a terminal")
    run.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    run.set_defaults(func=cmd_run)
    check = sub.add_parser("check-config", help="validate a configuration file and exit")
    check.add_argument("--config", required=True)
    check.add_argument("--strict", action="store_true", help="exit 1 when there are warnings too")
    check.set_defaults(func=cmd_check_config)
    token = sub.add_parser("token", help="bearer tokens for the control plane").add_subparsers(
        dest="token_command", required=True
    )
    create = token.add_parser(
        "create", help="make a new token: prints it once, then the [[auth.tokens]] stanza (its sha256 only)"
    )
    create.add_argument("--name", required=True, help="who or what holds it (appears in the audit trail)")
    create.add_argument("--role", required=True, choices=list(ROLE_PERMISSIONS), help="docs/grpc.md, 'Roles'")
    create.add_argument(
        "--camera",
        action="append",
        metavar="GLOB",
        help="a camera id or glob it may touch (repeat for more; default: every camera)",
    )
    create.set_defaults(func=cmd_token_create)
    fsck = sub.add_parser("fsck", help="check that the catalogue and the segment files agree")
    fsck.add_argument("--config", required=True)
    mode = fsck.add_mutually_exclusive_group()
    mode.add_argument("--repair", action="store_true", help="finish interrupted work and account for lost files")
    mode.add_argument("--rebuild-index", action="store_true", help="rebuild the catalogue from the files alone")
    fsck.add_argument("--no-hashes", action="store_true", help="skip re-hashing every file (faster)")
    fsck.set_defaults(func=cmd_fsck)
    migrate = sub.add_parser(
        "migrate", help="upgrade the catalogue and audit database to this version's schema (backup copy first)"
    )
    migrate.add_argument("--config", required=True)
    migrate.add_argument("--dry-run", action="store_true", help="list the migrations that would run; change nothing")
    migrate.set_defaults(func=cmd_migrate)
    key = sub.add_parser(
        "key-fingerprint",
        help="print the SHA-256 fingerprint of the recorder's export signing key (give it to recipients "
        "out of band; they check bundles with `vmsctl verify DIR --key-fingerprint FP`)",
    )
    key.add_argument("--config", required=True)
    key.set_defaults(func=cmd_key_fingerprint)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except VmsdError as error:
        print(f"vmsd: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
