"""Traffic ends run inside the test namespaces: `ip netns exec NS python peer.py MODE ...`.

  udp-recv PORT N QUIET             print how many datagrams arrived: stops at N, or, once a
                                    line on stdin said the sender is done, at QUIET s of quiet
  udp-hold PORT                     a tiny receive buffer, never read until a line on stdin;
                                    then print how many datagrams were queued
  udp-send DST PORT N SPORT [SIZE [IPOPTS]]
                                    send N datagrams of SIZE bytes (64) from SPORT, with
                                    IPOPTS (hex) as IPv4 options
  tcp-serve PORT                    echo one byte per 100-byte message, until EOF
  tcp-sink PORT [RCVBUF [HOLD]]     read one connection to its end (with a receive buffer of
                                    RCVBUF bytes, after HOLD s of reading nothing): print the bytes read
  tcp-bulk DST PORT BYTES SPORT     send BYTES from SPORT, then wait for the receiver to close
  tcp-hold DST PORT SPORT           one round trip, then the connection held open until a line on
                                    stdin; after "ready", a line: the TSval it sends, its next seq,
                                    the next seq it expects
  tcp-raw DST PORT SPORT N TS SEQ ACK  N segments of that IPv4 connection (10 bytes at SEQ, ACK,
                                    TSval TS) from a raw socket
  tcp-close-early PORT N            take N connections, closing each at once
  tcp-late-data DST PORT N SPORT    N connections from SPORT, each sending 100 bytes after the peer's FIN
                                    and closing after its reset
  tcp-pingpong DST PORT N SPORT     N round trips of a 100-byte message
  tcp-refused DST PORT N SPORT      N connects that must be refused
  mld-join DEV GROUP                join an IPv6 group on DEV (MLD reports go out), until a line on stdin
  mld-join DEV GROUP                join an IPv6 group on DEV (the kernel sends MLD reports),
                                    until a line on stdin
  raw-send DEV DST_MAC N            N Ethernet frames of an ethertype no stack handles
  udp-flood DST N [SPORT]           one datagram to each of N distinct flows (dest ports
                                    vary; from SPORT, else an ephemeral port)
Every mode prints "ready" once its socket is set up.
"""
import select
import socket
import struct
import sys

SO_RCVBUFFORCE = 33  # linux/socket.h; not exported by Python's socket module
HANG_SECONDS = 600  # only bounds a hang: a peer waiting this long has lost its other end


def ready():
    print("ready", flush=True)


def family_of(address):
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def udp_socket(port, rcvbuf):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf)
    s.bind(("::", port))
    return s


def tcp_listener(port, backlog=1, rcvbuf=0):
    """A listening TCP socket on port, IPv4 and IPv6; rcvbuf: its connections' receive buffer."""
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf)
    s.bind(("::", port))
    s.listen(backlog)
    return s


def tcp_client(dst, sport):
    """A TCP socket bound to sport, to connect to dst."""
    s = socket.socket(family_of(dst), socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("", sport))
    return s


def drain(s, idle, got=0):
    """Counts datagrams on from got until IDLE s of quiet (0: until none is queued)."""
    if idle:
        s.settimeout(idle)
    try:
        while True:
            s.recv(2048)
            got += 1
            yield got
    except (socket.timeout, BlockingIOError):
        return


def udp_recv(port, count, quiet):
    """No clock runs until the sender is done: on a slow or busy machine its
    start-up may take longer than any quiet time."""
    s = udp_socket(port, 16 << 20)  # no drops at the socket
    s.setblocking(False)
    ready()
    got, sender_done = 0, False
    while got < count:
        waiting = [s] if sender_done else [s, sys.stdin]
        readable, _, _ = select.select(waiting, [], [], quiet if sender_done else HANG_SECONDS)
        if not readable:
            break
        if sys.stdin in readable:
            sys.stdin.readline()
            sender_done = True
        if s in readable:
            for got in drain(s, 0, got):
                if got == count:
                    break
    print(got, flush=True)


def udp_hold(port):
    s = udp_socket(port, 1)  # the kernel raises it to its minimum
    ready()
    sys.stdin.readline()
    s.setblocking(False)
    print(sum(1 for _ in drain(s, 0)), flush=True)


