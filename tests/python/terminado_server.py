"""A terminado server (Jupyter's terminal backend, PyPI `terminado`) for the
proxy tests: named terminals at /websocket/<name>, bash without rc files.

Usage: python terminado_server.py PORT   (prints "ready PORT" when listening)"""

import sys

import tornado.ioloop
import tornado.web
from terminado import NamedTermManager, TermSocket


def main():
    port = int(sys.argv[1])
    manager = NamedTermManager(shell_command=["bash", "--norc", "--noprofile"], max_terminals=20,
                               extra_env={"PS1": "tt> ", "HISTFILE": "/dev/null"})
    app = tornado.web.Application([(r"/websocket/(\w+)", TermSocket, {"term_manager": manager})])
    server = app.listen(port, "127.0.0.1")
    if port == 0:
        port = next(iter(server._sockets.values())).getsockname()[1]
    print(f"ready {port}", flush=True)
    tornado.ioloop.IOLoop.current().start()


if __name__ == "__main__":
    main()
