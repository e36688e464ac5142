"""The `voight` command.

`voight hook` is dispatched before argparse is imported: it runs on every Claude Code event
and argparse (with re and gettext) would cost more than the hook's own work.
"""

import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["hook"]:
        from voight.client import hook

        hook.exit_process(hook.main())
    if argv[:1] == ["gemini-hook"]:
        from voight.client import gemini_hook

        gemini_hook.exit_process(gemini_hook.main(argv[1:]))
    if argv[:1] == ["codex-notify"]:  # once per Codex turn: no argparse either
        from voight.client import codex

        return codex.notify_main(argv[1:])
    return _run(argv)


def _run(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="voight", description="Voight client for Claude Code.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("hook", help="Claude Code command hook: reads the hook JSON on stdin")
    sub.add_parser("gemini-hook", help="Gemini CLI command hook: reads the hook JSON on stdin")
    sub.add_parser("codex-notify", help="Codex CLI notify program: the JSON is the last argument")

    install = sub.add_parser("install-hooks", help="merge Voight into Claude Code's settings.json")
    scope = install.add_mutually_exclusive_group()
    scope.add_argument("--project", action="store_true", help="./.claude/settings.json")
    scope.add_argument("--user", action="store_true", help="~/.claude/settings.json (default)")
    install.add_argument("--http", action="store_true", help="http hooks + OpenTelemetry env")
    install.add_argument("--codex", action="store_true",
                         help="the Codex CLI instead: notify + OpenTelemetry in "
                              "$CODEX_HOME/config.toml (~/.codex/config.toml)")
    install.add_argument("--url", help="Voight server URL (default: $VOIGHT_URL)")
    install.add_argument("--key", help="ingest API key (default: $VOIGHT_KEY)")
    install.add_argument("--agent", help="agent slug (default: $VOIGHT_AGENT)")
    install.add_argument("--gemini", action="store_true",
                         help="the Gemini CLI's settings.json (~/.gemini, or ./.gemini with "
                              "--project): telemetry + hooks")

    sub.add_parser("doctor", help="check URL, key, clock skew, spool and installed hooks")
    flush = sub.add_parser("flush", help="send the spooled events now")
    flush.add_argument("--timeout", type=float, default=30.0, help="seconds (default 30)")

    args = parser.parse_args(argv)
    if args.command == "hook":
        from voight.client import hook

        return hook.main()
    if args.command == "install-hooks" and args.gemini:
        from voight.client import install_gemini

        return install_gemini.run(args)
    if args.command == "install-hooks":
        from voight.client import install as install_mod

        return install_mod.run(args)
    if args.command == "doctor":
        from voight.client import doctor

        return doctor.run()
    from voight.client import spool

    return spool.flush_command(args.timeout)
