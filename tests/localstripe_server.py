"""localstripe, started clean and reachable from this machine only.

`localstripe --from-scratch` still listens on every interface ('::') and rewrites
/tmp/localstripe.pickle on every write, a file shared by every run on the machine.
This runs localstripe's own application with neither: bound to 127.0.0.1, starting
empty, keeping its objects in memory only. Usage: localstripe_server.py PORT
"""

import logging
import sys

from aiohttp import web
from localstripe import resources, server


def main() -> None:
    port = int(sys.argv[1])
    # From scratch, and nothing written to (or read back from) the shared pickle.
    resources.Store.dump_to_disk = lambda self: None
    resources.store.clear()
    logger = logging.getLogger("aiohttp.access")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(logging.StreamHandler())
    web.run_app(server.app, host="127.0.0.1", port=port, access_log=logger)


if __name__ == "__main__":
    main()
