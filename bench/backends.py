"""The benchmark's stand-ins for a VM's ports, in a process of their own (so their work never shares a GIL with
the load generators or the tunnel): a counting sink, a source and an echo server on one asyncio loop, the tests'
own servers (bastion_emulator.testing.backends).

The sink's byte count and the source's per-connection size live in shared memory, so the benchmark can wait for
"the sink has every byte" and change the download size without restarting anything.
"""
import asyncio
import multiprocessing

from bastion_emulator.testing.backends import serve_echo, serve_sink_source

MIB = 1024 * 1024
BLOCK = bytes(range(256)) * (MIB // 256)


def _serve(received, send_bytes, ports):
    def count(nbytes):
        received.value += nbytes        # single-threaded writer: no lock needed

    async def main():
        servers = (await serve_sink_source(on_received=count),
                   await serve_sink_source(lambda: send_bytes.value),
                   await serve_echo())
        for index, server in enumerate(servers):
            ports[index] = server.sockets[0].getsockname()[1]
        await asyncio.Event().wait()
    asyncio.run(main())


class Backends:
    """``Backends().start()``: ``sink_port``, ``source_port``, ``echo_port``; ``received`` (bytes the sink
    counted so far); ``send_bytes`` (what the source sends per connection, settable)."""

    def __init__(self):
        context = multiprocessing.get_context('spawn')
        self._received = context.Value('Q', 0, lock=False)
        self._send_bytes = context.Value('Q', 0, lock=False)
        self._ports = context.Array('i', 3, lock=False)
        self._process = context.Process(target=_serve, args=(self._received, self._send_bytes, self._ports),
                                        daemon=True, name='bench-backends')

    def start(self, timeout=20.0):
        import time
        self._process.start()
        deadline = time.monotonic() + timeout
        while not all(self._ports):
            if not self._process.is_alive() or time.monotonic() > deadline:
                raise RuntimeError('benchmark backends did not start')
            time.sleep(0.01)
        return self

    @property
    def pid(self):
        return self._process.pid

    @property
    def sink_port(self):
        return self._ports[0]

    @property
    def source_port(self):
        return self._ports[1]

    @property
    def echo_port(self):
        return self._ports[2]

    @property
    def received(self):
        return self._received.value

    @property
    def send_bytes(self):
        return self._send_bytes.value

    @send_bytes.setter
    def send_bytes(self, value):
        self._send_bytes.value = value

    def stop(self):
        self._process.terminate()
        self._process.join(5)
