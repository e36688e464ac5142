"""Entry point for `python -m voight.client ...` and for running this file directly.

install-hooks writes `<python> -S <this file> hook`: `-S` skips `site` and with it the
editable-install finder and `.pth` processing (~15 ms per call, as much as the rest of the
hook), so when run as a file we put the directory that holds the `voight` package on sys.path
ourselves. The standard library stays reachable without `site`.
"""

import os
import sys

if not __package__:
    # Run as a file: sys.path[0] is voight/client itself; replace it so `voight` resolves and
    # our module names cannot shadow anything.
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

if sys.argv[1:2] == ["hook"]:  # the per-event path: skip the dispatcher's module
    from voight.client import hook

    hook.exit_process(hook.main())

from voight.client.cli import main

sys.exit(main())
