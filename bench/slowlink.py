"""A TCP relay that adds latency and caps bandwidth, to measure S3 reads as
over a real link (moto on loopback answers in microseconds, at GB/s).

    python3 bench/slowlink.py LISTEN_PORT TARGET_PORT [LATENCY_MS [MB_PER_S]]

Every chunk a client sends waits LATENCY_MS (default 20) before it goes on;
what the server sends back is paced at MB_PER_S per connection (default 60).
Point AWS_ENDPOINT_URL at http://127.0.0.1:LISTEN_PORT. The figures in
docs/storage.md and docs/performance.md marked "20 ms, 60 MB/s" were taken
through it, the old and new binaries run alternately."""

import asyncio
import sys


async def pipe(reader, writer, delay, rate):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            if delay:
                await asyncio.sleep(delay)
            if rate:
                await asyncio.sleep(len(data) / rate)
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def main():
    listen, target = int(sys.argv[1]), int(sys.argv[2])
    delay = (float(sys.argv[3]) if len(sys.argv) > 3 else 20.0) / 1000
    rate = (float(sys.argv[4]) if len(sys.argv) > 4 else 60.0) * 1e6

    async def handle(client_r, client_w):
        server_r, server_w = await asyncio.open_connection("127.0.0.1", target)
        await asyncio.gather(pipe(client_r, server_w, delay, 0), pipe(server_r, client_w, 0, rate))

    server = await asyncio.start_server(handle, "127.0.0.1", listen)
    await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