def udp_send(dst, port, count, sport, size=64, ip_options=b""):
    s = socket.socket(family_of(dst), socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)  # one flow from senders on several CPUs
    s.bind(("", sport))
    if ip_options:
        s.setsockopt(socket.IPPROTO_IP, socket.IP_OPTIONS, ip_options)
    ready()
    for _ in range(count):
        s.sendto(b"x" * size, (dst, port))


def recv_exactly(conn, size):
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def tcp_serve(port):
    s = tcp_listener(port)
    ready()
    conn, _ = s.accept()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    served = 0
    while recv_exactly(conn, 100) is not None:
        conn.sendall(b"k")
        served += 1
    conn.close()
    print(served, flush=True)


def tcp_sink(port, rcvbuf=0, hold=0.0):
    """Takes one connection and reads it to its end: prints the bytes read.
    rcvbuf: its receive buffer (the connection inherits it); hold: seconds
    it reads nothing first."""
    s = tcp_listener(port, rcvbuf=rcvbuf)
    ready()
    conn, _ = s.accept()
    select.select([], [], [], hold)
    got = 0
    while True:
        chunk = conn.recv(1 << 16)
        if not chunk:
            break
        got += len(chunk)
    conn.close()
    print(got, flush=True)


def tcp_bulk(dst, port, size, sport):
    """Sends size bytes from sport and waits for the receiver to close."""
    s = tcp_client(dst, sport)
    ready()
    s.connect((dst, port))
    s.sendall(b"b" * size)
    s.shutdown(socket.SHUT_WR)
    assert s.recv(1) == b""
    s.close()


TCP_REPAIR, TCP_REPAIR_QUEUE, TCP_QUEUE_SEQ, TCP_TIMESTAMP = 19, 20, 21, 24  # linux/tcp.h
TCP_RECV_QUEUE, TCP_SEND_QUEUE = 1, 2


def tcp_hold(dst, port, sport):
    """A connection from sport that makes one round trip (to tcp-serve), then
    stays open until a line on stdin. After "ready", a line: the TSval it
    sends now, its next sequence number (all it sent is acknowledged) and
    the next it expects."""
    s = tcp_client(dst, sport)
    s.connect((dst, port))
    s.sendall(b"h" * 100)
    assert recv_exactly(s, 1) == b"k"
    s.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR, 1)  # repair mode shows the queues' sequence numbers
    seqs = []
    for queue in (TCP_SEND_QUEUE, TCP_RECV_QUEUE):
        s.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR_QUEUE, queue)
        seqs.append(struct.unpack("I", s.getsockopt(socket.IPPROTO_TCP, TCP_QUEUE_SEQ, 4))[0])
    s.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR, 0)
    ready()
    print(struct.unpack("I", s.getsockopt(socket.IPPROTO_TCP, TCP_TIMESTAMP, 4))[0], *seqs, flush=True)
    sys.stdin.readline()
    s.close()


def internet_checksum(data):
    data += b"\0" * (len(data) % 2)
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xffff) + (total >> 16)
    return ~total & 0xffff


def tcp_raw(dst, port, sport, count, tsval, seq, ack):
    """count segments of the IPv4 connection sport -> dst:port, each 10 bytes
    of data at seq, acknowledging ack, with timestamp tsval, sent by a raw socket."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.connect((dst, port))
    source = probe.getsockname()[0]
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
    ready()
    payload, timestamps = b"x" * 10, b"\x01\x01\x08\x0a" + struct.pack("!II", tsval & 0xffffffff, 0)
    for _ in range(count):
        header = struct.pack("!HHIIBBHHH", sport, port, seq & 0xffffffff, ack, 8 << 4, 0x18, 65535, 0, 0) + timestamps
        pseudo = socket.inet_aton(source) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 6, len(header) + 10)
        checksum = internet_checksum(pseudo + header + payload)
        raw.sendto(header[:16] + struct.pack("!H", checksum) + header[18:] + payload, (dst, 0))


def tcp_close_early(port, count):
    """Takes count connections and closes each at once (a FIN: the socket waits in FIN_WAIT)."""
    s = tcp_listener(port, count)
    ready()
    for _ in range(count):
        s.accept()[0].close()


def tcp_late_data(dst, port, count, sport):
    """count connections from sport, each sending 100 bytes after the peer's FIN came,
    then closing once the peer's reset came: a FIN sent before it would reach the
    peer's listener (the connection is gone there), one more drop, a race."""
    ready()
    for _ in range(count):
        s = tcp_client(dst, sport)
        s.connect((dst, port))
        assert s.recv(1) == b""  # the peer's FIN
        s.send(b"d" * 100)
        reset = select.poll()
        reset.register(s, 0)  # no events asked: it wakes on an error (the reset) or a hang-up only
        assert reset.poll(HANG_SECONDS * 1000), "no reset from the peer"
        s.close()


