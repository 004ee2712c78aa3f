"""A tiny web app for the redis-app example: counts its visitors in redis (standard library + python3-redis)."""
import os
import socket
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import redis

store = redis.Redis(host=os.environ.get("REDIS_HOST", "redis"), port=6379, socket_connect_timeout=2)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/healthz":
            self.reply(200, "ok\n")
            return
        if self.path != "/":
            self.send_error(404)
            return
        try:
            hits = store.incr("hits")
            body = f"Hello from tsfig! I have been seen {hits} times. (container {socket.gethostname()})\n"
            status = 200
        except redis.RedisError as error:
            body = f"redis is not reachable: {error}\n"
            status = 503
        self.reply(status, body)

    def reply(self, status, body):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args):
        if self.path != "/healthz":
            print(f"{self.address_string()} {format % args}", flush=True)


if __name__ == "__main__":
    print("web: listening on :8000", flush=True)
    ThreadingHTTPServer(("0.0.0.0", 8000), Handler).serve_forever()
