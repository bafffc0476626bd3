#!/usr/bin/env python3
"""Writes the seed corpus in seeds/<target>/ (run from anywhere; overwrites the files).

Each target reads a small header before the protocol bytes; see the comment at the top of
fuzz_targets/<target>.rs for the layout.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
METHODS = {"GET": 0, "HEAD": 1, "PUT": 2, "CONNECT": 3}


def write(target, name, data):
    d = os.path.join(HERE, "seeds", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# response_head: byte 0 = method | limits << 2, then the server's bytes.
def head(name, method, wire, limits=0):
    write("response_head", name, bytes([METHODS[method] | limits << 2]) + wire)


head("200-length", "GET", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello")
head("200-chunked-trailers", "GET",
     b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX: y\r\n\r\n")
head("100-continue-201", "PUT",
     b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok")
head("bare-lf", "GET", b"HTTP/1.1 200 OK\nContent-Length: 1\n\n!")
head("head-200", "HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n")
head("http10-304-keepalive", "GET",
     b"HTTP/1.0 304 Not Modified\r\nETag: \"x\"\r\nConnection: keep-alive\r\n\r\n")
head("connect-407", "CONNECT",
     b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
head("103-then-gzip-chunked", "GET",
     b"HTTP/1.1 103 Early Hints\r\nLink: </s>\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n")
head("leading-crlf-http12", "GET", b"\r\nHTTP/1.2 404 Not Found\r\nConnection: close\r\n\r\n")
head("small-limits-many-fields", "GET",
     b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n\r\n", limits=2)


# body_decoder: kind, max, flags, trailer limit / 4, field limit, length (u16 LE), then bytes.
def body(name, kind, wire, max_step=0, flags=0, trailer=64, fields=4, length=0):
    k = {"length": 0, "chunked": 1, "close": 3}[kind]
    write("body_decoder", name,
          bytes([k, max_step, flags, trailer, fields]) + struct.pack("<H", length) + wire)


body("chunked-ext-trailers", "chunked",
     b"3;x=y\r\nabc\r\nA \r\n0123456789\r\n0\r\nT: 1\r\n\r\nNEXT", max_step=4)
body("chunked-bare-lf", "chunked", b"2\nab\n0\n\n")
body("chunked-probe-zero", "chunked", b"5\r\nhello\r\n0\r\n\r\n", max_step=2, flags=1)
body("chunked-hex-two-trailers", "chunked",
     b"1A;name=\"v\"\r\n" + bytes(range(65, 91)) + b"\r\n0\r\nExpires: never\r\nX-Sum: 1\r\n\r\n",
     max_step=7)
body("length-5", "length", b"helloEXTRA", max_step=2, length=5)
body("until-close", "close", b"all of it", max_step=3)


# response_stream: max, ncuts | limits << 4, 16 methods x 2 bits, cuts (u16 LE), stream.
def stream(name, methods, wire, cuts=(), max_step=0, limits=0):
    bits = 0
    for i, m in enumerate(methods):
        bits |= METHODS[m] << (2 * i)
    hdr = bytes([max_step, len(cuts) | limits << 4]) + struct.pack("<I", bits)
    write("response_stream", name, hdr + b"".join(struct.pack("<H", c) for c in cuts) + wire)


FIXTURES = [
    ("GET", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"),
    ("GET", b"HTTP/1.1 204 No Content\r\n\r\n"),
    ("HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n"),
    ("GET", b"HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n"),
    ("GET", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;a=b\r\nabc\r\n2\r\nde\r\n0\r\nX: y\r\n\r\n"),
    ("GET", b"HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n1\nz\n0\n\n"),
    ("PUT", b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s>\r\n\r\n"
            b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"),
    ("GET", b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n!"),
]
stream("pipelined-fixtures", [m for m, _ in FIXTURES], b"".join(w for _, w in FIXTURES),
       cuts=(5, 40, 77, 150, 151, 260, 333), max_step=3)
stream("continue-then-created", ["PUT"], FIXTURES[6][1], cuts=(10, 26, 60))
stream("chunked-then-until-close", ["GET", "GET"],
       b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwiki\r\n5\r\npedia\r\n0\r\nA: b\r\n\r\n"
       b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nthe rest until close",
       cuts=(50, 51, 52, 90), max_step=1)
stream("bare-lf-pipelined", ["GET", "HEAD", "GET"],
       b"HTTP/1.1 200 OK\nContent-Length: 3\n\nabcHTTP/1.1 200 OK\nContent-Length: 3\n\n"
       b"HTTP/1.1 404 Not Found\nContent-Length: 0\n\n",
       cuts=(18, 19, 41), max_step=2, limits=2)


# request_encoder: flags, port (u16 LE), n (u64 LE), then length-prefixed method, target,
# host, and header name/value pairs.
def request(name, method, target, host, headers=(), framing=0, port=80, n=0, raw_host=False):
    out = bytes([framing | (4 if raw_host else 0)]) + struct.pack("<HQ", port, n)
    for field in [method, target, host] + [x for pair in headers for x in pair]:
        out += bytes([len(field)]) + field
    write("request_encoder", name, out)


request("get", b"GET", b"/a?b=c", b"example.test", port=8080,
        headers=[(b"Accept", b"*/*"), (b"User-Agent", b"dugong/0.1")])
request("put-length-ipv6", b"PUT", b"/upload", b"::1", port=81, framing=1, n=3,
        headers=[(b"content-type", b"text/plain"), (b"expect", b"100-continue")])
request("post-chunked-own-host", b"POST", b"/stream", b"h", framing=2,
        headers=[(b"Host", b"other"), (b"x-a", b"1"), (b"x-a", b"2")])
request("delete-raw-host-obs-text", b"DELETE", b"http://h/x", b"h:8080", raw_host=True,
        headers=[(b"x-t", b"a\tb \xff")])
request("framing-header-refused", b"GET", b"/", b"h", headers=[(b"Content-Length", b"5")])
request("target-with-space", b"GET", b"/a b", b"h")
request("extension-method", b"PROPFIND", b"*", b"h", framing=3, n=65537)
