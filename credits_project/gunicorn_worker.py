"""gunicorn's gevent worker, stopping cleanly on Ctrl-C.

Ctrl-C sends SIGINT to the master and every worker at once (one process group), and the master
answers it with SIGQUIT to the workers. gunicorn's gevent worker quits on either by raising
SystemExit in a greenlet, which gevent prints as a traceback at exit. This worker takes both as
SIGTERM instead: it stops accepting, finishes its requests and exits (the master kills it after
`graceful_timeout` if it does not). Set from the start, before the application loads, so a
Ctrl-C while a worker is still booting is taken the same way.
"""

import signal

from gunicorn.workers.ggevent import GeventWorker


class CleanStopGeventWorker(GeventWorker):
    def init_signals(self) -> None:
        super().init_signals()
        signal.signal(signal.SIGINT, self.handle_exit)
        signal.signal(signal.SIGQUIT, self.handle_exit)
