#!/usr/bin/env python3
"""Python dugong (3.8.2) peer of benches/compare.sh, and the sink check.

Modes (one connection each, every status and body length checked, one result line like
bench-tools/src/bin/peer_client.rs):

  blocking   GETs one at a time (send_request, read_response, readall)
  pipeline   GETs with up to --depth in flight: send_request while fewer than DEPTH await
             their response, else read the oldest (Python dugong's own pipelining API:
             send_request does not wait for the response; its co_send_request only suspends
             when the socket is full, which tiny GETs never fill)
  get-big    GETs of --size bytes, read with readinto into one reused 1 MiB buffer
  put-big    PUTs of --size bytes (BodyFollowing), written from one reused 1 MiB buffer,
             each answered by 204
  verify-sink  (no dugong) checks that --target reads the request body before it answers:
             a PUT whose body is half sent must get no answer, then 204 once it is complete
"""

import argparse
import resource
import socket
import sys
import time


def peak_rss_kb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def result(mode, depth, requests, nbytes, elapsed):
    print(
        "mode=%s depth=%d requests=%d bytes=%d elapsed_s=%.6f reqs_per_sec=%.1f "
        "bytes_per_sec=%.1f peak_rss_kb=%d"
        % (mode, depth, requests, nbytes, elapsed, requests / elapsed,
           nbytes / elapsed, peak_rss_kb())
    )


def fail(msg):
    print("pydugong_client: error: " + msg, file=sys.stderr)
    sys.exit(1)


def check_head(resp, status, what):
    if resp.status != status:
        fail("%s: expected status %d, got %d %s" % (what, status, resp.status, resp.reason))


def small_gets(args, conn):
    depth = args.depth if args.mode == "pipeline" else 1
    start = time.perf_counter()
    stop = start + args.duration if args.duration is not None else None
    sent = done = nbytes = 0
    while True:
        may_send = sent < args.requests and (stop is None or time.perf_counter() < stop)
        if may_send and sent - done < depth:
            conn.send_request("GET", args.target)
            sent += 1
        elif sent > done:
            resp = conn.read_response()
            check_head(resp, 200, "GET " + args.target)
            body = conn.readall()
            if len(body) != args.size:
                fail("GET %s: expected a %d-byte body, got %d bytes"
                     % (args.target, args.size, len(body)))
            done += 1
            nbytes += len(body)
        else:
            break
    return done, nbytes, time.perf_counter() - start


def get_big(args, conn):
    # filled, so the whole buffer is resident from the start (see the RSS rows)
    buf = memoryview(bytearray(b"\x5a") * (1024 * 1024))
    start = time.perf_counter()
    stop = start + args.duration if args.duration is not None else None
    done = nbytes = 0
    while done < args.requests and (stop is None or time.perf_counter() < stop):
        conn.send_request("GET", args.target)
        resp = conn.read_response()
        check_head(resp, 200, "GET " + args.target)
        got = 0
        while True:
            n = conn.readinto(buf)
            if n == 0:
                break
            got += n
        if got != args.size:
            fail("GET %s: expected a %d-byte body, got %d bytes" % (args.target, args.size, got))
        done += 1
        nbytes += got
    return done, nbytes, time.perf_counter() - start


def put_big(args, conn):
    from dugong import BodyFollowing

    data = memoryview(bytes(i % 251 for i in range(1024 * 1024)))
    start = time.perf_counter()
    stop = start + args.duration if args.duration is not None else None
    done = nbytes = 0
    while done < args.requests and (stop is None or time.perf_counter() < stop):
        conn.send_request("PUT", args.target, body=BodyFollowing(args.size))
        left = args.size
        while left > 0:
            n = min(left, len(data))
            conn.write(data[:n])
            left -= n
        resp = conn.read_response()
        check_head(resp, 204, "PUT " + args.target)
        extra = conn.readall()
        if extra:
            fail("PUT %s: 204 with a %d-byte body" % (args.target, len(extra)))
        done += 1
        nbytes += args.size
    return done, nbytes, time.perf_counter() - start


def verify_sink(args):
    """The sink must read the whole body before answering (not answer early and discard)."""
    size = 4 * 1024 * 1024
    with socket.create_connection((args.host, args.port), timeout=10) as s:
        s.sendall(("PUT %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Length: %d\r\n\r\n"
                   % (args.target, args.host, args.port, size)).encode())
        s.sendall(b"x" * (size // 2))
        s.settimeout(0.5)
        try:
            early = s.recv(4096)
        except socket.timeout:
            early = None
        if early is not None:
            fail("%s answered before the body was complete: %r" % (args.target, early[:80]))
        s.settimeout(10)
        s.sendall(b"x" * (size - size // 2))
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = s.recv(4096)
            if not chunk:
                break
            answer += chunk
        if not answer.startswith(b"HTTP/1.1 204"):
            fail("%s: expected 204 after the body, got %r" % (args.target, answer[:80]))
    print("sink_ok=1")


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--mode", required=True,
                   choices=["blocking", "pipeline", "get-big", "put-big", "verify-sink"])
    p.add_argument("--depth", type=int, default=1)
    p.add_argument("--requests", type=int, default=1000)
    p.add_argument("--duration", type=float, default=None)
    p.add_argument("--target", default=None)
    p.add_argument("--size", type=int, default=100)
    p.add_argument("--timeout", type=float, default=30.0)
    args = p.parse_args()
    if args.target is None:
        args.target = "/sink" if args.mode in ("put-big", "verify-sink") else "/"
    if args.mode == "verify-sink":
        verify_sink(args)
        return

    from dugong import HTTPConnection

    conn = HTTPConnection(args.host, args.port)
    conn.timeout = args.timeout
    conn.connect()
    if args.mode in ("blocking", "pipeline"):
        done, nbytes, elapsed = small_gets(args, conn)
    elif args.mode == "get-big":
        done, nbytes, elapsed = get_big(args, conn)
    else:
        done, nbytes, elapsed = put_big(args, conn)
    if conn.response_pending():
        fail("responses still pending at the end")
    conn.disconnect()
    result(args.mode, args.depth if args.mode == "pipeline" else 1, done, nbytes, elapsed)


if __name__ == "__main__":
    main()
