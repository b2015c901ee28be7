"""Cloud code for bench/cloud.py (Bastion side); bench/parse-server/cloud/main.js does the same in JS.

No-op triggers on BenchCloud (BenchPlain has none) and two small functions.
"""

from bastion import cloud


@cloud.before_save("BenchCloud")
def before_save(request: cloud.Request) -> None:
    return None


@cloud.after_save("BenchCloud")
def after_save(request: cloud.Request) -> None:
    return None


@cloud.define("noop")
def noop(request: cloud.Request) -> dict:
    return {"ok": True}


@cloud.define("echo")
def echo(request: cloud.Request) -> object:
    return request.params.get("text")
