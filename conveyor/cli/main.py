"""`conveyor`: the one command for operators (server, agent) and developers (run, logs...).

Start-up is part of every command's latency: `--version` alone is answered here, before the
parser is loaded; any other command line goes to `dispatch`, which builds the parser from the
CLI's light modules and imports only the chosen command's implementation (`parsing.Lazy`), with
the garbage collector held off until it is loaded (`collector`).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from conveyor import __version__


def main(argv: Sequence[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else list(argv)
    if arguments == ["--version"]:
        # What the parser's --version action prints (`--version` anywhere else reaches it).
        print(f"conveyor {__version__}")
        return 0
    from conveyor.cli import collector

    collector.pause()  # `dispatch` resumes it once the command's code is loaded
    try:
        if arguments[:1] == ["__complete"]:
            # Shell completion's values, on every Tab press: without the full parser.
            from conveyor.cli import complete_command

            return complete_command.run(arguments[1:])
        from conveyor.cli import dispatch  # the parser and what it needs: not for --version

        return dispatch.run(arguments)
    except KeyboardInterrupt:
        # Ctrl-C before a command got going (loading, parsing): no traceback, the usual 130.
        return 130
    finally:
        collector.resume()  # when no command ran (--help, a usage error) or it was completion


if __name__ == "__main__":
    sys.exit(main())
