"""A small router in front of moto, so moto's Step Functions call our real Lambdas.

moto executes state machines and invokes Lambda tasks on http://localhost:$MOTO_PORT.
This router listens there: Lambda invocations (/2015-03-31/functions/*/invocations)
go to `cargo lambda watch`, which runs the real Rust binaries; everything else goes to
moto itself. Usage: router.py LISTEN_PORT MOTO_PORT LAMBDA_PORT (all on 127.0.0.1).
"""

import re
import sys
from urllib.parse import unquote

import aiohttp
from aiohttp import web

LISTEN, MOTO, LAMBDA = (int(p) for p in sys.argv[1:4])
INVOKE = re.compile(r"^/2015-03-31/functions/([^/]+)/invocations$")
HOP_BY_HOP = {"host", "content-length", "transfer-encoding", "connection"}


def function_name(raw: str) -> str:
    """`arn:aws:lambda:eu-west-1:123456789012:function:provision[:alias]` -> `provision`."""
    name = unquote(raw)
    if name.startswith("arn:"):
        name = name.split(":function:", 1)[1].split(":", 1)[0]
    return name


async def forward(request: web.Request) -> web.Response:
    match = INVOKE.match(request.path)
    if match:
        url = f"http://127.0.0.1:{LAMBDA}/2015-03-31/functions/{function_name(match.group(1))}/invocations"
    else:
        url = f"http://127.0.0.1:{MOTO}{request.path_qs}"
    headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
    body = await request.read()
    timeout = aiohttp.ClientTimeout(total=900)
    async with aiohttp.ClientSession(timeout=timeout, auto_decompress=False) as session:
        async with session.request(request.method, url, headers=headers, data=body) as upstream:
            payload = await upstream.read()
            out_headers = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP}
            status = upstream.status
            if match and status >= 500 and b'"errorType"' in payload:
                # cargo lambda answers a function error with HTTP 500; the Lambda Invoke API
                # answers 200 with X-Amz-Function-Error, which is what Step Functions reads
                # the error name (errorType) from.
                status = 200
                out_headers["X-Amz-Function-Error"] = "Unhandled"
                out_headers["Content-Type"] = "application/json"
            return web.Response(status=status, body=payload, headers=out_headers)


app = web.Application(client_max_size=64 * 1024 * 1024)
app.router.add_route("*", "/{tail:.*}", forward)
web.run_app(app, host="127.0.0.1", port=LISTEN, print=None)