def tcp_pingpong(dst, port, count, sport):
    s = tcp_client(dst, sport)
    ready()
    s.connect((dst, port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for _ in range(count):
        s.sendall(b"p" * 100)
        assert recv_exactly(s, 1) == b"k"
    s.close()


def tcp_refused(dst, port, count, sport):
    ready()
    for _ in range(count):
        s = tcp_client(dst, sport)
        try:
            s.connect((dst, port))
            sys.exit("connect to a closed port succeeded")
        except ConnectionRefusedError:
            pass
        s.close()


def mld_join(dev, group):
    """Joins an IPv6 multicast group on dev (the kernel sends MLD reports), held until a line on stdin."""
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP,
                 socket.inet_pton(socket.AF_INET6, group) + struct.pack("@I", socket.if_nametoindex(dev)))
    ready()
    sys.stdin.readline()


def raw_send(dev, dst_mac, count):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((dev, 0))
    ready()
    src = s.getsockname()[4]
    frame = bytes.fromhex(dst_mac.replace(":", "")) + src + b"\x88\xb5" + b"\0" * 46  # 0x88b5: local experimental
    for _ in range(count):
        s.send(frame)


def udp_flood(dst, count, sport=0):
    senders = [socket.socket(family_of(dst), socket.SOCK_DGRAM) for _ in range((count + 49999) // 50000)]
    if sport:  # the same flows again in a later flood
        for n, sender in enumerate(senders):
            sender.bind(("", sport + n))
    ready()
    for i in range(count):
        senders[i // 50000].sendto(b"f", (dst, 10000 + i % 50000))


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "udp-recv":
        udp_recv(int(args[0]), int(args[1]), float(args[2]))
    elif mode == "udp-hold":
        udp_hold(int(args[0]))
    elif mode == "udp-send":
        udp_send(args[0], int(args[1]), int(args[2]), int(args[3]), *[int(a) for a in args[4:5]],
                 *[bytes.fromhex(a) for a in args[5:6]])
    elif mode == "tcp-serve":
        tcp_serve(int(args[0]))
    elif mode == "tcp-sink":
        tcp_sink(int(args[0]), *[int(a) for a in args[1:2]], *[float(a) for a in args[2:3]])
    elif mode == "tcp-bulk":
        tcp_bulk(args[0], int(args[1]), int(args[2]), int(args[3]))
    elif mode == "tcp-hold":
        tcp_hold(args[0], int(args[1]), int(args[2]))
    elif mode == "tcp-raw":
        tcp_raw(args[0], int(args[1]), int(args[2]), *[int(a) for a in args[3:7]])
    elif mode == "tcp-close-early":
        tcp_close_early(int(args[0]), int(args[1]))
    elif mode == "tcp-late-data":
        tcp_late_data(args[0], int(args[1]), int(args[2]), int(args[3]))
    elif mode == "tcp-pingpong":
        tcp_pingpong(args[0], int(args[1]), int(args[2]), int(args[3]))
    elif mode == "tcp-refused":
        tcp_refused(args[0], int(args[1]), int(args[2]), int(args[3]))
    elif mode == "udp-flood":
        udp_flood(args[0], *[int(a) for a in args[1:3]])
    elif mode == "mld-join":
        mld_join(args[0], args[1])
    elif mode == "raw-send":
        raw_send(args[0], args[1], int(args[2]))
    else:
        sys.exit("unknown mode " + mode)
